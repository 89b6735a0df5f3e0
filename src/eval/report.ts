// The report of `pix2pix compare`: report.html (self-contained: inline SVG plots, grid PNGs as data URIs,
// no script, no external file) and report.md (links to plots/*.png and the grid PNGs), from the runs' data.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fmtDuration, fmtNum } from '../util/format.js';
import { bestByPsnr, type EvalRow, type evalModeName } from './evaluate.js';
import {
  downsampleLosses,
  type EpochSeries,
  epochSpec,
  lossSpec,
  type Plot,
  smoothingWindow,
  writePlot,
} from './plots.js';

export type { EvalRow };

export interface StepRow {
  epoch: number;
  step: number;
  g_gan: number;
  g_l1: number;
  d_loss: number;
  images_per_s: number;
  lr: number;
}

export interface RunReport {
  /** e.g. "batch-size=32" */
  name: string;
  /** The varied options of this run, e.g. { 'batch-size': 32 }. */
  values: Record<string, string | number | boolean>;
  /** Run folder, relative to the report's folder. */
  dir: string;
  /** metrics.jsonl lines. */
  steps: StepRow[];
  /** eval.csv rows, sorted by epoch. */
  evals: EvalRow[];
  /** The row with the highest PSNR (worked out from `evals` where absent). */
  best?: EvalRow;
  /** Wall time spent training (not evaluating). */
  trainSeconds: number;
  /** Training throughput. */
  imagesPerSec: number;
}

/** `png`: path relative to the report's folder; columns input | ground truth | each run's output. */
export interface GridReport {
  title: string;
  caption: string;
  png: string;
}

export interface CompareReport {
  title: string;
  /** Dataset path and a few facts, shown as text. */
  dataset: string;
  /** The command line that produced it. */
  command: string;
  evalMode: ReturnType<typeof evalModeName>;
  /** The options common to all runs. */
  settings: Record<string, string | number | boolean>;
  runs: RunReport[];
  grids: GridReport[];
}

/** What 20*log10(255) adds to a PSNR computed with MAX = 255 on images in [0, 1]. */
export const PSNR_RANGE_OFFSET_DB = 20 * Math.log10(255);

// ---------------------------------------------------------------------------------------------------------
// Formatting

export { fmtDuration };

export const fmtPsnr = (x: number): string => fmtNum(x, 2);
export const fmtSsim = (x: number): string => fmtNum(x, 4);
export const fmtMae = (x: number): string => fmtNum(x, Number.isFinite(x) && Math.abs(x) >= 1 ? 2 : 4);

const fmtRate = (x: number): string => (Number.isFinite(x) && x > 0 ? x.toFixed(1) : '–');

export function escapeHtml(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Inline markdown text: escapes the characters that markdown or HTML would read as markup. */
export function escapeMd(s: string): string {
  return s.replace(/[\\`*_[\]<>|#]/g, '\\$&').replace(/\r?\n/g, ' ');
}

/** A relative path as a markdown link target: forward slashes, unusual characters percent-encoded. */
function mdUrl(path: string): string {
  return Array.from(path.replace(/\\/g, '/'))
    .map((c) => (/[A-Za-z0-9._~\-/=+,@]/.test(c) ? c : encodeURIComponent(c)))
    .join('');
}

/** A fenced code block whose fence is longer than any backtick run in `text`. */
function mdFence(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((m) => m.length));
  const fence = '`'.repeat(Math.max(3, longest + 1));
  return `${fence}\n${text}\n${fence}`;
}

const fmtValue = (v: string | number | boolean): string => String(v);

const fmtValues = (values: Record<string, string | number | boolean>): string =>
  Object.entries(values)
    .map(([k, v]) => `${k}=${fmtValue(v)}`)
    .join(', ');

// ---------------------------------------------------------------------------------------------------------
// The content both files share

interface BestRow {
  run: string;
  epoch: string;
  psnr: string;
  ssim: string;
  mae: string;
  train: string;
  rate: string;
}

const BEST_HEADER = ['Run', 'Best epoch', 'PSNR (dB)', 'SSIM', 'MAE', 'Train wall time', 'Images/s'];

function bestRow(run: RunReport): BestRow {
  const best = run.best ?? bestByPsnr(run.evals);
  const common = { run: run.name, train: fmtDuration(run.trainSeconds), rate: fmtRate(run.imagesPerSec) };
  if (!best) return { ...common, epoch: 'not evaluated', psnr: '–', ssim: '–', mae: '–' };
  return {
    ...common,
    epoch: String(best.epoch),
    psnr: fmtPsnr(best.psnr),
    ssim: fmtSsim(best.ssim),
    mae: fmtMae(best.mae),
  };
}

const bestCells = (b: BestRow): string[] => [b.run, b.epoch, b.psnr, b.ssim, b.mae, b.train, b.rate];

const EVAL_HEADER = ['Epoch', 'Step', 'PSNR (dB)', 'SSIM', 'MAE', 'Eval time'];

const evalCells = (e: EvalRow): string[] => [
  String(e.epoch),
  String(e.step),
  fmtPsnr(e.psnr),
  fmtSsim(e.ssim),
  fmtMae(e.mae),
  fmtDuration(e.seconds),
];

const runCells = (run: RunReport): string[] => [
  run.name,
  fmtValues(run.values) || '–',
  run.dir,
  run.evals.length ? String(run.evals.length) : 'not evaluated',
  String(run.steps.length),
];

const RUN_HEADER = ['Run', 'Varied options', 'Folder', 'Epochs evaluated', 'Steps logged'];

const PSNR_NOTE = [
  'PSNR here is computed on uint8 images (0–255) with MAX = 255, i.e. in the usual 8-bit range.',
  'The reference PyTorch document computed PSNR with MAX = 255 on images scaled to [0, 1], which adds',
  `20·log10(255) = ${PSNR_RANGE_OFFSET_DB.toFixed(2)} dB to every value: its reported 70.35 dB`,
  `(batch 32, epoch 23) and 73.95 dB (batch 64, epochs 10–13) read correctly as about`,
  `${(70.35 - PSNR_RANGE_OFFSET_DB).toFixed(1)} dB and ${(73.95 - PSNR_RANGE_OFFSET_DB).toFixed(1)} dB,`,
  'which are the numbers to compare with this report.',
].join(' ');

interface EpochPlot {
  heading: string;
  plot?: Plot;
  caption: string;
  /** Why there is no plot. */
  empty: string;
}

interface LossPlot {
  run: RunReport;
  plot?: Plot;
  caption: string;
}

interface Grid {
  grid: GridReport;
  dataUri?: string;
}

interface Rendered {
  epochPlots: EpochPlot[];
  lossPlots: LossPlot[];
  grids: Grid[];
}

/** File-name-safe and unique among `taken`. */
function plotName(base: string, taken: Set<string>): string {
  const slug =
    base
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 60) || 'run';
  let name = slug;
  for (let i = 2; taken.has(name.toLowerCase()); i++) name = `${slug}-${i}`;
  taken.add(name.toLowerCase());
  return name;
}

async function epochPlot(
  plotsDir: string,
  name: string,
  heading: string,
  yTitle: string,
  runs: RunReport[],
  metric: 'psnr' | 'ssim',
  caption: string,
): Promise<EpochPlot> {
  const series: EpochSeries[] = runs
    .filter((r) => r.evals.length > 0)
    .map((r) => ({ run: r.name, points: r.evals.map((e) => ({ epoch: e.epoch, value: e[metric] })) }));
  const points = series.flatMap((s) => s.points);
  const finite = points.filter((p) => Number.isFinite(p.value)).length;
  if (finite === 0) {
    const empty = points.length ? `No finite ${heading} value to plot.` : 'No run was evaluated.';
    return { heading, caption, empty };
  }
  const skipped = points.length - finite;
  const infinite = points.filter((p) => p.value === Number.POSITIVE_INFINITY).length;
  let note = '';
  if (skipped > 0) {
    note =
      infinite === skipped && metric === 'psnr'
        ? ` ${skipped} evaluation(s) with PSNR = inf (outputs identical to the targets) are not drawn.`
        : ` ${skipped} non-finite value(s) are not drawn.`;
  }
  const plot = await writePlot(plotsDir, name, epochSpec(`${heading} vs epoch`, yTitle, series));
  return { heading, plot, caption: caption + note, empty: '' };
}

async function lossPlot(plotsDir: string, name: string, run: RunReport): Promise<LossPlot> {
  if (run.steps.length === 0) return { run, caption: 'No training steps logged.' };
  const { rows, per } = downsampleLosses(run.steps);
  const window = smoothingWindow(rows.length);
  const points = per > 1 ? `each point the mean of ${per} consecutive logged steps` : 'every logged step';
  const caption =
    `${run.name}: generator GAN loss, generator L1 loss and discriminator loss against the step (${points})` +
    (window > 1 ? `; the solid line is the moving average over ${window} points.` : '.');
  const plot = await writePlot(plotsDir, name, lossSpec(`Losses, ${run.name}`, rows, window));
  return { run, plot, caption };
}

async function render(dir: string, r: CompareReport): Promise<Rendered> {
  const plotsDir = join(dir, 'plots');
  await mkdir(plotsDir, { recursive: true });
  const taken = new Set(['psnr', 'ssim']);
  const lossNames = r.runs.map((run) => plotName(`loss-${run.name}`, taken));
  const [psnr, ssim, lossPlots, grids] = await Promise.all([
    epochPlot(
      plotsDir,
      'psnr',
      'PSNR',
      'PSNR (dB)',
      r.runs,
      'psnr',
      'Validation PSNR per epoch (uint8, MAX = 255), all runs.',
    ),
    epochPlot(plotsDir, 'ssim', 'SSIM', 'SSIM', r.runs, 'ssim', 'Validation SSIM per epoch, all runs.'),
    Promise.all(r.runs.map((run, i) => lossPlot(plotsDir, lossNames[i]!, run))),
    Promise.all(
      r.grids.map(async (grid): Promise<Grid> => {
        try {
          const png = await readFile(resolve(dir, grid.png));
          return { grid, dataUri: `data:image/png;base64,${png.toString('base64')}` };
        } catch {
          return { grid };
        }
      }),
    ),
  ]);
  return { epochPlots: [psnr, ssim], lossPlots, grids };
}

// ---------------------------------------------------------------------------------------------------------
// HTML

const CSS = `
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: #222;
  background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.7rem; margin-top: 0; }
h2 { font-size: 1.3rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: .6rem .8rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.text { white-space: pre-wrap; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; }
dt { font-weight: 600; }
dd { margin: 0; }
figure { margin: 1rem 0 1.5rem; }
figure svg, figure img { max-width: 100%; height: auto; display: block; }
figure img { image-rendering: pixelated; border: 1px solid #ddd; }
figcaption { color: #555; font-size: .9rem; margin-top: .3rem; }
.note { background: #fff8e1; border-left: 4px solid #f0b400; padding: .6rem .9rem; }
.missing { color: #a00; }
`;

function htmlTable(
  header: string[],
  rows: string[][],
  numeric: (col: number) => boolean = () => false,
): string {
  const head = `<tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = rows
    .map(
      (row) =>
        `<tr>${row.map((c, i) => (numeric(i) ? `<td class="num">` : '<td>') + escapeHtml(c) + '</td>').join('')}</tr>`,
    )
    .join('\n');
  return `<table>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

function renderHtml(r: CompareReport, x: Rendered): string {
  const h = escapeHtml;
  const out: string[] = [];
  out.push('<!doctype html>', '<html lang="en">', '<head>', '<meta charset="utf-8">');
  out.push('<meta name="viewport" content="width=device-width, initial-scale=1">');
  out.push(`<title>${h(r.title)}</title>`, `<style>${CSS}</style>`, '</head>', '<body>', '<main>');
  out.push(`<h1>${h(r.title)}</h1>`);

  out.push('<h2>Setup</h2>', '<dl>');
  out.push(`<dt>Dataset</dt><dd class="text">${h(r.dataset)}</dd>`);
  out.push(`<dt>Command</dt><dd><pre><code>${h(r.command)}</code></pre></dd>`);
  out.push(`<dt>Eval mode</dt><dd>${h(r.evalMode)}</dd>`);
  out.push('</dl>');
  out.push('<h3>Settings common to all runs</h3>');
  const settings = Object.entries(r.settings);
  out.push(
    settings.length
      ? htmlTable(
          ['Option', 'Value'],
          settings.map(([k, v]) => [k, fmtValue(v)]),
        )
      : '<p>None.</p>',
  );
  out.push('<h3>Runs</h3>');
  out.push(r.runs.length ? htmlTable(RUN_HEADER, r.runs.map(runCells), (i) => i >= 3) : '<p>No runs.</p>');

  out.push('<h2>Best epoch per run</h2>');
  out.push(
    r.runs.length
      ? htmlTable(BEST_HEADER, r.runs.map(bestRow).map(bestCells), (i) => i >= 1)
      : '<p>No runs.</p>',
  );
  out.push(`<p class="note"><strong>Reading PSNR.</strong> ${h(PSNR_NOTE)}</p>`);

  for (const p of x.epochPlots) {
    out.push(`<h2>${h(p.heading)} vs epoch</h2>`);
    if (p.plot) out.push(`<figure>${p.plot.svg}<figcaption>${h(p.caption)}</figcaption></figure>`);
    else out.push(`<p>${h(p.empty)}</p>`);
  }

  out.push('<h2>Loss curves</h2>');
  if (x.lossPlots.length === 0) out.push('<p>No runs.</p>');
  for (const l of x.lossPlots) {
    out.push(`<h3>${h(l.run.name)}</h3>`);
    if (l.plot) out.push(`<figure>${l.plot.svg}<figcaption>${h(l.caption)}</figcaption></figure>`);
    else out.push(`<p>${h(l.caption)}</p>`);
  }

  out.push('<h2>Image grids</h2>');
  if (x.grids.length === 0) out.push('<p>No image grids.</p>');
  for (const g of x.grids) {
    out.push(`<h3>${h(g.grid.title)}</h3>`);
    if (g.dataUri) {
      out.push(`<figure><img src="${g.dataUri}" alt="${h(g.grid.title)}">`);
    } else {
      out.push(`<figure><p class="missing">Image not found: ${h(g.grid.png)}</p>`);
    }
    out.push(`<figcaption>${h(g.grid.caption)}</figcaption></figure>`);
  }

  out.push('<h2>All evaluations</h2>');
  if (r.runs.length === 0) out.push('<p>No runs.</p>');
  for (const run of r.runs) {
    out.push(`<details${run.evals.length ? ' open' : ''}><summary>${h(run.name)}</summary>`);
    out.push(
      run.evals.length
        ? htmlTable(EVAL_HEADER, run.evals.map(evalCells), (i) => i < 5)
        : '<p>Not evaluated.</p>',
    );
    out.push('</details>');
  }

  out.push('</main>', '</body>', '</html>', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Markdown

function mdTable(
  header: string[],
  rows: string[][],
  numeric: (col: number) => boolean = () => false,
): string {
  const line = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [
    line(header.map(escapeMd)),
    line(header.map((_, i) => (numeric(i) ? '---:' : '---'))),
    ...rows.map((row) => line(row.map(escapeMd))),
  ].join('\n');
}

/** Paragraph text that keeps its line breaks. */
const mdLines = (s: string): string =>
  s
    .split(/\r?\n/)
    .map((l) => escapeMd(l))
    .join('  \n');

function renderMd(r: CompareReport, x: Rendered): string {
  const png = (p: Plot) => mdUrl(`plots/${p.name}.png`);
  const out: string[] = [];
  out.push(`# ${escapeMd(r.title)}`, '');
  out.push('## Setup', '');
  out.push(`**Dataset:**  \n${mdLines(r.dataset)}`, '');
  out.push('**Command:**', '', mdFence(r.command), '');
  out.push(`**Eval mode:** ${escapeMd(r.evalMode)}`, '');
  out.push('### Settings common to all runs', '');
  const settings = Object.entries(r.settings);
  out.push(
    settings.length
      ? mdTable(
          ['Option', 'Value'],
          settings.map(([k, v]) => [k, fmtValue(v)]),
        )
      : 'None.',
    '',
  );
  out.push('### Runs', '');
  out.push(r.runs.length ? mdTable(RUN_HEADER, r.runs.map(runCells), (i) => i >= 3) : 'No runs.', '');

  out.push('## Best epoch per run', '');
  out.push(
    r.runs.length ? mdTable(BEST_HEADER, r.runs.map(bestRow).map(bestCells), (i) => i >= 1) : 'No runs.',
    '',
  );
  out.push(`> **Reading PSNR.** ${escapeMd(PSNR_NOTE)}`, '');

  for (const p of x.epochPlots) {
    out.push(`## ${escapeMd(p.heading)} vs epoch`, '');
    if (p.plot)
      out.push(`![${escapeMd(p.heading)} vs epoch](${png(p.plot)})`, '', `*${escapeMd(p.caption)}*`, '');
    else out.push(escapeMd(p.empty), '');
  }

  out.push('## Loss curves', '');
  if (x.lossPlots.length === 0) out.push('No runs.', '');
  for (const l of x.lossPlots) {
    out.push(`### ${escapeMd(l.run.name)}`, '');
    if (l.plot) out.push(`![Losses, ${escapeMd(l.run.name)}](${png(l.plot)})`, '');
    out.push(l.plot ? `*${escapeMd(l.caption)}*` : escapeMd(l.caption), '');
  }

  out.push('## Image grids', '');
  if (x.grids.length === 0) out.push('No image grids.', '');
  for (const g of x.grids) {
    out.push(`### ${escapeMd(g.grid.title)}`, '');
    out.push(`![${escapeMd(g.grid.title)}](${mdUrl(g.grid.png)})`, '');
    if (!g.dataUri) out.push(`(image not found: \`${g.grid.png.replace(/`/g, "'")}\`)`, '');
    out.push(`*${escapeMd(g.grid.caption)}*`, '');
  }

  out.push('## All evaluations', '');
  if (r.runs.length === 0) out.push('No runs.', '');
  for (const run of r.runs) {
    out.push(`### ${escapeMd(run.name)}`, '');
    out.push(
      run.evals.length ? mdTable(EVAL_HEADER, run.evals.map(evalCells), (i) => i < 5) : 'Not evaluated.',
      '',
    );
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------

/**
 * Writes `dir/report.html`, `dir/report.md` and the plots (`dir/plots/NAME.svg` and `.png`: psnr, ssim and
 * one loss-RUN per run that logged steps). Returns the paths written.
 */
export async function writeReport(
  dir: string,
  r: CompareReport,
): Promise<{ html: string; md: string; plots: string[] }> {
  const rendered = await render(dir, r);
  const html = join(dir, 'report.html');
  const md = join(dir, 'report.md');
  await writeFile(html, renderHtml(r, rendered));
  await writeFile(md, renderMd(r, rendered));
  const plots = [...rendered.epochPlots.map((p) => p.plot), ...rendered.lossPlots.map((l) => l.plot)]
    .filter((p): p is Plot => p !== undefined)
    .flatMap((p) => [p.svgPath, p.pngPath]);
  return { html, md, plots };
}
