// The training loop: train() drives an opened run (open-run.ts) epoch by epoch: the steps of an epoch
// (trainEpoch: the update, metrics.jsonl, mid-epoch checkpoints, signals, --max-minutes) and its end
// (endEpoch: checkpoint, sample grid, evaluation, pruning, the epoch's event).
import { basename } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { releaseConstantFilters } from '../backend/index.js';
import { writeGrid } from '../data/grid.js';
import { type LoaderStats, openPairs, type PairLoader } from '../data/loader.js';
import type { PairBatch } from '../data/types.js';
import { generate, withDropoutSeed } from '../models/fused.js';
import { latestCheckpoint, pruneCheckpoints } from '../run/checkpoints.js';
import { appendMetrics, metricsPath, samplePath } from '../run/folder.js';
import { LATEST_PATH } from '../run/layout.js';
import type { LockHolder } from '../run/lock.js';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { saveCheckpoint } from './checkpoint.js';
import { learningRateAt, type TrainConfig } from './config.js';
import { type OpenedRun, openRun, type RunPosition } from './open-run.js';
import { guardWrite } from './run-write.js';
import {
  applyStep,
  disposeTrainState,
  NonFiniteError,
  type StepLosses,
  stepDropoutSeed,
  stepGradients,
  type TrainState,
} from './step.js';

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
  /**
   * Asked after every step: a signal name (the CLI's SIGINT/SIGTERM handlers) makes the loop write a
   * checkpoint at that position and throw TrainingStopped.
   */
  shouldStop?: () => 'SIGINT' | 'SIGTERM' | undefined;
  /** Epochs `--keep` must not delete besides the last N (the CLI gives the best by PSNR in eval.csv). */
  keepAlso?: () => Promise<number[]>;
  /**
   * Whether the run folder's lock, held by `holder`, may be taken over although its process cannot be
   * seen to be dead (on another machine): a queue's worker knows when the one before it stopped.
   */
  takeOverLock?: (holder: LockHolder) => boolean;
  /** Called once when `--max-minutes` ends the run (after its checkpoint and evaluation). */
  onTimeLimit?: (e: TimeLimitEvent) => void;
}

/** Where a run that reached `--max-minutes` stopped. */
export interface TimeLimitEvent {
  epoch: number;
  step: number;
  /** The checkpoint written there: the epoch's own, or a mid-epoch one. */
  checkpoint: string;
  trainSeconds: number;
  scores?: EpochScores;
}

/** A run stopped on request after a whole step, with a checkpoint to resume from. */
export class TrainingStopped extends UserError {
  override name = 'TrainingStopped';
  /** The shell's convention: 128 + the signal's number. */
  readonly exitCode: number;

  constructor(
    readonly signal: 'SIGINT' | 'SIGTERM',
    step: number,
    checkpoint: string,
  ) {
    super(
      `stopped by ${signal} after step ${step}: checkpoint ${checkpoint} written; continue with --resume`,
    );
    this.exitCode = signal === 'SIGINT' ? 130 : 143;
  }
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

/** An opened run with its data: what every epoch needs. `at` moves on with each step. */
export interface Session {
  config: TrainConfig;
  state: TrainState;
  hooks: TrainHooks;
  log: Logger;
  at: RunPosition;
  loader: PairLoader;
  stepsPerEpoch: number;
  totalEpochs: number;
  /** --max-minutes in seconds (0: none). */
  budget: number;
  /** The pairs of the sample grids; disposed by the caller. */
  sample: PairBatch;
}

/** The training data of an opened run, or undefined when --max-minutes is already used up. */
export async function startSession(
  run: OpenedRun,
  hooks: TrainHooks,
  log: Logger,
): Promise<Session | undefined> {
  const { config } = run;
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
      cropSize: config.crop || undefined,
      degrade: run.degrade,
      scaleJitter: config.scaleJitter,
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
  const budget = config.maxMinutes * 60;
  if (budget > 0 && run.at.trainSeconds >= budget) {
    log.info(
      `--max-minutes ${config.maxMinutes}: the run has trained ${(run.at.trainSeconds / 60).toFixed(2)} minutes already, nothing to do (give a larger --max-minutes to continue)`,
    );
    return undefined;
  }
  const sample = await samplePairs(config, run.hasTest);
  const totalEpochs = config.epochs + config.epochsDecay;
  return { ...run, hooks, log, loader, stepsPerEpoch, totalEpochs, budget, sample };
}

/** What one epoch's steps did. */
export interface EpochSteps {
  /** performance.now() when the epoch began. */
  t0: number;
  /** Batches of the epoch done before it began here (a resumed mid-epoch checkpoint's). */
  first: number;
  /** Batches of the epoch done so far. */
  step: number;
  sums: StepLosses;
  stepMs: number;
  /** The loader's counters when the epoch began. */
  loaded: LoaderStats;
  /** --max-minutes is used up (after the last step run). */
  timeUp: boolean;
  /** Set when the time ran out before the epoch's end: the mid-epoch checkpoint written there. */
  stopped?: { checkpoint: string; trainSeconds: number };
}

const elapsed = (t0: number) => (performance.now() - t0) / 1000;

/** One training step on a batch (disposed here): the update, its metrics.jsonl row, onStep. */
async function trainStep(s: Session, epoch: number, run: EpochSteps, a: tf.Tensor4D, b: tf.Tensor4D) {
  const ts = performance.now();
  let losses: StepLosses;
  try {
    const pending = withDropoutSeed(stepDropoutSeed(s.config.seed, s.at.step + 1), () =>
      stepGradients(s.state, a, b, epoch > s.config.l1Warmup),
    );
    losses = await applyStep(pending);
  } catch (e) {
    if (!(e instanceof NonFiniteError)) throw e;
    const kept = await latestCheckpoint(s.config.out);
    throw new NonFiniteError(
      `epoch ${epoch}, step ${s.at.step + 1}: ${e.message}; no checkpoint was written from it${kept ? ` and ${LATEST_PATH} still names ${basename(kept)}` : ''} (a lower --lr may help)`,
    );
  } finally {
    tf.dispose([a, b]);
  }
  const ms = performance.now() - ts;
  const lr = s.state.optG.hp.lr;
  const imagesPerSec = (a.shape[0] * 1000) / ms;
  run.stepMs += ms;
  s.at.images += a.shape[0];
  run.step++;
  s.at.step++;
  run.sums.gGan += losses.gGan;
  run.sums.gL1 += losses.gL1;
  run.sums.d += losses.d;
  const row = {
    epoch,
    step: s.at.step,
    g_gan: losses.gGan,
    g_l1: losses.gL1,
    d_loss: losses.d,
    images_per_s: imagesPerSec,
    lr,
  };
  // Written (and so on disk before any later checkpoint) step by step; a full disk is an error here.
  await guardWrite(metricsPath(s.config.out), s.config.out, () => appendMetrics(s.config.out, row));
  s.hooks.onStep?.({
    epoch,
    totalEpochs: s.totalEpochs,
    step: run.step,
    stepsPerEpoch: s.stepsPerEpoch,
    globalStep: s.at.step,
    losses,
    imagesPerSec,
    lr,
  });
}

/**
 * The steps of one epoch (from a resumed mid-epoch position). Between steps: a signal writes a
 * checkpoint and throws TrainingStopped; --save-every-steps writes one; --max-minutes used up writes
 * one and ends the epoch early (`stopped`). At the last step the epoch ends, for endEpoch.
 */
export async function trainEpoch(s: Session, epoch: number): Promise<EpochSteps> {
  const lr = learningRateAt(s.config, epoch);
  s.state.optG.hp.lr = lr;
  s.state.optD.hp.lr = lr;
  const first = s.at.batchInEpoch;
  s.at.batchInEpoch = 0;
  const run: EpochSteps = {
    t0: performance.now(),
    first,
    step: first,
    sums: { gGan: 0, gL1: 0, d: 0 },
    stepMs: 0,
    loaded: { ...s.loader.stats },
    timeUp: false,
  };
  const every = s.config.saveEverySteps;
  for await (const { a, b } of s.loader.batches(epoch, first)) {
    await trainStep(s, epoch, run, a, b);
    run.timeUp = s.budget > 0 && s.at.trainSeconds + elapsed(run.t0) >= s.budget;
    if (run.step >= s.stepsPerEpoch) break;
    const signal = s.hooks.shouldStop?.();
    if (!signal && !run.timeUp && !(every > 0 && s.at.step % every === 0)) continue;
    const trainSeconds = s.at.trainSeconds + elapsed(run.t0);
    const checkpoint = await guardWrite(`a mid-epoch checkpoint at step ${s.at.step}`, s.config.out, () =>
      saveCheckpoint(s.config.out, s.state, {
        epoch,
        step: s.at.step,
        time: new Date().toISOString(),
        trainSeconds,
        images: s.at.images,
        batchInEpoch: run.step,
      }),
    );
    if (signal) throw new TrainingStopped(signal, s.at.step, checkpoint);
    if (run.timeUp) return { ...run, stopped: { checkpoint, trainSeconds } };
  }
  return run;
}

/**
 * The end of a whole epoch: its checkpoint, its sample grid, its evaluation (every --eval-every
 * epochs and the last), pruning (--keep). Returns the epoch's event.
 */
export async function endEpoch(s: Session, epoch: number, run: EpochSteps): Promise<EpochEvent> {
  const { config, state, at } = s;
  const stepsRun = Math.max(1, run.step - run.first);
  at.trainSeconds += elapsed(run.t0);
  const checkpoint = await guardWrite(`the checkpoint of epoch ${epoch}`, config.out, () =>
    saveCheckpoint(config.out, state, {
      epoch,
      step: at.step,
      time: new Date().toISOString(),
      trainSeconds: at.trainSeconds,
      images: at.images,
    }),
  );
  const sample = samplePath(config.out, epoch);
  const fake = tf.tidy(() => generate(state.G, s.sample.a));
  try {
    await guardWrite(sample, config.out, () => writeGrid(sample, [s.sample.a, s.sample.b, fake]));
  } finally {
    fake.dispose();
  }
  const seconds = elapsed(run.t0);
  let scores: EpochScores | undefined;
  const lastEpoch = epoch === s.totalEpochs || run.timeUp;
  if (config.evalEvery > 0 && (epoch % config.evalEvery === 0 || lastEpoch)) {
    if (s.hooks.evaluate) scores = await s.hooks.evaluate(state.G, { epoch, step: at.step });
    else if (epoch === config.evalEvery) s.log.warn('evalEvery is set but no evaluate hook was given');
  }
  // The sample and the evaluation ran G as inference, which keeps its filters reordered (up to
  // ~200 MB at ngf 64): not held through the next epoch's steps.
  releaseConstantFilters(state.optG.variables);
  if (config.keep > 0) {
    const gone = await pruneCheckpoints(config.out, config.keep, (await s.hooks.keepAlso?.()) ?? []);
    if (gone.length) s.log.info(`--keep ${config.keep}: removed ${gone.map((d) => basename(d)).join(', ')}`);
  }
  const { loader } = s;
  return {
    epoch,
    step: at.step,
    scores,
    checkpoint,
    sample,
    losses: { gGan: run.sums.gGan / stepsRun, gL1: run.sums.gL1 / stepsRun, d: run.sums.d / stepsRun },
    seconds,
    msPerBatch: {
      step: run.stepMs / stepsRun,
      decode:
        (loader.stats.decodeMs - run.loaded.decodeMs) /
        Math.max(1, loader.stats.batches - run.loaded.batches),
      wait: (loader.stats.waitMs - run.loaded.waitMs) / stepsRun,
    },
  };
}

/** Tells the log and the hook where --max-minutes stopped the run. */
function reportTimeLimit(s: Session, e: TimeLimitEvent): void {
  s.log.info(
    `--max-minutes ${s.config.maxMinutes}: stopped after ${(e.trainSeconds / 60).toFixed(2)} minutes of training, in epoch ${e.epoch} at step ${e.step}; checkpoint ${e.checkpoint} (continue with --resume and a larger --max-minutes)`,
  );
  s.hooks.onTimeLimit?.(e);
}

/**
 * The training loop: opens the run (openRun), then per epoch streams shuffled batches through the
 * train step (trainEpoch) and ends it with a checkpoint, a sample grid and the evaluation (endEpoch).
 * The backend must already be chosen. `resume` continues from checkpoints/latest, refusing what a
 * resume may not change. The run folder is locked until it returns or throws.
 */
export async function train(
  config: TrainConfig,
  resume: boolean,
  hooks: TrainHooks = {},
): Promise<EpochEvent[]> {
  const log = hooks.log ?? silentLogger;
  const run = await openRun(config, resume, log, hooks.takeOverLock);
  const done: EpochEvent[] = [];
  let s: Session | undefined;
  try {
    s = await startSession(run, hooks, log);
    if (!s) return done;
    for (let epoch = run.at.epoch; epoch <= s.totalEpochs; epoch++) {
      const steps = await trainEpoch(s, epoch);
      if (steps.stopped) {
        // --max-minutes ran out mid-epoch: a planned stop, resumable from its checkpoint, evaluated
        // (into eval.csv under this epoch, until the resumed epoch replaces it) when --eval-every is set.
        const at = { epoch, step: s.at.step };
        const scores = config.evalEvery > 0 ? await hooks.evaluate?.(s.state.G, at) : undefined;
        reportTimeLimit(s, { ...at, ...steps.stopped, scores });
        break;
      }
      const event = await endEpoch(s, epoch, steps);
      done.push(event);
      hooks.onEpoch?.(event);
      if (steps.timeUp && epoch < s.totalEpochs) {
        // The epoch's own checkpoint and evaluation are the stop's.
        const { checkpoint, scores } = event;
        reportTimeLimit(s, { epoch, step: s.at.step, checkpoint, trainSeconds: s.at.trainSeconds, scores });
        break;
      }
    }
    return done;
  } finally {
    if (s) tf.dispose([s.sample.a, s.sample.b]);
    disposeTrainState(run.state);
    await run.lock.release();
  }
}
