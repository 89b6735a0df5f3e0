// The train page's training loop, in a Web Worker so the page stays responsive: the same networks,
// step (G then D update, one asynchronous read a step), Adam and seeded dropout as `pix2pix train`,
// bundled from src/. WebGPU where the browser has it, else WASM, and the page is told which.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { registerWasmTrainingKernels } from '../../backend/wasm.js';
import { describeAdapter, registerWebGpuBackend } from '../../backend/webgpu.js';
import { SeededRandom } from '../../data/seeded.js';
import { withDropoutSeed } from '../../models/fused.js';
import { validateConfig } from '../../train/config.js';
import {
  applyStep,
  createTrainState,
  disposeTrainState,
  stepDropoutSeed,
  stepGradients,
  type TrainState,
} from '../../train/step.js';
import {
  type DatasetPairs,
  type PageMessage,
  savedKey,
  type TrainSettings,
  type TrainStatus,
  type WorkerMessage,
} from '../train-types.js';
import { loadSaved, type SavedTraining, save } from './saved-state.js';

const post = (m: WorkerMessage) => (self as unknown as Worker).postMessage(m);
let status: TrainStatus = { state: 'idle', step: 0, epoch: 0, savedStep: 0 };
const update = (s: Partial<TrainStatus>) => {
  status = { ...status, ...s };
  post({ type: 'status', status });
};

/**
 * `webgpu` asked for: any adapter the browser gives, software included (the user asked). `auto`: a
 * hardware adapter only, since a software one is slower than WASM. Otherwise, or when neither
 * works, WASM with its .wasm files from this server; `note` says why WebGPU is not used.
 */
async function chooseBackend(
  want: TrainSettings['backend'],
): Promise<{ name: string; adapter?: string; note?: string }> {
  tf.env().set('PROD', true);
  let note: string | undefined;
  if (want !== 'wasm') {
    try {
      const adapter = await registerWebGpuBackend(want === 'webgpu');
      if (await tf.setBackend('webgpu')) {
        await tf.ready();
        return { name: 'webgpu', adapter: describeAdapter(adapter) };
      }
      note = 'WebGPU failed to start';
    } catch (e) {
      note = (e as Error).message;
    }
  }
  setWasmPaths('/assets/wasm/');
  registerWasmTrainingKernels();
  if (!(await tf.setBackend('wasm'))) throw new Error('neither WebGPU nor WASM could start in this browser');
  await tf.ready();
  return { name: 'wasm', note: note && `WebGPU not used (${note}): training on WASM` };
}

/** An image file as [size, size, 3] values in [-1, 1], decoded off the main thread. */
async function decode(url: string, size: number): Promise<Float32Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(await res.blob());
  } catch {
    throw new Error(`${url.split('/').pop()} is not an image this browser can decode`);
  }
  if (bmp.width < size || bmp.height < size) {
    throw new Error(`${url.split('/').pop()} is ${bmp.width}x${bmp.height}, smaller than the size ${size}`);
  }
  const canvas = new OffscreenCanvas(size, size);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bmp, 0, 0, size, size);
  const rgba = ctx.getImageData(0, 0, size, size).data;
  const out = new Float32Array(size * size * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    out[j] = rgba[i]! / 127.5 - 1;
    out[j + 1] = rgba[i + 1]! / 127.5 - 1;
    out[j + 2] = rgba[i + 2]! / 127.5 - 1;
  }
  return out;
}

/** Every weight of a network (in `model.weights` order), read asynchronously. */
async function valuesOf(model: TrainState['G']): Promise<Float32Array[]> {
  return Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
}

/** A saved state back into the networks and optimizers (its shapes are this setup's: savedKey). */
function restore(state: TrainState, saved: SavedTraining): void {
  for (const [model, values] of [
    [state.G, saved.g],
    [state.D, saved.d],
  ] as const) {
    const tensors = model.weights.map((w, i) => tf.tensor(values[i]!, w.shape as number[]));
    model.setWeights(tensors);
    tf.dispose(tensors);
  }
  state.optG.restoreSnapshot(saved.optG);
  state.optD.restoreSnapshot(saved.optD);
}

async function run(settings: TrainSettings): Promise<void> {
  update({ state: 'loading', error: undefined });
  const backend = await chooseBackend(settings.backend);
  update({ backend: backend.name, adapter: backend.adapter, note: backend.note });
  const res = await fetch(`/api/dataset?name=${encodeURIComponent(settings.dataset)}`);
  // The server's one-line reason ("404 Not Found: no dataset 'x' under --data") without its status.
  if (!res.ok) throw new Error((await res.text()).trim().replace(/^\d+ [^:]*: /, ''));
  const names = ((await res.json()) as DatasetPairs).train;
  if (names.length < settings.batch) {
    throw new Error(
      `${settings.dataset} has ${names.length} training pairs, fewer than a batch of ${settings.batch}`,
    );
  }
  const config = validateConfig({
    data: settings.dataset,
    out: '(browser)',
    size: settings.size,
    ngf: settings.ngf,
    depth: settings.depth,
    batchSize: settings.batch,
    seed: settings.seed,
    lr: settings.lr,
  });
  const base = `/datasets/${encodeURIComponent(settings.dataset)}/train`;
  const pairs = await Promise.all(
    names.map(async (n) => ({
      a: await decode(`${base}/A/${encodeURIComponent(n)}`, config.size),
      b: await decode(`${base}/B/${encodeURIComponent(n)}`, config.size),
    })),
  );
  const state = createTrainState(config);
  const key = savedKey(settings);
  let first = 1;
  const saved = await loadSaved(key).catch(() => undefined);
  if (saved) {
    restore(state, saved);
    first = saved.step + 1;
    update({ resumedFrom: saved.step, savedStep: saved.step, step: saved.step });
  }
  const persist = async (step: number) => {
    await save({
      key,
      step,
      g: await valuesOf(state.G),
      d: await valuesOf(state.D),
      optG: await state.optG.snapshot(),
      optD: await state.optD.snapshot(),
      time: new Date().toISOString(),
    });
    update({ savedStep: step });
  };
  const perEpoch = Math.floor(pairs.length / config.batchSize);
  const px = config.size * config.size * 3;
  update({ state: 'training', params: state.G.countParams() + state.D.countParams() });
  const t0 = performance.now();
  try {
    for (let step = first; step <= settings.steps; step++) {
      if (pauseAsked) {
        // Saved first: a paused tab that is then closed resumes from here.
        if (status.savedStep !== step - 1) await persist(step - 1);
        update({ state: 'paused' });
        await new Promise<void>((resolve) => {
          resumeNow = resolve;
        });
        pauseAsked = false;
        update({ state: 'training' });
      }
      const epoch = Math.floor((step - 1) / perEpoch) + 1;
      // The epoch's seeded pair order.
      const order = new SeededRandom(config.seed * 7919 + epoch).shuffle(Array.from(pairs, (_, i) => i));
      const at = (step - 1) % perEpoch;
      const chosen = order.slice(at * config.batchSize, (at + 1) * config.batchSize).map((i) => pairs[i]!);
      const stack = (k: 'a' | 'b') => {
        const buf = new Float32Array(chosen.length * px);
        chosen.forEach((p, i) => {
          buf.set(p[k], i * px);
        });
        return tf.tensor4d(buf, [chosen.length, config.size, config.size, 3]);
      };
      const [a, b] = [stack('a'), stack('b')];
      let losses: Awaited<ReturnType<typeof applyStep>>;
      try {
        // The CLI's dropout seed for this step: the same masks as `pix2pix train`.
        const seed = stepDropoutSeed(config.seed, step);
        losses = await applyStep(withDropoutSeed(seed, () => stepGradients(state, a, b)));
      } finally {
        tf.dispose([a, b]);
      }
      const seconds = (performance.now() - t0) / 1000;
      update({ step, epoch, losses, imagesPerSec: ((step - first + 1) * config.batchSize) / seconds });
      if (step % settings.saveEvery === 0 || step === settings.steps) await persist(step);
      // A step on WASM resolves its reads without ever leaving the microtask queue: yield, so the
      // page's messages (pause) get in between steps.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  } finally {
    disposeTrainState(state);
  }
  update({ state: 'done' });
}

let pauseAsked = false;
let resumeNow: (() => void) | undefined;

self.onmessage = (e: MessageEvent<PageMessage>) => {
  if (e.data.type === 'pause') {
    pauseAsked = true;
    return;
  }
  if (e.data.type === 'resume') {
    pauseAsked = false;
    resumeNow?.();
    resumeNow = undefined;
    return;
  }
  run(e.data.settings).catch((err: unknown) => {
    update({ state: 'error', error: (err as Error).message.split('\n')[0] });
  });
};
