// The train page's training loop, in a Web Worker so the page stays responsive: the same networks,
// step (G then D update, one asynchronous read a step), Adam, seeded dropout and scores as
// `pix2pix train`, bundled from src/. WebGPU where the browser has it, else WASM, and the page is told which.
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as tfl from '@tensorflow/tfjs-layers';
import { registerWasmTrainingKernels } from '../../backend/wasm.js';
import {
  activeAdapter,
  describeAdapter,
  destroyDevice,
  deviceLost,
  registerWebGpuBackend,
} from '../../backend/webgpu.js';
import { encodePngBlob } from '../../data/canvas.js';
import { gridPixels } from '../../data/pixels.js';
import { SeededRandom } from '../../data/seeded.js';
import type { PairSource } from '../../data/types.js';
import { EVAL_BATCH, evaluateGenerator } from '../../eval/metrics.js';
import { exportFiles } from '../../export/metadata.js';
import { generate, withDropoutSeed } from '../../models/fused.js';
import type { CheckpointMeta, MetricsRow } from '../../run/records.js';
import { generatorDepth, learningRateAt, type TrainConfig, validateConfig } from '../../train/config.js';
import { chooseMicroBatch, stepMemoryBytes } from '../../train/memory.js';
import { PRESETS, type PresetName } from '../../train/presets.js';
import { runFolderZip } from '../../train/run-files.js';
import {
  applyStep,
  createTrainState,
  type PendingStep,
  stepDropoutSeed,
  stepGradients,
  type TrainState,
} from '../../train/step.js';
import { zip } from '../../util/zip.js';
import {
  DROPPED_PREFIX,
  type DroppedFile,
  type PageEvalRow,
  type PageMessage,
  savedKey,
  type TrainSettings,
  type TrainStatus,
  type WorkerMessage,
} from '../train-types.js';
import type { RunDetail } from '../types.js';
import { loadSaved, type SavedTraining, save } from './saved-state.js';
import { droppedPairs, type PagePairs, type Pair, servedPairNames, servedPairs } from './train-data.js';

const post = (m: WorkerMessage, transfer: Transferable[] = []) =>
  (self as unknown as Worker).postMessage(m, transfer);
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

/** The model to train: from the settings, or a served run's latest checkpoint to fine-tune. */
interface ModelSetup {
  config: TrainConfig;
  models?: { G: tfl.LayersModel; D: tfl.LayersModel };
  from?: string;
}

/**
 * A served run's config (the same validation as the CLI's) with this page's batch, seed and rate,
 * and its latest checkpoint's networks. A run without a checkpoint is a one-line reason.
 */
async function finetuneSetup(settings: TrainSettings): Promise<ModelSetup> {
  const res = await fetch(`/api/run?id=${encodeURIComponent(settings.finetune)}`);
  if (!res.ok) throw new Error((await res.text()).trim().replace(/^\d+ [^:]*: /, ''));
  const run = (await res.json()) as RunDetail;
  const saved = (run.config as { config?: Partial<TrainConfig> } | null)?.config;
  if (!saved) throw new Error(`run ${settings.finetune} has no readable config.json to fine-tune from`);
  const ckpt = run.checkpoints.find((c) => c.latest) ?? run.checkpoints.at(-1);
  if (!ckpt?.model) throw new Error(`run ${settings.finetune} has no checkpoint with a generator yet`);
  const config = validateConfig({
    ...saved,
    data: settings.dataset,
    out: '(browser)',
    batchSize: settings.batch,
    seed: settings.seed,
    ...(settings.lr > 0 ? { lr: settings.lr } : {}),
    microBatch: 0,
    backend: 'auto',
  });
  const G = await tfl.loadLayersModel(ckpt.model);
  const D = await tfl.loadLayersModel(
    ckpt.model.replace(/\/generator\/model\.json$/, '/discriminator/model.json'),
  );
  return {
    config,
    models: { G, D },
    from: `${settings.finetune} (epoch ${ckpt.epoch}${ckpt.step ? `, step ${ckpt.step}` : ''})`,
  };
}

/**
 * From scratch: the reference model at the page's size, ngf, ndf and depth, or a preset's model, losses,
 * rate and schedule (on whole pairs: no crop, no degradation on the fly, so no shrinking before it)
 * at the page's size.
 */
function scratchSetup(settings: TrainSettings): ModelSetup {
  const common = {
    data: settings.dataset,
    out: '(browser)',
    size: settings.size,
    batchSize: settings.batch,
    seed: settings.seed,
    ...(settings.lr > 0 ? { lr: settings.lr } : {}),
  };
  if (!settings.preset) {
    return {
      config: validateConfig({ ...common, ngf: settings.ngf, ndf: settings.ndf, depth: settings.depth }),
    };
  }
  const preset = PRESETS[settings.preset as PresetName];
  if (!preset) throw new Error(`no preset '${settings.preset}': use ${Object.keys(PRESETS).join(', ')}`);
  return {
    config: validateConfig({ ...preset, ...common, crop: 0, degradeOnTheFly: false, scaleJitter: 1 }),
  };
}

/**
 * The schedule the page trains: a preset's own (L1-only epochs, then the GAN; the rate constant, then
 * decaying), cut at `steps`; otherwise `steps` at a constant rate, which is what config.json then
 * says (epochs: the passes `steps` makes, no decay), so a resume in Node continues it as it was.
 */
function pageSchedule(config: TrainConfig, settings: TrainSettings, perEpoch: number): TrainConfig {
  if (settings.preset && !settings.finetune) return config;
  return { ...config, epochs: Math.ceil(settings.steps / perEpoch), epochsDecay: 0, l1Warmup: 0 };
}

/** Every weight of a network (in `model.weights` order), read asynchronously. */
async function valuesOf(model: tfl.LayersModel): Promise<Float32Array[]> {
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

/** Pairs stacked into the [n, size, size, 3] tensors of one side. */
function stack(pairs: Pair[], side: 'a' | 'b', size: number): tf.Tensor4D {
  const px = size * size * 3;
  const buf = new Float32Array(pairs.length * px);
  pairs.forEach((p, i) => {
    buf.set(p[side], i * px);
  });
  return tf.tensor4d(buf, [pairs.length, size, size, 3]);
}

/** The held-out pairs as the PairSource the CLI's evaluation reads (fixed order, EVAL_BATCH at a time). */
function heldOut(pairs: Pair[], size: number): PairSource {
  return {
    length: pairs.length,
    async *batches() {
      for (let i = 0; i < pairs.length; i += EVAL_BATCH) {
        const chunk = pairs.slice(i, i + EVAL_BATCH);
        yield { a: stack(chunk, 'a', size), b: stack(chunk, 'b', size), names: chunk.map((p) => p.name) };
      }
    },
  };
}

/** input | target | output of the first few held-out pairs (training ones when none are held out), as a PNG. */
async function sampleGrid(G: tfl.LayersModel, pairs: Pair[], size: number): Promise<Blob> {
  const chosen = pairs.slice(0, 4);
  const [a, b] = [stack(chosen, 'a', size), stack(chosen, 'b', size)];
  const fake = tf.tidy(() => generate(G, a));
  try {
    return encodePngBlob(await gridPixels([a, b, fake]));
  } finally {
    tf.dispose([a, b, fake]);
  }
}

/** The first step's gradients, per update in variable order, read before they are applied. */
async function probeGradients(p: PendingStep): Promise<Float32Array[][]> {
  return Promise.all(
    p.updates.map((u) =>
      Promise.all(u.opt.variables.map(async (v) => (await u.grads[v.name]!.data()) as Float32Array)),
    ),
  );
}

async function loadPairs(
  settings: TrainSettings,
  size: number,
  batch: number,
  files: DroppedFile[] | undefined,
): Promise<PagePairs> {
  if (settings.dataset.startsWith(DROPPED_PREFIX)) {
    if (!files?.length)
      throw new Error('the files chosen for this run are gone (a reload forgets them): choose them again');
    const got = await droppedPairs(files, settings, size, batch, (done, total) =>
      update({ progress: `cutting pairs: ${done}/${total} images` }),
    );
    update({ progress: undefined });
    return got;
  }
  const names = await servedPairNames(settings.dataset);
  if (names.train.length < batch) {
    throw new Error(
      `${settings.dataset} has ${names.train.length} training pairs, fewer than a batch of ${batch}`,
    );
  }
  return servedPairs(names, size);
}

async function run(settings: TrainSettings, files?: DroppedFile[]): Promise<void> {
  update({ state: 'loading', error: undefined });
  const backend = await chooseBackend(settings.backend);
  update({ backend: backend.name, adapter: backend.adapter, note: backend.note });
  const setup = settings.finetune ? await finetuneSetup(settings) : scratchSetup(settings);
  const { size, batchSize, norm, ngf, ndf, fullRes } = setup.config;
  // A model too big for the adapter is refused before any image is decoded.
  const micro = chooseMicroBatch({
    backend: backend.name,
    size,
    batchSize,
    norm,
    ngf,
    ndf,
    fullRes,
    gpu: backend.name === 'webgpu' ? activeAdapter() : undefined,
  });
  const pairs = await loadPairs(settings, size, batchSize, files);
  const perEpoch = Math.floor(pairs.train.length / batchSize);
  const config: TrainConfig = {
    ...pageSchedule(setup.config, settings, perEpoch),
    microBatch: micro.microBatch,
  };
  const state = createTrainState(config, setup.models);
  const params = state.G.countParams() + state.D.countParams();
  update({
    pairs: {
      kind: pairs.kind,
      train: pairs.train.length,
      test: pairs.test.length,
      trainSources: pairs.trainSources,
      testSources: pairs.testSources,
    },
    model: { size, ngf, ndf, depth: generatorDepth(config), norm },
    finetunedFrom: setup.from,
    params,
    memoryBytes: stepMemoryBytes({ params, size, pairs: micro.microBatch }),
  });
  const key = savedKey(settings);
  let first = 1;
  let evals: PageEvalRow[] = [];
  const run: CurrentRun = {
    state,
    // What `pix2pix train --resume` continues: this schedule, the micro-batch chosen again on the
    // machine that resumes.
    config: { ...config, microBatch: 0, backend: 'auto' },
    backend: backend.name,
    perEpoch,
    step: 0,
    rows: [],
    started: new Date().toISOString(),
    trainSeconds: 0,
  };
  current = run;
  const saved = await loadSaved(key).catch(() => undefined);
  if (saved) {
    restore(state, saved);
    first = saved.step + 1;
    evals = saved.evals ?? [];
    run.step = saved.step;
    run.rows = saved.rows ?? [];
    run.started = saved.started ?? run.started;
    run.trainSeconds = saved.trainSeconds ?? 0;
    update({ resumedFrom: saved.step, savedStep: saved.step, step: saved.step, evals });
  }
  const persist = async (step: number) => {
    await save({
      key,
      step,
      g: await valuesOf(state.G),
      d: await valuesOf(state.D),
      optG: await state.optG.snapshot(),
      optD: await state.optD.snapshot(),
      evals,
      rows: run.rows,
      started: run.started,
      trainSeconds: run.trainSeconds,
      time: new Date().toISOString(),
    });
    update({ savedStep: step });
  };
  const shown = pairs.test.length ? pairs.test : pairs.train;
  // Scores and a grid at the end of every epoch and of the run, as the CLI's --eval-every 1.
  const endOfEpoch = async (step: number, epoch: number) => {
    if (pairs.test.length) {
      const m = await evaluateGenerator(state.G, heldOut(pairs.test, size));
      evals = [
        ...evals.filter((r) => r.step !== step),
        { epoch, step, psnr: m.psnr, ssim: m.ssim, mae: m.mae },
      ];
    }
    post({ type: 'grid', epoch, png: await sampleGrid(state.G, shown, size) });
    update({ evals, gridEpoch: epoch });
  };
  // Said at once, also while paused or between steps; the step in flight then fails on its read.
  void deviceLost()?.then((reason) => {
    if (status.state === 'done') return;
    failed = keptState(reason);
    update({ state: 'error', error: failed });
    resumeNow?.();
  });
  update({ state: 'training' });
  const t0 = performance.now();
  const trainedBefore = run.trainSeconds;
  for (let step = first; step <= settings.steps; step++) {
    if (pauseAsked) {
      // Saved first: a paused tab that is then closed resumes from here.
      if (status.savedStep !== step - 1) await persist(step - 1);
      update({ state: 'paused' });
      await new Promise<void>((resolve) => {
        resumeNow = resolve;
      });
      pauseAsked = false;
      if (failed) return;
      update({ state: 'training' });
    }
    const epoch = Math.floor((step - 1) / perEpoch) + 1;
    // The epoch's seeded pair order.
    const order = new SeededRandom(config.seed * 7919 + epoch).shuffle(Array.from(pairs.train, (_, i) => i));
    const at = (step - 1) % perEpoch;
    const chosen = order.slice(at * batchSize, (at + 1) * batchSize).map((i) => pairs.train[i]!);
    const [a, b] = [stack(chosen, 'a', size), stack(chosen, 'b', size)];
    let losses: Awaited<ReturnType<typeof applyStep>>;
    try {
      // The CLI's dropout seed for this step: the same masks as `pix2pix train`.
      const seed = stepDropoutSeed(config.seed, step);
      // The CLI's schedule: the epoch's rate, and D only after the L1-only epochs.
      const lr = learningRateAt(config, epoch);
      state.optG.hp.lr = lr;
      state.optD.hp.lr = lr;
      const adversarial = epoch > config.l1Warmup;
      const pending = withDropoutSeed(seed, () => stepGradients(state, a, b, adversarial));
      const grads = settings.probe && step === 1 ? await probeGradients(pending) : undefined;
      losses = await applyStep(pending);
      if (grads)
        post(
          { type: 'probe', losses, grads },
          grads.flat().map((g) => g.buffer as ArrayBuffer),
        );
    } finally {
      tf.dispose([a, b]);
    }
    if (failed) return;
    const seconds = (performance.now() - t0) / 1000;
    const imagesPerSec = ((step - first + 1) * batchSize) / seconds;
    run.step = step;
    run.trainSeconds = trainedBefore + seconds;
    run.rows.push({
      epoch,
      step,
      g_gan: losses.gGan,
      g_l1: losses.gL1,
      d_loss: losses.d,
      images_per_s: imagesPerSec,
      lr: state.optG.hp.lr,
    });
    update({ step, epoch, losses, imagesPerSec, lr: state.optG.hp.lr, adversarial: !Number.isNaN(losses.d) });
    if (step % perEpoch === 0 || step === settings.steps) await endOfEpoch(step, epoch);
    if (step % settings.saveEvery === 0 || step === settings.steps) await persist(step);
    // A step on WASM resolves its reads without ever leaving the microtask queue: yield, so the
    // page's messages (pause) get in between steps.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  // The networks stay for Download until the page starts another run (a new worker).
  update({ state: 'done' });
}

/** The run in this worker, kept for Download (also after it is done). */
interface CurrentRun {
  state: TrainState;
  config: TrainConfig;
  backend: string;
  perEpoch: number;
  /** Steps done. */
  step: number;
  rows: MetricsRow[];
  started: string;
  trainSeconds: number;
}
let current: CurrentRun | undefined;

/** Where the run is, in a checkpoint's terms: a step inside an epoch is a mid-epoch checkpoint. */
function checkpointMeta(r: CurrentRun): CheckpointMeta {
  const epoch = Math.max(1, Math.ceil(r.step / r.perEpoch));
  const inEpoch = r.step - (epoch - 1) * r.perEpoch;
  return {
    epoch,
    step: r.step,
    time: new Date().toISOString(),
    trainSeconds: r.trainSeconds,
    images: r.step * r.config.batchSize,
    ...(inEpoch < r.perEpoch ? { batchInEpoch: inEpoch } : {}),
  };
}

/**
 * (a) `model`: the generator as `pix2pix export` writes it (model.json, weight shard, metadata.json),
 * for the try-it page, any web app or `pix2pix translate`; (b) `run`: the run folder `pix2pix train`
 * would have written (config.json, metrics.jsonl, the checkpoint, checkpoints/latest), which
 * `train --resume`, `translate`, `eval` and `export` take. Read between steps: a step's updates are
 * applied without a pause, so the networks and the step count always agree.
 */
async function download(what: 'model' | 'run'): Promise<void> {
  const r = current;
  if (!r || r.step === 0) {
    post({ type: 'download', name: what, error: 'nothing to download yet: train at least one step' });
    return;
  }
  const meta = checkpointMeta(r);
  const folder = `pix2pix-${what}-step-${r.step}`;
  let bytes: Uint8Array;
  if (what === 'model') {
    const { files } = await exportFiles(r.state.G, {
      checkpoint: 'the train page',
      meta,
      config: r.config,
      pix2pixVersion: process.env.PIX2PIX_VERSION ?? 'unknown',
    });
    bytes = zip(files.map((f) => ({ path: `${folder}/${f.path}`, data: f.data })));
  } else {
    bytes = await runFolderZip({
      config: r.config,
      started: r.started,
      backend: r.backend,
      versions: { browser: navigator.userAgent },
      metrics: r.rows,
      state: r.state,
      meta,
      folder,
    });
  }
  post({
    type: 'download',
    name: `${folder}.zip`,
    blob: new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/zip' }),
  });
}

/** A lost device's reason, with what survives it: the last state saved in this browser. */
const keptState = (reason: string) =>
  `${reason}; the state saved at step ${status.savedStep} is kept: reload the page to resume from it`;

let pauseAsked = false;
let resumeNow: (() => void) | undefined;
/** The one-line reason training stopped for good (a lost device), once it has. */
let failed: string | undefined;

self.onmessage = (e: MessageEvent<PageMessage>) => {
  const m = e.data;
  if (m.type === 'pause') {
    pauseAsked = true;
    return;
  }
  if (m.type === 'resume') {
    pauseAsked = false;
    resumeNow?.();
    resumeNow = undefined;
    return;
  }
  if (m.type === 'download') {
    download(m.what).catch((err: unknown) => {
      post({
        type: 'download',
        name: m.what,
        error: `the download failed: ${(err as Error).message.split('\n')[0]}`,
      });
    });
    return;
  }
  if (m.type === 'lose-device') {
    destroyDevice();
    return;
  }
  if (m.type !== 'start') return;
  run(m.settings, m.files).catch((err: unknown) => {
    // The step in flight may fail on the lost device before its `lost` promise settles.
    const reason = (err as Error).message.split('\n')[0]!;
    update({
      state: 'error',
      error: failed ?? (/^the WebGPU device was lost/.test(reason) ? keptState(reason) : reason),
    });
  });
};
