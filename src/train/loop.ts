import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { version_layers } from '@tensorflow/tfjs-layers';
import { checkDataset, openPairs } from '../data/loader.js';
import type { PairBatch } from '../data/types.js';
import { writeGrid } from '../eval/images.js';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { checkpointName, latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { learningRateAt, type TrainConfig } from './config.js';
import { chooseMicroBatch } from './memory.js';
import { createTrainState, disposeTrainState, type StepLosses, trainStep } from './step.js';

export interface StepEvent {
  epoch: number;
  totalEpochs: number;
  /** 1-based step within the epoch. */
  step: number;
  stepsPerEpoch: number;
  globalStep: number;
  losses: StepLosses;
  imagesPerSec: number;
  lr: number;
}

/** A test-split evaluation of the generator at the end of an epoch (`--eval-every`). */
export interface EpochScores {
  psnr: number;
  ssim: number;
  mae: number;
  /** Wall time of the evaluation, not counted in the epoch's training time. */
  seconds: number;
}

export interface EpochEvent {
  epoch: number;
  /** Global step at the end of the epoch. */
  step: number;
  checkpoint: string;
  sample: string;
  /** Mean of each loss over the epoch's steps. */
  losses: StepLosses;
  seconds: number;
  /** The test-split scores when this epoch was evaluated. */
  scores?: EpochScores;
  /** Mean wall time per batch spent in training steps, in decoding (overlapped), and waiting for data. */
  msPerBatch: { step: number; decode: number; wait: number };
}

export interface TrainHooks {
  log?: Logger;
  onStep?: (e: StepEvent) => void;
  onEpoch?: (e: EpochEvent) => void;
  /**
   * Scores the generator on the test split, every `config.evalEvery` epochs and after the last one.
   * Evaluation lives above training (src/eval), so the caller passes it in (see `epochEvaluator`).
   */
  evaluate?: (G: tfl.LayersModel, at: { epoch: number; step: number }) => Promise<EpochScores>;
}

const SAMPLE_PAIRS = 4;

/** Samples for the per-epoch grid: the first test pairs (the first train pairs if test is empty). */
async function samplePairs(config: TrainConfig, hasTest: boolean): Promise<PairBatch> {
  const source = await openPairs(config.data, hasTest ? 'test' : 'train', {
    batchSize: SAMPLE_PAIRS,
    size: config.size,
    augment: false,
    seed: config.seed,
    dropLast: false,
    direction: config.direction,
  });
  for await (const batch of source.batches(0)) return batch;
  throw new UserError(`${config.data} has no pairs to sample`);
}

async function hasCheckpoints(out: string): Promise<boolean> {
  try {
    return (await readdir(join(out, 'checkpoints'))).some((n) => n.startsWith('epoch-'));
  } catch {
    return false;
  }
}

/** Refuses to resume a run on a dataset whose content differs from the one it started on. */
async function checkSameDataset(config: TrainConfig, fingerprint: string): Promise<void> {
  const recorded = await recordedFingerprint(config.out);
  if (recorded && recorded !== fingerprint) {
    throw new UserError(
      `dataset ${config.data} has changed since the run in ${config.out} started (its files differ from those recorded in config.json): resume with the dataset it was trained on, or start a new run`,
    );
  }
}

/** The dataset fingerprint a run's config.json recorded (undefined for runs from before it was kept). */
async function recordedFingerprint(runDir: string): Promise<string | undefined> {
  try {
    const saved = JSON.parse(await readFile(join(runDir, 'config.json'), 'utf8'));
    return saved?.dataset?.fingerprint;
  } catch {
    return undefined;
  }
}

/**
 * The training loop: checks the dataset, writes config.json, then per epoch streams shuffled batches
 * through trainStep, appends one metrics.jsonl line per step, and ends the epoch with a checkpoint and
 * a sample grid. The backend must already be chosen. `resume` continues from checkpoints/latest.
 */
export async function train(
  config: TrainConfig,
  resume: boolean,
  hooks: TrainHooks = {},
): Promise<EpochEvent[]> {
  const log = hooks.log ?? silentLogger;
  const check = await checkDataset(config.data, { log });
  if (check.counts.train === 0)
    throw new UserError(`${config.data} has no training pairs (train/A, train/B)`);
  if (check.size !== undefined && check.size < config.size) {
    throw new UserError(
      `${config.data} holds ${check.size} px images, smaller than --size ${config.size}: prepare it at ${config.size} or train at --size ${check.size}`,
    );
  }
  const existing = await hasCheckpoints(config.out);
  if (existing && !resume) {
    throw new UserError(
      `${config.out} already holds a training run: add --resume to continue it, or choose another --out`,
    );
  }
  await mkdir(join(config.out, 'samples'), { recursive: true });
  let microBatch = config.microBatch;
  if (microBatch === 0) {
    const choice = chooseMicroBatch({ ...config, backend: tf.getBackend() });
    microBatch = choice.microBatch;
    log.info(`micro-batch ${microBatch}: ${choice.reason}`);
  }
  const used: TrainConfig = { ...config, microBatch };
  if (resume && existing) await checkSameDataset(config, check.fingerprint);
  const state = createTrainState(used);
  let firstEpoch = 1;
  let globalStep = 0;
  let trainSeconds = 0;
  let images = 0;
  const latest = resume ? await latestCheckpoint(config.out) : undefined;
  if (resume && latest) {
    const meta = await loadCheckpoint(latest, state);
    firstEpoch = meta.epoch + 1;
    globalStep = meta.step;
    trainSeconds = meta.trainSeconds ?? 0;
    images = meta.images ?? 0;
    log.info(`resuming from ${latest} (epoch ${meta.epoch}, step ${meta.step})`);
  } else if (resume) {
    log.warn(`${config.out} has no checkpoint to resume from: starting at epoch 1`);
  }
  await writeFile(
    join(config.out, 'config.json'),
    JSON.stringify(
      {
        config: used,
        backend: tf.getBackend(),
        versions: { node: process.version, tfjs: tf.version_core, tfjsLayers: version_layers },
        dataset: { counts: check.counts, size: check.size, fingerprint: check.fingerprint },
        started: new Date().toISOString(),
      },
      null,
      2,
    ),
  );

  const loader = await openPairs(
    config.data,
    'train',
    {
      batchSize: config.batchSize,
      size: config.size,
      augment: config.augment,
      seed: config.seed,
      dropLast: config.dropLast,
      direction: config.direction,
    },
    log,
  );
  const fullSteps = config.dropLast
    ? Math.floor(loader.length / config.batchSize)
    : Math.ceil(loader.length / config.batchSize);
  const stepsPerEpoch = config.maxStepsPerEpoch ? Math.min(fullSteps, config.maxStepsPerEpoch) : fullSteps;
  if (stepsPerEpoch === 0) {
    throw new UserError(
      `${loader.length} training pairs make no full batch of ${config.batchSize}: lower --batch-size`,
    );
  }
  const sample = await samplePairs(config, check.counts.test > 0);
  const metrics = createWriteStream(join(config.out, 'metrics.jsonl'), { flags: 'a' });
  const totalEpochs = config.epochs + config.epochsDecay;
  const done: EpochEvent[] = [];
  try {
    for (let epoch = firstEpoch; epoch <= totalEpochs; epoch++) {
      const lr = learningRateAt(config, epoch);
      state.optG.hp.lr = lr;
      state.optD.hp.lr = lr;
      const t0 = performance.now();
      const sums = { gGan: 0, gL1: 0, d: 0 };
      const loaded = { ...loader.stats };
      let stepMs = 0;
      let step = 0;
      for await (const { a, b } of loader.batches(epoch)) {
        const ts = performance.now();
        const losses = trainStep(state, a, b);
        const ms = performance.now() - ts;
        stepMs += ms;
        const imagesPerSec = (a.shape[0] * 1000) / ms;
        images += a.shape[0];
        tf.dispose([a, b]);
        step++;
        globalStep++;
        sums.gGan += losses.gGan;
        sums.gL1 += losses.gL1;
        sums.d += losses.d;
        metrics.write(
          `${JSON.stringify({ epoch, step: globalStep, g_gan: losses.gGan, g_l1: losses.gL1, d_loss: losses.d, images_per_s: imagesPerSec, lr })}\n`,
        );
        hooks.onStep?.({ epoch, totalEpochs, step, stepsPerEpoch, globalStep, losses, imagesPerSec, lr });
        if (step >= stepsPerEpoch) break;
      }
      trainSeconds += (performance.now() - t0) / 1000;
      const checkpoint = await saveCheckpoint(config.out, state, {
        epoch,
        step: globalStep,
        time: new Date().toISOString(),
        trainSeconds,
        images,
      });
      const samplePath = join(config.out, 'samples', `${checkpointName(epoch)}.png`);
      const fake = tf.tidy(() => state.G.predict(sample.a) as tf.Tensor4D);
      await writeGrid(samplePath, [sample.a, sample.b, fake]);
      fake.dispose();
      const seconds = (performance.now() - t0) / 1000;
      let scores: EpochScores | undefined;
      if (config.evalEvery > 0 && (epoch % config.evalEvery === 0 || epoch === totalEpochs)) {
        if (hooks.evaluate) scores = await hooks.evaluate(state.G, { epoch, step: globalStep });
        else if (epoch === config.evalEvery) log.warn('evalEvery is set but no evaluate hook was given');
      }
      const event: EpochEvent = {
        epoch,
        step: globalStep,
        scores,
        checkpoint,
        sample: samplePath,
        losses: { gGan: sums.gGan / step, gL1: sums.gL1 / step, d: sums.d / step },
        seconds,
        msPerBatch: {
          step: stepMs / step,
          decode:
            (loader.stats.decodeMs - loaded.decodeMs) / Math.max(1, loader.stats.batches - loaded.batches),
          wait: (loader.stats.waitMs - loaded.waitMs) / step,
        },
      };
      done.push(event);
      hooks.onEpoch?.(event);
    }
  } finally {
    await new Promise<void>((resolve) => metrics.end(resolve));
    tf.dispose([sample.a, sample.b]);
    disposeTrainState(state);
  }
  return done;
}
