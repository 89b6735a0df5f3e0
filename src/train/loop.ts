import { appendFile, mkdir, readdir, readFile } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { version_layers } from '@tensorflow/tfjs-layers';
import { releaseConstantFilters } from '../backend/index.js';
import { activeAdapter } from '../backend/webgpu.js';
import type { Degradation } from '../data/degrade.js';
import { checkDataset, isRandomDegradation, onTheFlyDegradation, openPairs } from '../data/loader.js';
import type { PairBatch } from '../data/types.js';
import { writeGrid } from '../data/grid.js';
import { generate, withDropoutSeed } from '../models/fused.js';
import { writeFileAtomic } from '../util/fs.js';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import {
  checkpointName,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  removeUnfinishedCheckpoints,
  saveCheckpoint,
} from './checkpoint.js';
import { configChanges, learningRateAt, type TrainConfig, trainingSide } from './config.js';
import { chooseMicroBatch } from './memory.js';
import { METRICS_FILE, metricsLine, RUN_CONFIG, type RunConfigFile, runConfigJson } from './run-files.js';
import {
  applyStep,
  createTrainState,
  disposeTrainState,
  NonFiniteError,
  type StepLosses,
  stepDropoutSeed,
  stepGradients,
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

/**
 * A file of the run could not be written (disk full, read-only or vanished folder, I/O error). The
 * message says what survived: `latest` is never moved onto a partial checkpoint.
 */
export class RunWriteError extends UserError {
  override name = 'RunWriteError';
}

/**
 * Runs one write of the loop; a file-system failure becomes a RunWriteError naming the file, the
 * system's reason and the checkpoint a resume would continue from. Other errors pass unchanged.
 */
async function guardWrite<T>(what: string, runDir: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (e instanceof UserError || typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw e;
    const reason = code === 'ENOSPC' ? 'no space left on device' : (e as Error).message.split('\n')[0];
    const kept = await latestCheckpoint(runDir);
    throw new RunWriteError(
      `cannot write ${what} (${reason}): ${kept ? `checkpoints/latest still names ${basename(kept)}, which is whole; free space or fix the folder, then continue with --resume` : 'no checkpoint was written yet; free space or fix the folder and start again'}`,
    );
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

async function hasCheckpoints(out: string): Promise<boolean> {
  try {
    return (await readdir(join(out, 'checkpoints'))).some((n) => n.startsWith('epoch-'));
  } catch {
    return false;
  }
}

/** Keeps the metrics.jsonl lines up to `step` (a torn last line goes too), atomically. */
async function truncateMetrics(path: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return;
  }
  const kept = text.split('\n').filter((line) => {
    try {
      return line.trim() !== '' && (JSON.parse(line) as { step: number }).step <= step;
    } catch {
      return false;
    }
  });
  await writeFileAtomic(path, kept.map((l) => `${l}\n`).join(''));
}

/** What a run's config.json holds, as read back (older runs lack some of it). */
export type SavedRun = Partial<RunConfigFile> & Pick<RunConfigFile, 'config'>;

/** A run's config.json as train wrote it: undefined when there is none, a UserError when it is unreadable. */
export async function readSavedRun(runDir: string): Promise<SavedRun | undefined> {
  const path = join(runDir, RUN_CONFIG);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`${path} is unreadable (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as SavedRun;
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

/** Refuses to resume a run on a dataset whose content differs from the one it started on. */
function checkSameDataset(config: TrainConfig, saved: SavedRun | undefined, fingerprint: string): void {
  const recorded = saved?.dataset?.fingerprint;
  if (recorded && recorded !== fingerprint) {
    throw new UserError(
      `dataset ${config.data} has changed since the run in ${config.out} started (its files differ from those recorded in config.json): resume with the dataset it was trained on, or start a new run`,
    );
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
  // Checked before anything is written: a dataset without a recorded degradation is refused here.
  let degrade: Degradation[] | undefined;
  if (config.degradeOnTheFly) {
    degrade = await onTheFlyDegradation(config.data);
    const spec = degrade.map((d) => d.spec).join('+');
    log.info(
      isRandomDegradation(degrade)
        ? `--degrade-on-the-fly: ${spec} re-drawn from B for every training pair, every epoch`
        : `--degrade-on-the-fly: ${spec} draws nothing at random, so it gives the prepared A again (made from B at every load)`,
    );
  }
  let microBatch = config.microBatch;
  if (microBatch === 0) {
    const choice = chooseMicroBatch({
      ...config,
      size: trainingSide(config),
      backend: tf.getBackend(),
      gpu: tf.getBackend() === 'webgpu' ? activeAdapter() : undefined,
      memory: { total: totalmem(), free: freemem() },
    });
    microBatch = choice.microBatch;
    log.info(`micro-batch ${microBatch}: ${choice.reason}`);
  }
  const used: TrainConfig = { ...config, microBatch };
  // An unreadable config.json only loses the history and the dataset check here (the CLI refuses it first).
  const saved = resume && existing ? await readSavedRun(config.out).catch(() => undefined) : undefined;
  if (saved) checkSameDataset(config, saved, check.fingerprint);
  const state = createTrainState(used);
  let firstEpoch = 1;
  let globalStep = 0;
  let trainSeconds = 0;
  let images = 0;
  let skipBatches = 0;
  const latest = resume ? await latestCheckpoint(config.out) : undefined;
  if (resume && existing && !latest) {
    const names = (await listCheckpoints(config.out)).map((c) => basename(c.dir));
    throw new UserError(
      `${config.out}/checkpoints/latest is missing or not a link (copied with scp -r?), so the run cannot be resumed safely; checkpoints there: ${names.join(', ')}. Point it at one: ln -sfn ${names.at(-1)} ${join(config.out, 'checkpoints', 'latest')}`,
    );
  }
  if (resume && latest) {
    let meta: Awaited<ReturnType<typeof loadCheckpoint>>;
    try {
      meta = await loadCheckpoint(latest, state);
    } catch (e) {
      disposeTrainState(state);
      throw new UserError(`cannot resume from ${latest}: ${(e as Error).message.split('\n')[0]}`);
    }
    // A mid-epoch checkpoint continues its epoch after the batches it had done.
    firstEpoch = meta.batchInEpoch ? meta.epoch : meta.epoch + 1;
    skipBatches = meta.batchInEpoch ?? 0;
    globalStep = meta.step;
    trainSeconds = meta.trainSeconds ?? 0;
    images = meta.images ?? 0;
    // Steps logged after the checkpoint (an interrupted epoch) are trained again: log them once.
    const metricsFile = join(config.out, METRICS_FILE);
    await guardWrite(metricsFile, config.out, () => truncateMetrics(metricsFile, meta.step));
    log.info(`resuming from ${latest} (epoch ${meta.epoch}, step ${meta.step})`);
    const unfinished = await removeUnfinishedCheckpoints(config.out);
    if (unfinished.length) log.info(`removed unfinished checkpoint writes: ${unfinished.join(', ')}`);
  } else if (resume) {
    log.warn(`${config.out} has no checkpoint to resume from: starting at epoch 1`);
  }
  // Written whole under another name, then renamed: a full disk never leaves a truncated config.json
  // (the resume history would be lost with it).
  await guardWrite(join(config.out, RUN_CONFIG), config.out, () =>
    writeFileAtomic(
      join(config.out, RUN_CONFIG),
      runConfigJson({
        config: used,
        backend: tf.getBackend(),
        versions: { node: process.version, tfjs: tf.version_core, tfjsLayers: version_layers },
        dataset: { counts: check.counts, size: check.size, fingerprint: check.fingerprint },
        started: saved?.started ?? new Date().toISOString(),
        // Every resume, with the options it changed: the history is never lost.
        resumes: [
          ...(saved?.resumes ?? []),
          ...(saved
            ? [
                {
                  time: new Date().toISOString(),
                  epoch: firstEpoch,
                  changed: saved.config ? configChanges(saved.config, used) : {},
                },
              ]
            : []),
        ],
      }),
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
      cropSize: config.crop || undefined,
      degrade,
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
  if (budget > 0 && trainSeconds >= budget) {
    log.info(
      `--max-minutes ${config.maxMinutes}: the run has trained ${(trainSeconds / 60).toFixed(2)} minutes already, nothing to do (give a larger --max-minutes to continue)`,
    );
    disposeTrainState(state);
    return [];
  }
  const sample = await samplePairs(config, check.counts.test > 0);
  const metricsPath = join(config.out, METRICS_FILE);
  const totalEpochs = config.epochs + config.epochsDecay;
  const done: EpochEvent[] = [];
  /** Set when --max-minutes ends the run: after a step, or at the end of an epoch. */
  let timeUp = false;
  const reportTimeLimit = (e: TimeLimitEvent) => {
    log.info(
      `--max-minutes ${config.maxMinutes}: stopped after ${(e.trainSeconds / 60).toFixed(2)} minutes of training, in epoch ${e.epoch} at step ${e.step}; checkpoint ${e.checkpoint} (continue with --resume and a larger --max-minutes)`,
    );
    hooks.onTimeLimit?.(e);
  };
  try {
    for (let epoch = firstEpoch; epoch <= totalEpochs; epoch++) {
      const lr = learningRateAt(config, epoch);
      state.optG.hp.lr = lr;
      state.optD.hp.lr = lr;
      const t0 = performance.now();
      const sums = { gGan: 0, gL1: 0, d: 0 };
      const loaded = { ...loader.stats };
      let stepMs = 0;
      let step = skipBatches;
      const first = skipBatches;
      skipBatches = 0;
      for await (const { a, b } of loader.batches(epoch, first)) {
        const ts = performance.now();
        let losses: StepLosses;
        try {
          const pending = withDropoutSeed(stepDropoutSeed(config.seed, globalStep + 1), () =>
            stepGradients(state, a, b, epoch > config.l1Warmup),
          );
          losses = await applyStep(pending);
        } catch (e) {
          tf.dispose([a, b]);
          if (!(e instanceof NonFiniteError)) throw e;
          const kept = await latestCheckpoint(config.out);
          throw new NonFiniteError(
            `epoch ${epoch}, step ${globalStep + 1}: ${e.message}; no checkpoint was written from it${kept ? ` and checkpoints/latest still names ${basename(kept)}` : ''} (a lower --lr may help)`,
          );
        }
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
        // Written (and so on disk before any later checkpoint) step by step; a full disk is an error here.
        await guardWrite(metricsPath, config.out, () =>
          appendFile(
            metricsPath,
            metricsLine({
              epoch,
              step: globalStep,
              g_gan: losses.gGan,
              g_l1: losses.gL1,
              d_loss: losses.d,
              images_per_s: imagesPerSec,
              lr,
            }),
          ),
        );
        hooks.onStep?.({ epoch, totalEpochs, step, stepsPerEpoch, globalStep, losses, imagesPerSec, lr });
        timeUp = budget > 0 && trainSeconds + (performance.now() - t0) / 1000 >= budget;
        if (step >= stepsPerEpoch) break;
        const signal = hooks.shouldStop?.();
        if (signal || timeUp || (config.saveEverySteps > 0 && globalStep % config.saveEverySteps === 0)) {
          const seconds = trainSeconds + (performance.now() - t0) / 1000;
          const at = await guardWrite(`a mid-epoch checkpoint at step ${globalStep}`, config.out, () =>
            saveCheckpoint(config.out, state, {
              epoch,
              step: globalStep,
              time: new Date().toISOString(),
              trainSeconds: seconds,
              images,
              batchInEpoch: step,
            }),
          );
          if (signal) throw new TrainingStopped(signal, globalStep, at);
          if (timeUp) {
            // A planned stop, resumable from here: evaluated (into eval.csv under this epoch, until
            // the resumed epoch replaces it) when --eval-every is set, then a normal return.
            const scores =
              config.evalEvery > 0 ? await hooks.evaluate?.(state.G, { epoch, step: globalStep }) : undefined;
            reportTimeLimit({ epoch, step: globalStep, checkpoint: at, trainSeconds: seconds, scores });
            return done;
          }
        }
      }
      const stepsRun = Math.max(1, step - first);
      trainSeconds += (performance.now() - t0) / 1000;
      const checkpoint = await guardWrite(`the checkpoint of epoch ${epoch}`, config.out, () =>
        saveCheckpoint(config.out, state, {
          epoch,
          step: globalStep,
          time: new Date().toISOString(),
          trainSeconds,
          images,
        }),
      );
      const samplePath = join(config.out, 'samples', `${checkpointName(epoch)}.png`);
      const fake = tf.tidy(() => generate(state.G, sample.a));
      try {
        await guardWrite(samplePath, config.out, () => writeGrid(samplePath, [sample.a, sample.b, fake]));
      } finally {
        fake.dispose();
      }
      const seconds = (performance.now() - t0) / 1000;
      let scores: EpochScores | undefined;
      const lastEpoch = epoch === totalEpochs || timeUp;
      if (config.evalEvery > 0 && (epoch % config.evalEvery === 0 || lastEpoch)) {
        if (hooks.evaluate) scores = await hooks.evaluate(state.G, { epoch, step: globalStep });
        else if (epoch === config.evalEvery) log.warn('evalEvery is set but no evaluate hook was given');
      }
      // The sample and the evaluation ran G as inference, which keeps its filters reordered (up to
      // ~200 MB at ngf 64): not held through the next epoch's steps.
      releaseConstantFilters(state.optG.variables);
      if (config.keep > 0) {
        const gone = await pruneCheckpoints(config.out, config.keep, (await hooks.keepAlso?.()) ?? []);
        if (gone.length)
          log.info(`--keep ${config.keep}: removed ${gone.map((d) => basename(d)).join(', ')}`);
      }
      const event: EpochEvent = {
        epoch,
        step: globalStep,
        scores,
        checkpoint,
        sample: samplePath,
        losses: { gGan: sums.gGan / stepsRun, gL1: sums.gL1 / stepsRun, d: sums.d / stepsRun },
        seconds,
        msPerBatch: {
          step: stepMs / stepsRun,
          decode:
            (loader.stats.decodeMs - loaded.decodeMs) / Math.max(1, loader.stats.batches - loaded.batches),
          wait: (loader.stats.waitMs - loaded.waitMs) / stepsRun,
        },
      };
      done.push(event);
      hooks.onEpoch?.(event);
      if (timeUp && epoch < totalEpochs) {
        // The epoch's own checkpoint and evaluation are the stop's.
        reportTimeLimit({ epoch, step: globalStep, checkpoint, trainSeconds, scores });
        break;
      }
    }
  } finally {
    tf.dispose([sample.a, sample.b]);
    disposeTrainState(state);
  }
  return done;
}
