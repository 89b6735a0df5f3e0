// The train page: a setup from the URL (or the form), training in a Web Worker (train-worker.ts),
// live losses, and the status as JSON in document.body.dataset.trainStatus.
import type {
  DatasetSummary,
  PageMessage,
  TrainSettings,
  TrainStatus,
  WorkerMessage,
} from '../train-types.js';
import { LineChart } from './chart.js';
import { fill, fmt, getJson, h, showError } from './dom.js';

const app = document.getElementById('app')!;
const params = new URLSearchParams(location.search);

const DEFAULTS: TrainSettings = {
  dataset: '',
  size: 64,
  ngf: 16,
  depth: 0,
  batch: 4,
  steps: 200,
  seed: 1,
  lr: 2e-4,
  saveEvery: 10,
  backend: 'auto',
};

/** The settings the URL gives, over the defaults; a bad number is a message naming the parameter. */
function settingsFromUrl(): TrainSettings {
  const s = { ...DEFAULTS };
  for (const key of ['size', 'ngf', 'depth', 'batch', 'steps', 'seed', 'saveEvery'] as const) {
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
  const datasets = await getJson<DatasetSummary[]>('/api/datasets');
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
  const numberField = (key: 'size' | 'ngf' | 'batch' | 'steps') =>
    h(
      'label',
      {},
      `${key} `,
      h('input', { type: 'number', id: key, value: String(settings[key]), min: '1' }),
    );
  const start = h('button', { id: 'start', type: 'button' }, 'Start');
  const pause = h('button', { id: 'pause', type: 'button', disabled: '' }, 'Pause');
  const line = h(
    'p',
    { id: 'status', class: 'muted' },
    datasets.length ? 'ready' : 'serve --data DIR offers no dataset',
  );
  const chart = new LineChart({ title: 'losses', xLabel: 'step', digits: 4 });
  const points = {
    gL1: [] as [number, number][],
    gGan: [] as [number, number][],
    d: [] as [number, number][],
  };
  fill(
    app,
    h('h1', {}, 'Train in this tab'),
    h(
      'div',
      { class: 'controls' },
      select,
      numberField('size'),
      numberField('ngf'),
      numberField('batch'),
      numberField('steps'),
      start,
      pause,
    ),
    line,
    chart.el,
  );

  const begin = () => {
    start.setAttribute('disabled', '');
    for (const key of ['size', 'ngf', 'batch', 'steps'] as const) {
      settings[key] = Number((document.getElementById(key) as HTMLInputElement).value);
    }
    settings.dataset = select.value;
    const worker = new Worker('/assets/train-worker.js', { type: 'module' });
    const tell = (m: PageMessage) => worker.postMessage(m);
    pause.removeAttribute('disabled');
    pause.onclick = () => {
      const paused = status.state === 'paused';
      tell({ type: paused ? 'resume' : 'pause' });
      pause.textContent = paused ? 'Pause' : 'Resume';
    };
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      status = e.data.status;
      publish(status);
      const l = status.losses;
      if (l && status.state === 'training') {
        points.gL1.push([status.step, l.gL1]);
        points.gGan.push([status.step, l.gGan]);
        points.d.push([status.step, l.d]);
        chart.update([
          { name: 'G L1', color: '#1f77b4', points: points.gL1 },
          { name: 'G GAN', color: '#ff7f0e', points: points.gGan },
          { name: 'D', color: '#2ca02c', points: points.d },
        ]);
      }
      const where = status.backend ? `${status.backend}${status.adapter ? ` (${status.adapter})` : ''}` : '';
      line.textContent = [
        status.state,
        where,
        status.note,
        status.step ? `step ${status.step}/${settings.steps}, epoch ${status.epoch}` : '',
        status.imagesPerSec ? `${fmt(status.imagesPerSec, 2)} img/s` : '',
        status.error,
      ]
        .filter(Boolean)
        .join(' · ');
      if (status.state === 'done' || status.state === 'error') {
        start.removeAttribute('disabled');
        pause.setAttribute('disabled', '');
      }
    };
    worker.onerror = (e) => {
      status = { ...status, state: 'error', error: e.message || 'the training worker failed to start' };
      publish(status);
      line.textContent = status.error!;
    };
    tell({ type: 'start', settings });
  };
  start.addEventListener('click', begin);
  if (params.get('autostart') === '1') begin();
}

main().catch((e: unknown) => {
  publish({ state: 'error', step: 0, epoch: 0, savedStep: 0, error: (e as Error).message });
  showError(app, e);
});
