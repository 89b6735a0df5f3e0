/// <reference lib="dom" />
// The try-it page: a checkpoint's generator (its own generator/model.json + weights.bin, a tfjs layers
// model) runs in the browser on an image the user picks or drops; nothing is uploaded. Images of any
// size go through translateImage of src/infer/tiling.ts, the code `pix2pix translate` runs in Node:
// reflect-padded to the network's multiple, tiled with blending above twice the training size.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { registerWasmTrainingKernels } from '../../backend/wasm.js';
import type { RgbImage } from '../../data/rgb.js';
import {
  type FlexibleGenerator,
  flexibleGenerator,
  tileSettings,
  translateImage,
} from '../../infer/tiling.js';
import '../../models/instance-norm.js';
import type { CheckpointInfo, RunDetail, RunList } from '../types.js';
import { fill, fmt, getJson, h, runUrl, showError } from './dom.js';

/** Largest image accepted (pixels): the browser tab's memory, not the model, is the limit. */
const MAX_PIXELS = 40e6;

const app = document.getElementById('app')!;
const params = new URLSearchParams(location.search);

/**
 * WASM (tfjs-backend-wasm, its .wasm files served by this server), else the plain-JS cpu backend.
 * WebGL would need @tensorflow/tfjs-backend-webgl, which this package does not depend on. The WASM
 * backend gets the same kernel set as the CLI's (src/backend/wasm.ts), so both compute alike.
 */
async function initBackend(): Promise<{ name: string; note?: string }> {
  tf.env().set('PROD', true);
  setWasmPaths('/assets/wasm/');
  try {
    registerWasmTrainingKernels();
    if (await tf.setBackend('wasm')) {
      await tf.ready();
      return { name: 'wasm' };
    }
  } catch (e) {
    await tf.setBackend('cpu');
    return {
      name: 'cpu',
      note: `WASM unavailable (${(e as Error).message}); the slower cpu backend runs instead`,
    };
  }
  await tf.setBackend('cpu');
  return { name: 'cpu', note: 'WASM unavailable; the slower cpu backend runs instead' };
}

/** Decodes an image file to 8-bit RGB as the Node side does: EXIF orientation applied, alpha on white. */
async function decodeFile(file: Blob): Promise<RgbImage> {
  const bmp = await createImageBitmap(file, {
    colorSpaceConversion: 'none',
    premultiplyAlpha: 'none',
    imageOrientation: 'from-image',
  });
  const { width, height } = bmp;
  if (width * height > MAX_PIXELS) {
    bmp.close();
    throw new Error(
      `${width}x${height} is more than ${MAX_PIXELS / 1e6} megapixels: use pix2pix translate for it`,
    );
  }
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    data[j] = rgba[i]!;
    data[j + 1] = rgba[i + 1]!;
    data[j + 2] = rgba[i + 2]!;
  }
  return { width, height, data };
}

function toCanvas(img: RgbImage, label: string): HTMLCanvasElement {
  const canvas = h('canvas', { width: img.width, height: img.height, 'aria-label': label });
  const ctx = canvas.getContext('2d')!;
  const out = ctx.createImageData(img.width, img.height);
  for (let i = 0, j = 0; j < img.data.length; i += 4, j += 3) {
    out.data[i] = img.data[j]!;
    out.data[i + 1] = img.data[j + 1]!;
    out.data[i + 2] = img.data[j + 2]!;
    out.data[i + 3] = 255;
  }
  ctx.putImageData(out, 0, 0);
  return canvas;
}

const generators = new Map<string, Promise<FlexibleGenerator>>();

/** The checkpoint's generator, rebuilt to take any multiple of its 2^depth (cached per model URL). */
function generatorFor(modelUrl: string): Promise<FlexibleGenerator> {
  let g = generators.get(modelUrl);
  if (!g) {
    g = (async () => {
      const G = await tfl.loadLayersModel(modelUrl);
      try {
        return await flexibleGenerator(G);
      } finally {
        G.dispose();
      }
    })();
    g.catch(() => generators.delete(modelUrl));
    generators.set(modelUrl, g);
  }
  return g;
}

async function main(): Promise<void> {
  document.title = 'pix2pix: try it';
  const backendP = initBackend();
  const runs = (await getJson<RunList>('/api/runs')).runs.filter(
    (r) => r.kind === 'run' && r.epoch !== undefined,
  );
  const status = h('p', { id: 'status', 'data-state': 'idle', role: 'status' });
  const setStatus = (state: string, text: string) => {
    status.dataset.state = state;
    status.textContent = text;
  };
  if (runs.length === 0) {
    fill(app, h('h1', {}, 'Try a generator'), h('p', {}, 'No run with a checkpoint under --runs yet.'));
    return;
  }
  const runSelect = h(
    'select',
    { id: 'run', 'aria-label': 'run' },
    ...runs.map((r) => h('option', { value: r.id }, r.id || r.name)),
  );
  const epochSelect = h('select', { id: 'epoch', 'aria-label': 'epoch' });
  const fileInput = h('input', { type: 'file', id: 'file', accept: 'image/*' });
  const drop = h(
    'label',
    { class: 'drop', for: 'file' },
    h('strong', {}, 'Drop an image here'),
    ' or click to choose one',
    fileInput,
  );
  const info = h('p', { class: 'muted' });
  const result = h('div', { class: 'pair' });
  const backendNote = h('span');
  fill(
    app,
    h('h1', {}, 'Try a generator'),
    h(
      'p',
      {},
      "The checkpoint's generator runs in this browser with TensorFlow.js (backend ",
      backendNote,
      '). The image never leaves your machine: nothing is uploaded.',
    ),
    h(
      'p',
      { class: 'controls' },
      h('label', {}, 'run ', runSelect),
      h('label', {}, 'checkpoint ', epochSelect),
      h('a', { id: 'dashboard-link', href: '#' }, 'dashboard'),
    ),
    info,
    drop,
    status,
    result,
    h(
      'p',
      { class: 'note' },
      'Any image size: the image is reflect-padded to a multiple of the network’s 2^depth and, when a side is over ',
      'twice the training size, cut into overlapping tiles blended with a raised-cosine window — the same code as ',
      h('code', {}, 'pix2pix translate'),
      ' (src/infer/tiling.ts). Nothing is resized. ',
      'On WASM the output equals the CLI’s on WASM pixel for pixel (the same code and kernels); other backends differ by float rounding.',
    ),
  );

  let detail: RunDetail | undefined;
  let image: { img: RgbImage; name: string } | undefined;
  let job = 0;

  const checkpointOf = (): CheckpointInfo | undefined =>
    detail?.checkpoints.find((c) => c.name === epochSelect.value && c.model !== undefined);

  const run = async () => {
    const ckpt = checkpointOf();
    if (!image || !ckpt?.model) return;
    const mine = ++job;
    const { img, name } = image;
    fill(
      result,
      h(
        'figure',
        {},
        toCanvas(img, 'input'),
        h('figcaption', {}, `input ${name}: ${img.width}×${img.height}`),
      ),
    );
    try {
      setStatus('loading', `loading ${ckpt.name}…`);
      const backend = await backendP;
      const t0 = performance.now();
      const gen = await generatorFor(ckpt.model);
      const loadMs = performance.now() - t0;
      if (mine !== job) return;
      const { tile } = tileSettings(gen);
      setStatus('running', `translating ${img.width}×${img.height}…`);
      let tiles = 0;
      const t1 = performance.now();
      const out = await translateImage(gen, img, { onTile: (_d, n) => (tiles = n) });
      const ms = performance.now() - t1;
      if (mine !== job) return;
      const canvas = toCanvas(out, 'output');
      const link = h(
        'a',
        { download: `${name.replace(/\.[^.]*$/, '')}-${ckpt.name}.png`, href: '#' },
        'download',
      );
      canvas.toBlob((blob) => {
        if (blob) link.setAttribute('href', URL.createObjectURL(blob));
      }, 'image/png');
      result.append(
        h(
          'figure',
          { id: 'output' },
          canvas,
          h('figcaption', {}, `output of ${ckpt.name}: ${fmt(ms, 0)} ms on ${backend.name} `, link),
        ),
      );
      result.dataset.ms = String(ms);
      setStatus(
        'done',
        `translated ${img.width}×${img.height} in ${fmt(ms, 0)} ms (${tiles} tile${tiles === 1 ? '' : 's'} of up to ${tile} px, padded to multiples of ${gen.multiple}; model loaded in ${fmt(loadMs, 0)} ms; backend ${backend.name})`,
      );
    } catch (e) {
      if (mine === job) setStatus('error', `failed: ${(e as Error).message}`);
    }
  };

  const loadRun = async () => {
    const id = runSelect.value;
    (document.getElementById('dashboard-link') as HTMLAnchorElement).href = runUrl(id);
    detail = await getJson<RunDetail>(`/api/run?id=${encodeURIComponent(id)}`);
    const usable = detail.checkpoints.filter((c) => c.model && !c.mid);
    const evalBy = new Map(detail.eval.map((r) => [r.epoch, r]));
    const wanted = Number(params.get('epoch'));
    const pick =
      usable.find((c) => c.epoch === wanted && params.get('run') === id) ??
      usable.find((c) => c.latest) ??
      usable[usable.length - 1];
    fill(
      epochSelect,
      ...[...usable].reverse().map((c) => {
        const e = evalBy.get(c.epoch);
        return h(
          'option',
          { value: c.name, selected: c === pick },
          `epoch ${c.epoch}${c.latest ? ' (latest)' : ''}${e ? ` · PSNR ${fmt(e.psnr, 2)} dB` : ''}`,
        );
      }),
    );
    const cfg = (detail.config as { config?: { size?: number; direction?: string; data?: string } } | null)
      ?.config;
    info.textContent = cfg
      ? `Trained at ${cfg.size} px, direction ${cfg.direction ?? 'AtoB'} on ${cfg.data}: give it an image like the dataset's ${cfg.direction === 'BtoA' ? 'B' : 'A'} side.`
      : '';
    await run();
  };

  runSelect.addEventListener('change', () => loadRun().catch((e) => setStatus('error', String(e))));
  epochSelect.addEventListener('change', () => run());
  const takeFile = async (file: File | undefined) => {
    if (!file) return;
    try {
      image = { img: await decodeFile(file), name: file.name };
      await run();
    } catch (e) {
      setStatus('error', `cannot read ${file.name}: ${(e as Error).message}`);
    }
  };
  fileInput.addEventListener('change', () => takeFile(fileInput.files?.[0]));
  drop.addEventListener('dragover', (ev) => {
    ev.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    takeFile(ev.dataTransfer?.files[0]);
  });

  const want = params.get('run');
  if (want !== null && runs.some((r) => r.id === want)) runSelect.value = want;
  await loadRun();
  const backend = await backendP;
  backendNote.textContent = backend.name;
  if (backend.note) info.after(h('p', { class: 'error' }, backend.note));
  if (status.dataset.state === 'idle') setStatus('ready', 'ready: choose or drop an image');
}

main().catch((e) => showError(app, e));
