import { createWriteStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { version_layers } from '@tensorflow/tfjs-layers';
import { checkDataset, openPairs } from '../data/loader.js';
import type { PairBatch } from '../data/types.js';
import { writeGrid } from '../eval/images.js';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { checkpointName, latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { learningRateAt, type TrainConfig } from './config.js';
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

export interface EpochEvent {
  epoch: number;
  checkpoint: string;
  sample: string;
  /** Mean of each loss over the epoch's steps. */
  losses: StepLosses;
  seconds: number;
  /** Mean wall time per batch spent in training steps, in decoding (overlapped), and waiting for data. */
  msPerBatch: { step: number; decode: number; wait: number };
}

export interface TrainHooks {
  log?: Logger;
  onStep?: (e: StepEvent) => void;
  onEpoch?: (e: EpochEvent) => void;
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
  // The WASM heap is 4 GB: past 4 images of 256 px the activations no longer fit (2.1 GB at 4).
  const microBatch = config.microBatch || (tf.getBackend() === 'wasm' && config.batchSize > 4 ? 4 : 0);
  if (microBatch !== config.microBatch) {
    log.info(
      `wasm: gradients of each batch of ${config.batchSize} computed 4 pairs at a time (--micro-batch 4)`,
    );
  }
  const state = createTrainState({ ...config, microBatch });
  let firstEpoch = 1;
  let globalStep = 0;
  const latest = resume ? await latestCheckpoint(config.out) : undefined;
  if (resume && latest) {
    const meta = await loadCheckpoint(latest, state);
    firstEpoch = meta.epoch + 1;
    globalStep = meta.step;
    log.info(`resuming from ${latest} (epoch ${meta.epoch}, step ${meta.step})`);
  } else if (resume) {
    log.warn(`${config.out} has no checkpoint to resume from: starting at epoch 1`);
  }
  await writeFile(
    join(config.out, 'config.json'),
    JSON.stringify(
      {
        config,
        backend: tf.getBackend(),
        versions: { node: process.version, tfjs: tf.version_core, tfjsLayers: version_layers },
        dataset: { counts: check.counts, size: check.size },
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
      const checkpoint = await saveCheckpoint(config.out, state, {
        epoch,
        step: globalStep,
        time: new Date().toISOString(),
      });
      const samplePath = join(config.out, 'samples', `${checkpointName(epoch)}.png`);
      const fake = tf.tidy(() => state.G.predict(sample.a) as tf.Tensor4D);
      await writeGrid(samplePath, [sample.a, sample.b, fake]);
      fake.dispose();
      const event: EpochEvent = {
        epoch,
        checkpoint,
        sample: samplePath,
        losses: { gGan: sums.gGan / step, gL1: sums.gL1 / step, d: sums.d / step },
        seconds: (performance.now() - t0) / 1000,
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
