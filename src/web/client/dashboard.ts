/// <reference lib="dom" />
// The index of runs and each run's dashboard (and a compare folder's comparison view). A run's
// dashboard follows training live: one EventSource on /api/events, whose events (types.ts) append
// metrics.jsonl lines and replace eval rows, checkpoints, samples and config as they change.
import type {
  CheckpointInfo,
  EvalRowJson,
  EventName,
  MetricsRow,
  RunDetail,
  RunEvents,
  RunList,
  RunState,
  RunSummary,
  SampleInfo,
} from '../types.js';
import { LineChart, type Series } from './chart.js';
import { ago, fill, fmt, fmtSig, getJson, h, num, runUrl, showError, tryUrl } from './dom.js';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

const app = document.getElementById('app')!;
const params = new URLSearchParams(location.search);

function epochText(r: RunSummary): string {
  if (r.epoch === undefined) return '–';
  return r.totalEpochs !== undefined ? `${r.epoch} / ${r.totalEpochs}` : String(r.epoch);
}

/** What a run's state (from its folder: run.lock, checkpoints, config) says, in a few words. */
function stateText(s: RunState): string {
  if (s.state === 'training') return s.otherHost ? `training on ${s.holder?.host}` : 'training';
  if (s.state === 'finished') return 'finished';
  return s.epoch === undefined
    ? 'stopped before its first checkpoint'
    : `stopped at epoch ${s.epoch} · resumable`;
}

const stateTag = (s: RunState | undefined) =>
  s ? h('span', { class: `tag state-${s.state}`, 'data-state': s.state }, stateText(s)) : null;

// ---- index ----

function runRow(r: RunSummary, nested: boolean): HTMLElement {
  const isGroup = r.kind === 'group';
  return h(
    'tr',
    { class: nested ? 'nested' : undefined, 'data-id': r.id },
    h(
      'td',
      {},
      h('a', { href: runUrl(r.id) }, r.name || '(this folder)'),
      isGroup ? h('span', { class: 'tag' }, r.report ? 'comparison' : 'folder of runs') : null,
    ),
    h('td', { class: 'num' }, isGroup ? `${r.children?.length ?? 0} runs` : epochText(r)),
    h('td', { class: 'num' }, r.best ? fmt(r.best.psnr, 2) : '–'),
    h('td', { class: 'num' }, r.best ? fmt(r.best.ssim, 4) : '–'),
    h('td', {}, isGroup ? '' : ago(r.updated), isGroup ? null : stateTag(r.state)),
    h(
      'td',
      {},
      !isGroup && r.epoch !== undefined ? h('a', { href: tryUrl(r.id) }, 'try it') : null,
      isGroup && r.report ? h('a', { href: runUrl(r.id) }, 'report') : null,
    ),
  );
}

async function renderIndex(): Promise<void> {
  document.title = 'pix2pix runs';
  const body = h('tbody');
  const note = h('p', { class: 'muted' });
  fill(
    app,
    h('h1', {}, 'Runs'),
    note,
    h(
      'table',
      { class: 'runs' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'run'),
          h('th', {}, 'epoch'),
          h('th', {}, 'best PSNR dB'),
          h('th', {}, 'SSIM'),
          h('th', {}, 'updated'),
          h('th', {}, ''),
        ),
      ),
      body,
    ),
  );
  const refresh = async () => {
    const list = await getJson<RunList>('/api/runs');
    note.textContent = `${list.runs.filter((r) => r.kind === 'run').length} runs under ${list.root}`;
    fill(body, ...list.runs.map((r) => runRow(r, r.parent !== undefined)));
    if (list.runs.length === 0) {
      body.append(
        h('tr', {}, h('td', { colspan: 6 }, 'No runs yet: pix2pix train --out writes one into this folder.')),
      );
    }
  };
  await refresh();
  setInterval(() => refresh().catch(() => {}), 5000);
}

// ---- one run ----

function breadcrumb(summary: RunSummary): HTMLElement {
  return h(
    'p',
    { class: 'crumbs' },
    h('a', { href: '/' }, 'runs'),
    summary.parent !== undefined ? ' / ' : null,
    summary.parent !== undefined ? h('a', { href: runUrl(summary.parent) }, summary.parent || '(top)') : null,
    ` / ${summary.name}`,
  );
}

/**
 * A config.json value as text. A number as typed on the command line (0.0002, 0.5) shows as it is; one
 * a program worked out (with float noise, 0.30000000000000004) gets 4 significant digits.
 */
function configValue(v: unknown): string {
  if (typeof v === 'number' && !Number.isInteger(v) && String(v).length > 10) return fmtSig(v, 4);
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

function configTable(config: unknown): HTMLElement {
  if (!config || typeof config !== 'object') return h('p', { class: 'muted' }, 'no config.json');
  const saved = config as Record<string, unknown>;
  const rows: [string, string][] = [];
  const c = (saved.config ?? {}) as Record<string, unknown>;
  for (const [k, v] of Object.entries(c)) rows.push([k, configValue(v)]);
  if (saved.backend !== undefined) rows.push(['backend used', String(saved.backend)]);
  if (saved.started !== undefined) rows.push(['started', String(saved.started)]);
  if (saved.versions) rows.push(['versions', JSON.stringify(saved.versions)]);
  const resumes = saved.resumes as unknown[] | undefined;
  if (resumes?.length) rows.push(['resumes', resumes.map((r) => JSON.stringify(r)).join('\n')]);
  return h(
    'table',
    { class: 'config' },
    h('tbody', {}, ...rows.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', { class: 'text' }, v)))),
  );
}

function renderRun(detail: RunDetail): void {
  const { summary } = detail;
  document.title = `${summary.name}: pix2pix`;
  let metrics: MetricsRow[] = [];
  let evalRows: EvalRowJson[] = detail.eval;
  let checkpoints: CheckpointInfo[] = detail.checkpoints;
  let samples: SampleInfo[] = detail.samples;
  let config: unknown = detail.config;
  let shownSample: string | undefined; // name picked by the user; undefined follows the newest

  const live = h('span', { class: 'live', 'data-state': 'connecting' }, 'connecting');
  const stats = h('p', { class: 'stats' });
  const losses = new LineChart({ title: 'GAN losses (per step)', xLabel: 'step', digits: 3 });
  const l1 = new LineChart({ title: 'L1 loss (per step)', xLabel: 'step', digits: 4 });
  const { psnr, ssim } = evalCharts();
  const sampleBox = h('div', { class: 'sample' });
  const ckptBox = h('div');
  const configBox = h('div');

  fill(
    app,
    breadcrumb(summary),
    h('h1', {}, summary.name, ' ', live),
    stats,
    h('div', { class: 'charts' }, losses.el, l1.el, psnr.el, ssim.el),
    h('section', {}, h('h2', {}, 'Newest sample'), sampleBox),
    h(
      'section',
      {},
      h('h2', {}, 'Checkpoints'),
      h('p', {}, h('a', { href: tryUrl(summary.id) }, 'Try the generator in your browser')),
      ckptBox,
    ),
    h('section', {}, h('h2', {}, 'Configuration'), configBox),
  );

  const drawMetrics = () => {
    const pts = (k: 'g_gan' | 'd_loss' | 'g_l1') => metrics.map((m): [number, number] => [m.step, m[k]]);
    losses.update([
      { name: 'g_gan', color: COLORS[0]!, points: pts('g_gan') },
      { name: 'd_loss', color: COLORS[1]!, points: pts('d_loss') },
    ]);
    l1.update([{ name: 'g_l1', color: COLORS[2]!, points: pts('g_l1') }]);
    const last = metrics[metrics.length - 1];
    const c = (config as { config?: { epochs?: number; epochsDecay?: number } } | null)?.config;
    const total = c?.epochs !== undefined ? c.epochs + (c.epochsDecay ?? 0) : undefined;
    fill(
      stats,
      last
        ? `epoch ${last.epoch}${total ? ` of ${total}` : ''} · step ${last.step} · ${fmt(last.images_per_s, 1)} images/s · lr ${fmtSig(last.lr, 3)}`
        : 'no training steps yet',
      ` · ${metrics.length} steps plotted`,
    );
    stats.dataset.steps = String(metrics.length);
  };
  const drawEval = () => {
    const pts = (k: 'psnr' | 'ssim') => evalRows.map((r): [number, number] => [r.epoch, num(r[k])]);
    psnr.update([{ name: 'PSNR', color: COLORS[4]!, points: pts('psnr'), dots: true }]);
    ssim.update([{ name: 'SSIM', color: COLORS[3]!, points: pts('ssim'), dots: true }]);
  };
  const drawSamples = () => {
    if (samples.length === 0) {
      fill(
        sampleBox,
        h('p', { class: 'muted' }, 'no sample grid yet (one is written at the end of each epoch)'),
      );
      return;
    }
    const current = samples.find((x) => x.name === shownSample) ?? samples[samples.length - 1]!;
    const select = h(
      'select',
      {
        'aria-label': 'sample epoch',
        onchange: (ev: Event) => {
          const v = (ev.target as HTMLSelectElement).value;
          shownSample = v === samples[samples.length - 1]!.name ? undefined : v;
          drawSamples();
        },
      },
      ...samples.map((x) =>
        h('option', { value: x.name, selected: x.name === current.name }, `epoch ${x.epoch}`),
      ),
    );
    fill(
      sampleBox,
      h(
        'p',
        {},
        select,
        ' ',
        h('span', { class: 'muted' }, 'rows: test pairs · columns: input | target | output'),
      ),
      h('img', { src: current.url, alt: `sample grid of epoch ${current.epoch}`, class: 'grid' }),
    );
  };
  const drawCheckpoints = () => {
    if (checkpoints.length === 0) {
      fill(ckptBox, h('p', { class: 'muted' }, 'no checkpoints yet'));
      return;
    }
    const byEpoch = new Map(evalRows.map((r) => [r.epoch, r]));
    fill(
      ckptBox,
      h(
        'table',
        { class: 'checkpoints' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ...['checkpoint', 'epoch', 'step', 'written', 'PSNR dB', 'SSIM', 'generator', ''].map((t) =>
              h('th', {}, t),
            ),
          ),
        ),
        h(
          'tbody',
          {},
          ...[...checkpoints].reverse().map((c) => {
            const e = c.mid ? undefined : byEpoch.get(c.epoch);
            return h(
              'tr',
              {},
              h('td', {}, c.name, c.latest ? h('span', { class: 'tag' }, 'latest') : null),
              h('td', { class: 'num' }, c.epoch),
              h('td', { class: 'num' }, c.step ?? '–'),
              h('td', {}, c.time ? new Date(c.time).toLocaleString() : '–'),
              h('td', { class: 'num' }, e ? fmt(e.psnr, 2) : '–'),
              h('td', { class: 'num' }, e ? fmt(e.ssim, 4) : '–'),
              h('td', {}, c.model ? h('a', { href: c.model }, 'model.json') : '–'),
              h('td', {}, c.model && !c.mid ? h('a', { href: tryUrl(summary.id, c.epoch) }, 'try it') : ''),
            );
          }),
        ),
      ),
    );
  };
  const drawConfig = () => {
    fill(
      configBox,
      detail.configError ? h('p', { class: 'error' }, detail.configError) : null,
      configTable(config),
    );
  };
  drawMetrics();
  drawEval();
  drawSamples();
  drawCheckpoints();
  drawConfig();

  const es = new EventSource(`/api/events?id=${encodeURIComponent(summary.id)}`);
  const on = <K extends EventName>(name: K, f: (data: RunEvents[K]) => void) =>
    es.addEventListener(name, (ev) => f(JSON.parse((ev as MessageEvent<string>).data) as RunEvents[K]));
  // The run's state comes from its folder (the `state` events); the badge adds the connection's.
  let state = summary.state;
  const showState = () => {
    if (live.dataset.state !== 'live') return;
    live.dataset.activity = state?.state === 'training' ? 'training' : 'idle';
    live.textContent = state ? `live · ${stateText(state)}` : 'live';
  };
  on('hello', () => {
    live.dataset.state = 'live';
    showState();
  });
  on('state', (s) => {
    state = s ?? undefined;
    showState();
  });
  on('metrics-reset', (rows) => {
    metrics = rows;
    drawMetrics();
  });
  on('metrics', (rows) => {
    metrics = metrics.concat(rows);
    drawMetrics();
  });
  on('eval', (rows) => {
    evalRows = rows;
    drawEval();
    drawCheckpoints();
  });
  on('checkpoints', (list) => {
    checkpoints = list;
    drawCheckpoints();
  });
  on('samples', (list) => {
    samples = list;
    drawSamples();
  });
  on('config', (c) => {
    config = c;
    drawConfig();
  });
  es.onerror = () => {
    live.dataset.state = 'offline';
    live.textContent = es.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting';
  };
}

/** The PSNR and SSIM vs epoch charts, of one run or of a comparison. */
function evalCharts(): { psnr: LineChart; ssim: LineChart } {
  return {
    psnr: new LineChart({ title: 'PSNR on the test split, dB', xLabel: 'epoch', digits: 2, integerX: true }),
    ssim: new LineChart({ title: 'SSIM on the test split', xLabel: 'epoch', digits: 4, integerX: true }),
  };
}

// ---- a compare folder (or any folder of runs) ----

function renderGroup(detail: RunDetail): void {
  const { summary } = detail;
  document.title = `${summary.name || 'runs'}: comparison`;
  const { psnr, ssim } = evalCharts();
  const table = h('tbody');
  const draw = (d: RunDetail) => {
    const runs = d.runs ?? [];
    const series = (k: 'psnr' | 'ssim'): Series[] =>
      runs.map((r, i) => ({
        name: r.name,
        color: COLORS[i % COLORS.length]!,
        points: r.eval.map((e): [number, number] => [e.epoch, num(e[k])]),
        dots: true,
      }));
    psnr.update(series('psnr'));
    ssim.update(series('ssim'));
    fill(
      table,
      ...runs.map((r) =>
        h(
          'tr',
          {},
          h('td', {}, h('a', { href: runUrl(r.id) }, r.name)),
          h('td', { class: 'num' }, epochText(r)),
          h('td', { class: 'num' }, r.best ? `${fmt(r.best.psnr, 2)} (epoch ${r.best.epoch})` : '–'),
          h('td', { class: 'num' }, r.best ? fmt(r.best.ssim, 4) : '–'),
          h('td', {}, ago(r.updated), stateTag(r.state)),
          h('td', {}, r.epoch !== undefined ? h('a', { href: tryUrl(r.id) }, 'try it') : ''),
        ),
      ),
    );
  };
  fill(
    app,
    h('p', { class: 'crumbs' }, h('a', { href: '/' }, 'runs'), ` / ${summary.name}`),
    h(
      'h1',
      {},
      summary.name || 'runs',
      h('span', { class: 'tag' }, summary.report ? 'comparison' : 'folder of runs'),
    ),
    h(
      'table',
      { class: 'runs' },
      h(
        'thead',
        {},
        h('tr', {}, ...['run', 'epoch', 'best PSNR dB', 'SSIM', 'updated', ''].map((t) => h('th', {}, t))),
      ),
      table,
    ),
    h('div', { class: 'charts' }, psnr.el, ssim.el),
    detail.reportUrl
      ? h(
          'section',
          {},
          h(
            'h2',
            {},
            'Report ',
            h('a', { href: detail.reportUrl, target: '_blank', rel: 'noopener' }, 'open report.html'),
          ),
          h('iframe', { src: detail.reportUrl, class: 'report', title: 'compare report', sandbox: '' }),
        )
      : h('p', { class: 'muted' }, 'No report.html yet: pix2pix compare writes it when all runs are done.'),
  );
  draw(detail);
  setInterval(() => {
    getJson<RunDetail>(`/api/run?id=${encodeURIComponent(summary.id)}`)
      .then(draw)
      .catch(() => {});
  }, 5000);
}

async function main(): Promise<void> {
  const page = document.body.dataset.page;
  if (page === 'run') {
    const id = params.get('id') ?? '';
    const detail = await getJson<RunDetail>(`/api/run?id=${encodeURIComponent(id)}`);
    if (detail.summary.kind === 'group') renderGroup(detail);
    else renderRun(detail);
  } else {
    await renderIndex();
  }
}

main().catch((e) => {
  fill(app);
  showError(app, e);
});
