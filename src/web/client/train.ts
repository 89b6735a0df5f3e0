// The train page: a setup from the URL (or the form), training in a Web Worker (train-worker.ts),
// live losses, and the status as JSON in document.body.dataset.trainStatus.

import { PRESET_NAMES } from '../../train/presets.js';
import { fmtDuration } from '../../util/format.js';
import {
  type DatasetSummary,
  DROPPED_PREFIX,
  type DroppedFile,
  type PageMessage,
  type TrainSettings,
  type TrainStatus,
  type WorkerMessage,
} from '../train-types.js';
import type { RunList } from '../types.js';
import { LineChart } from './chart.js';
import { fill, fmt, fmtSig, getJson, h, showError } from './dom.js';

const app = document.getElementById('app')!;
const params = new URLSearchParams(location.search);

const DEFAULTS: TrainSettings = {
  dataset: '',
  size: 64,
  ngf: 16,
  ndf: 64,
  depth: 0,
  batch: 4,
  steps: 200,
  seed: 1,
  lr: 0,
  preset: '',
  saveEvery: 10,
  backend: 'auto',
  finetune: '',
  kind: 'auto',
  degrade: 'gaussian:25',
  probe: false,
};

const KINDS = ['auto', 'aligned', 'folders', 'photos'] as const;

/** The settings the URL gives, over the defaults; a bad number is a message naming the parameter. */
function settingsFromUrl(): TrainSettings {
  const s = { ...DEFAULTS };
  for (const key of ['size', 'ngf', 'ndf', 'depth', 'batch', 'steps', 'seed', 'saveEvery'] as const) {
    const v = params.get(key);
    if (v === null) continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`URL parameter ${key}=${v} is not a whole number`);
    s[key] = n;
  }
  const lr = params.get('lr');
  if (lr !== null) {
    if (!(Number(lr) > 0)) throw new Error(`URL parameter lr=${lr} is not a positive number`);
    s.lr = Number(lr);
  }
  s.dataset = params.get('dataset') ?? '';
  s.preset = params.get('preset') ?? '';
  if (s.preset && !(PRESET_NAMES as string[]).includes(s.preset)) {
    throw new Error(`URL parameter preset=${s.preset}: use ${PRESET_NAMES.join(', ')} (or none)`);
  }
  s.finetune = params.get('finetune') ?? '';
  const kind = params.get('kind') ?? 'auto';
  if (!(KINDS as readonly string[]).includes(kind)) {
    throw new Error(`URL parameter kind=${kind}: use ${KINDS.join(', ')}`);
  }
  s.kind = kind as TrainSettings['kind'];
  s.degrade = params.get('degrade') ?? s.degrade;
  s.probe = params.get('probe') === '1';
  const backend = params.get('backend') ?? 'auto';
  if (backend !== 'auto' && backend !== 'webgpu' && backend !== 'wasm') {
    throw new Error(`URL parameter backend=${backend}: use auto, webgpu or wasm`);
  }
  s.backend = backend;
  return s;
}

function publish(status: TrainStatus): void {
  document.body.dataset.trainStatus = JSON.stringify(status);
}

async function main(): Promise<void> {
  let settings: TrainSettings;
  let status: TrainStatus = { state: 'idle', step: 0, epoch: 0, savedStep: 0 };
  publish(status);
  try {
    settings = settingsFromUrl();
  } catch (e) {
    status = { ...status, state: 'error', error: (e as Error).message };
    publish(status);
    showError(app, e);
    return;
  }
  const [datasets, runs] = await Promise.all([
    // From a static host (no serve API) the page still trains on dropped files.
    getJson<DatasetSummary[]>('/api/datasets').catch(() => [] as DatasetSummary[]),
    getJson<RunList>('/api/runs').then(
      (l) => l.runs.filter((r) => r.kind === 'run' && r.epoch !== undefined),
      () => [],
    ),
  ]);
  const select = h(
    'select',
    { id: 'dataset' },
    ...datasets.map((d) =>
      h('option', { value: d.name }, `${d.name} (${d.train} train / ${d.test} test pairs)`),
    ),
  );
  // A dataset the URL names but the server does not offer stays chosen: starting says it is missing.
  if (settings.dataset && !datasets.some((d) => d.name === settings.dataset)) {
    select.append(h('option', { value: settings.dataset }, `${settings.dataset} (not offered here)`));
  }
  if (settings.dataset) select.value = settings.dataset;
  const from = h(
    'select',
    { id: 'finetune', title: 'train from scratch, or fine-tune the latest checkpoint of a served run' },
    h('option', { value: '' }, 'from scratch'),
    ...runs.map((r) => h('option', { value: r.id }, `fine-tune ${r.id} (epoch ${r.epoch})`)),
  );
  if (settings.finetune && !runs.some((r) => r.id === settings.finetune)) {
    from.append(
      h('option', { value: settings.finetune }, `fine-tune ${settings.finetune} (not offered here)`),
    );
  }
  from.value = settings.finetune;
  const preset = h(
    'select',
    { id: 'preset', title: 'a preset of pix2pix train --preset: its model, losses, rate and schedule' },
    h('option', { value: '' }, 'reference model'),
    ...PRESET_NAMES.map((p) => h('option', { value: p }, `preset ${p}`)),
  );
  preset.value = settings.preset;
  const numberField = (key: 'size' | 'ngf' | 'ndf' | 'batch' | 'steps') =>
    h(
      'label',
      {},
      `${key} `,
      h('input', { type: 'number', id: key, value: String(settings[key]), min: '1' }),
    );
  // The user's own files: a folder or files chosen, or dropped anywhere on the page.
  const kindSelect = h(
    'select',
    { id: 'kind', title: 'how your files make pairs' },
    ...KINDS.map((k) => h('option', { value: k }, k === 'auto' ? 'files: auto' : `files: ${k}`)),
  );
  kindSelect.value = settings.kind;
  const degradeInput = h('input', {
    id: 'degrade',
    value: settings.degrade,
    size: 14,
    title:
      "photos: how A is made from each photo, as prepare's --degrade (gaussian:25, blur:2, gray, edges, jpeg:20, joined with +)",
  });
  const folderInput = h('input', { type: 'file', id: 'folder', webkitdirectory: '', multiple: '' });
  const filesInput = h('input', { type: 'file', id: 'files', multiple: '' });
  let dropped: DroppedFile[] | undefined;
  const useFiles = (files: DroppedFile[]) => {
    if (files.length === 0) return;
    dropped = files;
    const value = `${DROPPED_PREFIX}${fingerprint(files)}`;
    select.querySelector(`option[value^="${DROPPED_PREFIX}"]`)?.remove();
    select.append(h('option', { value }, `your ${files.length} files`));
    select.value = value;
  };
  for (const input of [folderInput, filesInput]) {
    input.addEventListener('change', () =>
      useFiles(
        [...(input.files ?? [])].map((file) => ({ path: file.webkitRelativePath || file.name, file })),
      ),
    );
  }
  const dropZone = () => document.getElementById('drop');
  document.addEventListener('dragover', (e) => {
    e.preventDefault();
    dropZone()?.classList.add('over');
  });
  document.addEventListener('dragleave', () => dropZone()?.classList.remove('over'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    dropZone()?.classList.remove('over');
    const entries = [...(e.dataTransfer?.items ?? [])]
      .map((i) => i.webkitGetAsEntry())
      .filter((x) => x !== null);
    void Promise.all(entries.map((en) => filesOf(en))).then((lists) => useFiles(lists.flat()));
  });
  const start = h('button', { id: 'start', type: 'button' }, 'Start');
  const pause = h('button', { id: 'pause', type: 'button', disabled: '' }, 'Pause');
  const getModel = h('button', { id: 'download-model', type: 'button', disabled: '' }, 'Download model');
  const getRun = h('button', { id: 'download-run', type: 'button', disabled: '' }, 'Download checkpoint');
  const line = h(
    'p',
    { id: 'status', class: 'muted' },
    datasets.length ? 'ready' : 'no dataset offered here (serve --data DIR): choose or drop your own files',
  );
  const about = h('p', { id: 'about', class: 'muted' });
  const lossChart = new LineChart({ title: 'losses', xLabel: 'step', digits: 4 });
  const psnrChart = new LineChart({ title: 'PSNR on the held-out pairs (dB)', xLabel: 'step', digits: 2 });
  const ssimChart = new LineChart({ title: 'SSIM on the held-out pairs', xLabel: 'step', digits: 4 });
  const grid = h('img', { id: 'grid', alt: 'input | target | output of held-out pairs', hidden: '' });
  const gridCaption = h('figcaption', {}, 'newest samples: input | target | output');
  const points = {
    gL1: [] as [number, number][],
    gGan: [] as [number, number][],
    d: [] as [number, number][],
  };
  fill(
    app,
    h('h1', {}, 'Train in this tab'),
    h(
      'p',
      { class: 'muted' },
      'The same training as pix2pix train, in this tab: on the GPU through WebGPU where the browser has it, else on the CPU (WASM). Nothing is uploaded.',
    ),
    h(
      'div',
      { class: 'controls' },
      h('strong', {}, 'Data'),
      select,
      kindSelect,
      h('label', {}, 'degrade ', degradeInput),
    ),
    h(
      'label',
      { class: 'drop', id: 'drop' },
      'Drop photos, side-by-side A|B images, or a folder with A/ and B/ here, or choose a folder or images:',
      h(
        'span',
        { class: 'pickers' },
        h('span', {}, 'a folder ', folderInput),
        h('span', {}, 'images ', filesInput),
      ),
    ),
    h(
      'div',
      { class: 'controls' },
      h('strong', {}, 'Model'),
      from,
      preset,
      numberField('size'),
      numberField('ngf'),
      numberField('ndf'),
      numberField('batch'),
      numberField('steps'),
    ),
    h('div', { class: 'controls' }, start, pause, getModel, getRun),
    line,
    about,
    h(
      'div',
      { class: 'charts' },
      lossChart.el,
      psnrChart.el,
      ssimChart.el,
      h('figure', { class: 'chart-box' }, gridCaption, grid),
    ),
  );

  /** The worker's first-step probe (probe=1), for scripts comparing the page's step with Node's. */
  let firstStep: Promise<Extract<WorkerMessage, { type: 'probe' }>> | undefined;
  let worker: Worker | undefined;
  const show = (st: TrainStatus) => {
    const where = st.backend ? `${st.backend}${st.adapter ? ` (${st.adapter})` : ''}` : '';
    line.textContent = [
      st.state,
      where,
      st.note,
      st.progress,
      st.step ? `step ${st.step}/${settings.steps}, epoch ${st.epoch}` : '',
      st.lr !== undefined && st.state === 'training'
        ? `lr ${fmtSig(st.lr, 3)}${st.adversarial ? '' : ', L1 only'}`
        : '',
      st.imagesPerSec && st.state === 'training' ? `${fmt(st.imagesPerSec, 2)} img/s` : '',
      st.imagesPerSec && st.state === 'training' && st.step < settings.steps
        ? `ETA ${fmtDuration(((settings.steps - st.step) * settings.batch) / st.imagesPerSec)}`
        : '',
      st.error,
    ]
      .filter(Boolean)
      .join(' · ');
    const m = st.model;
    about.textContent = [
      st.finetunedFrom ? `fine-tuning ${st.finetunedFrom}` : '',
      m ? `${m.size} px, ngf ${m.ngf}, ndf ${m.ndf}, depth ${m.depth}, ${m.norm} norm` : '',
      st.params ? `${(st.params / 1e6).toFixed(2)} M parameters` : '',
      st.memoryBytes ? `~${Math.ceil(st.memoryBytes / 2 ** 20)} MiB a step (estimate)` : '',
      st.pairs
        ? `${st.pairs.kind ? `your files as ${st.pairs.kind} pairs; ` : ''}split: ${st.pairs.train} training pairs${st.pairs.trainSources ? ` from ${count(st.pairs.trainSources, 'source')}` : ''}, ${st.pairs.test} held out${st.pairs.testSources ? ` from ${count(st.pairs.testSources, 'source')}` : ''}`
        : '',
      st.savedStep ? `saved in this browser at step ${st.savedStep}` : '',
    ]
      .filter(Boolean)
      .join(' · ');
    const l = st.losses;
    if (l && st.state === 'training' && points.gL1.at(-1)?.[0] !== st.step) {
      points.gL1.push([st.step, l.gL1]);
      points.gGan.push([st.step, l.gGan]);
      points.d.push([st.step, l.d]);
      lossChart.update([
        { name: 'G L1', color: '#1f77b4', points: points.gL1 },
        { name: 'G GAN', color: '#ff7f0e', points: points.gGan },
        { name: 'D', color: '#2ca02c', points: points.d },
      ]);
    }
    if (st.evals?.length) {
      psnrChart.update([{ name: 'PSNR', color: '#1f77b4', points: st.evals.map((r) => [r.step, r.psnr]) }]);
      ssimChart.update([{ name: 'SSIM', color: '#1f77b4', points: st.evals.map((r) => [r.step, r.ssim]) }]);
    }
  };

  const begin = () => {
    start.setAttribute('disabled', '');
    for (const key of ['size', 'ngf', 'ndf', 'batch', 'steps'] as const) {
      settings[key] = Number((document.getElementById(key) as HTMLInputElement).value);
    }
    settings.dataset = select.value;
    settings.finetune = from.value;
    settings.preset = preset.value;
    settings.kind = kindSelect.value as TrainSettings['kind'];
    settings.degrade = degradeInput.value.trim();
    worker?.terminate();
    const w = new Worker('/assets/train-worker.js', { type: 'module' });
    worker = w;
    const tell = (m: PageMessage) => w.postMessage(m);
    let gotProbe: (m: Extract<WorkerMessage, { type: 'probe' }>) => void = () => {};
    if (settings.probe) firstStep = new Promise((resolve) => (gotProbe = resolve));
    pause.removeAttribute('disabled');
    pause.onclick = () => {
      const paused = status.state === 'paused';
      tell({ type: paused ? 'resume' : 'pause' });
      pause.textContent = paused ? 'Pause' : 'Resume';
    };
    const ask = (what: 'model' | 'run') => () => {
      tell({ type: 'download', what });
    };
    getModel.onclick = ask('model');
    getRun.onclick = ask('run');
    w.onmessage = (e: MessageEvent<WorkerMessage>) => {
      const m = e.data;
      if (m.type === 'probe') return gotProbe(m);
      if (m.type === 'grid') {
        const old = grid.src;
        grid.src = URL.createObjectURL(m.png);
        grid.removeAttribute('hidden');
        gridCaption.textContent = `samples after epoch ${m.epoch}: input | target | output`;
        if (old) URL.revokeObjectURL(old);
        return;
      }
      if (m.type === 'download') {
        if (m.error) line.textContent = m.error;
        if (m.blob) save(m.blob, m.name);
        return;
      }
      status = m.status;
      publish(status);
      show(status);
      // A state is there to download once a step is saved (the worker reads its own networks).
      for (const b of [getModel, getRun]) {
        if (status.step > 0 && status.state !== 'loading') b.removeAttribute('disabled');
      }
      if (status.state === 'done' || status.state === 'error') {
        start.removeAttribute('disabled');
        pause.setAttribute('disabled', '');
      }
    };
    w.onerror = (e) => {
      status = { ...status, state: 'error', error: e.message || 'the training worker failed to start' };
      publish(status);
      line.textContent = status.error!;
    };
    tell({
      type: 'start',
      settings,
      files: settings.dataset.startsWith(DROPPED_PREFIX) ? dropped : undefined,
    });
  };
  start.addEventListener('click', begin);
  // For scripts and tests: the first step's probe, and losing the GPU device on purpose.
  (globalThis as { p2pTrain?: unknown }).p2pTrain = {
    firstStep: () => firstStep,
    loseDevice: () => worker?.postMessage({ type: 'lose-device' } satisfies PageMessage),
  };
  if (params.get('autostart') === '1') begin();
}

const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

/** The files under a dropped entry (a folder, recursively), with their paths from the drop. */
async function filesOf(entry: FileSystemEntry): Promise<DroppedFile[]> {
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject),
    );
    return [{ path: entry.fullPath.replace(/^\//, ''), file }];
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const out: DroppedFile[] = [];
  // readEntries answers in chunks (100 in Chromium) until it answers none.
  for (;;) {
    const chunk = await new Promise<FileSystemEntry[]>((resolve, reject) =>
      reader.readEntries(resolve, reject),
    );
    if (chunk.length === 0) return out;
    for (const e of chunk) out.push(...(await filesOf(e)));
  }
}

/** A short hash of the files' paths, sizes and times: choosing the same files again resumes their run. */
function fingerprint(files: DroppedFile[]): string {
  let h1 = 0x811c9dc5;
  for (const f of [...files].sort((x, y) => (x.path < y.path ? -1 : 1))) {
    for (const c of `${f.path}\0${f.file.size}\0${f.file.lastModified}\n`) {
      h1 = Math.imul(h1 ^ c.charCodeAt(0), 0x01000193) >>> 0;
    }
  }
  return h1.toString(16).padStart(8, '0');
}

/** A Blob saved as a file by the browser's download. */
function save(blob: Blob, name: string): void {
  const a = h('a', { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60_000);
}

main().catch((e: unknown) => {
  publish({ state: 'error', step: 0, epoch: 0, savedStep: 0, error: (e as Error).message });
  showError(app, e);
});
