// Opening a run for training: the dataset checks, the run folder's lock, the refusals of a resume,
// the micro-batch, the networks and optimizers (restored from checkpoints/latest when resuming) and
// config.json with its history. train() (loop.ts) then runs the epochs.
import { mkdir } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { version_layers } from '@tensorflow/tfjs-layers';
import { activeAdapter } from '../backend/webgpu.js';
import type { CheckResult } from '../data/check.js';
import { type Degradation, parseDegradation } from '../data/degrade.js';
import { checkDataset, isRandomDegradation, onTheFlyDegradation } from '../data/loader.js';
import {
  hasCheckpoints,
  latestCheckpoint,
  latestEntryExists,
  listCheckpointFolders,
  newestCheckpointFolder,
  removeUnfinishedCheckpoints,
} from '../run/checkpoints.js';
import { metricsPath, readSavedRun, runConfigPath, truncateMetrics, writeRunConfig } from '../run/folder.js';
import { CHECKPOINTS_DIR, LATEST, LATEST_PATH, RUN_CONFIG, SAMPLES_DIR } from '../run/layout.js';
import { type LockHolder, lockRun, type RunLock } from '../run/lock.js';
import type { CheckpointMeta, SavedRun } from '../run/records.js';
import { type Logger, UserError } from '../util/log.js';
import { loadCheckpoint } from './checkpoint.js';
import { configChanges, resumedConfig, type TrainConfig, trainingSide } from './config.js';
import { chooseMicroBatch } from './memory.js';
import { guardWrite } from './run-write.js';
import { createTrainState, disposeTrainState, type TrainState } from './step.js';

/** config.json of a run of this package, as read back. */
type SavedTrainRun = SavedRun<TrainConfig>;

/** Where a run continues: after its latest checkpoint when it is resumed, else at its start. Training moves it on. */
export interface RunPosition {
  /** The epoch training continues in (not moved on: train() counts the epochs). */
  epoch: number;
  /** Batches of that epoch already trained (a mid-epoch checkpoint's). */
  batchInEpoch: number;
  /** Global steps done. */
  step: number;
  trainSeconds: number;
  images: number;
}

/** A run opened for training: checked, locked, its state created (restored when resumed), config.json written. */
export interface OpenedRun {
  /** The caller's config with the micro-batch chosen: what config.json records. */
  config: TrainConfig;
  state: TrainState;
  at: RunPosition;
  hasTest: boolean;
  degrade?: Degradation[];
  lock: RunLock;
}

/** checkDataset, and what training needs of the dataset beyond it: training pairs at least --size. */
async function checkTrainingData(config: TrainConfig, log: Logger): Promise<CheckResult> {
  const check = await checkDataset(config.data, { log });
  if (check.counts.train === 0)
    throw new UserError(`${config.data} has no training pairs (train/A, train/B)`);
  if (check.size !== undefined && check.size < config.size) {
    throw new UserError(
      `${config.data} holds ${check.size} px images, smaller than --size ${config.size}: prepare it at ${config.size} or train at --size ${check.size}`,
    );
  }
  return check;
}

/**
 * The run's config.json when `config` resumes it, after the checks that make the library refuse what
 * `train --resume` refuses: a changed model- or data-defining option, a dataset whose files changed.
 */
async function resumedRun(config: TrainConfig, fingerprint: string): Promise<SavedTrainRun | undefined> {
  let saved: SavedTrainRun | undefined;
  try {
    saved = await readSavedRun<TrainConfig>(config.out);
  } catch (e) {
    throw new UserError(`cannot resume: ${(e as Error).message}`);
  }
  if (saved?.config) resumedConfig(saved.config, config);
  const recorded = saved?.dataset?.fingerprint;
  if (recorded && recorded !== fingerprint) {
    throw new UserError(
      `dataset ${config.data} has changed since the run in ${config.out} started (its files differ from those recorded in ${RUN_CONFIG}): resume with the dataset it was trained on, or start a new run`,
    );
  }
  return saved;
}

/** The degradation `--degrade-on-the-fly` draws, checked before anything is written. */
async function degradationOf(config: TrainConfig, log: Logger): Promise<Degradation[] | undefined> {
  if (!config.degradeOnTheFly) return undefined;
  // The dataset must have been made from B either way; --train-degrade then replaces what is drawn.
  const recorded = await onTheFlyDegradation(config.data);
  const degrade = config.trainDegrade ? parseDegradation(config.trainDegrade) : recorded;
  const spec = degrade.map((d) => d.spec).join('+');
  const instead = config.trainDegrade
    ? ` (--train-degrade, instead of the dataset's ${recorded.map((d) => d.spec).join('+')})`
    : '';
  log.info(
    isRandomDegradation(degrade)
      ? `--degrade-on-the-fly: ${spec}${instead} re-drawn from B for every training pair, every epoch`
      : `--degrade-on-the-fly: ${spec} draws nothing at random, so it gives the prepared A again (made from B at every load)`,
  );
  return degrade;
}

/** --micro-batch, or (0) the largest the backend's memory takes, said in one log line. */
function microBatchOf(config: TrainConfig, log: Logger): number {
  if (config.microBatch !== 0) return config.microBatch;
  const choice = chooseMicroBatch({
    ...config,
    size: trainingSide(config),
    backend: tf.getBackend(),
    gpu: tf.getBackend() === 'webgpu' ? activeAdapter() : undefined,
    memory: { total: totalmem(), free: freemem() },
  });
  log.info(`micro-batch ${choice.microBatch}: ${choice.reason}`);
  return choice.microBatch;
}

/**
 * The checkpoint a resume continues from; a run whose `latest` is lost is refused (naming its
 * checkpoints), except where its trainer was killed (`tookOver`: this process took over the lock of a
 * dead one) between renaming its first checkpoint into place and creating `latest`: a named
 * checkpoint folder is whole (written and synced before the rename), so the newest one is resumed.
 */
async function resumableCheckpoint(out: string, tookOver: boolean, log: Logger): Promise<string> {
  const latest = await latestCheckpoint(out);
  if (latest) return latest;
  const named = await listCheckpointFolders(out);
  const newest = newestCheckpointFolder(named);
  if (tookOver && newest && !(await latestEntryExists(out))) {
    log.info(
      `${out}: the trainer before was killed after writing ${newest.name} and before naming it ${LATEST_PATH}: resuming from it`,
    );
    return newest.dir;
  }
  const names = named.filter((c) => c.step === undefined).map((c) => c.name);
  throw new UserError(
    `${out}/${LATEST_PATH} is missing or not a link (copied with scp -r?), so the run cannot be resumed safely; checkpoints there: ${names.join(', ')}. Point it at one: ln -sfn ${names.at(-1)} ${join(out, CHECKPOINTS_DIR, LATEST)}`,
  );
}

/** Restores `state` from `checkpoint`; returns where training continues. */
async function restore(
  out: string,
  checkpoint: string,
  state: TrainState,
  log: Logger,
): Promise<RunPosition> {
  let meta: CheckpointMeta;
  try {
    meta = await loadCheckpoint(checkpoint, state);
  } catch (e) {
    throw new UserError(`cannot resume from ${checkpoint}: ${(e as Error).message.split('\n')[0]}`);
  }
  // Steps logged after the checkpoint (an interrupted epoch) are trained again: log them once.
  await guardWrite(metricsPath(out), out, () => truncateMetrics(out, meta.step));
  log.info(`resuming from ${checkpoint} (epoch ${meta.epoch}, step ${meta.step})`);
  const unfinished = await removeUnfinishedCheckpoints(out);
  if (unfinished.length) log.info(`removed unfinished checkpoint writes: ${unfinished.join(', ')}`);
  return {
    // A mid-epoch checkpoint continues its epoch after the batches it had done.
    epoch: meta.batchInEpoch ? meta.epoch : meta.epoch + 1,
    batchInEpoch: meta.batchInEpoch ?? 0,
    step: meta.step,
    trainSeconds: meta.trainSeconds ?? 0,
    images: meta.images ?? 0,
  };
}

/** config.json: the options used, where, on what, and every resume with the options it changed. */
function recordRun(used: TrainConfig, check: CheckResult, saved: SavedTrainRun | undefined, epoch: number) {
  const out = used.out;
  const resumes = saved
    ? [
        ...(saved.resumes ?? []),
        { time: new Date().toISOString(), epoch, changed: configChanges(saved.config, used) },
      ]
    : [];
  return guardWrite(runConfigPath(out), out, () =>
    writeRunConfig<TrainConfig>(out, {
      config: used,
      backend: tf.getBackend(),
      versions: { node: process.version, tfjs: tf.version_core, tfjsLayers: version_layers },
      dataset: { counts: check.counts, size: check.size, fingerprint: check.fingerprint },
      started: saved?.started ?? new Date().toISOString(),
      resumes,
    }),
  );
}

/**
 * Opens `config.out` for training: checks the dataset, locks the folder (one trainer at a time),
 * refuses a run that exists when not resuming and what a resume may not change, chooses the
 * micro-batch, creates the networks and optimizers (from checkpoints/latest when resuming) and writes
 * config.json. Whatever fails releases what was taken.
 */
export async function openRun(
  config: TrainConfig,
  resume: boolean,
  log: Logger,
  takeOver?: (holder: LockHolder) => boolean,
): Promise<OpenedRun> {
  const check = await checkTrainingData(config, log);
  await mkdir(config.out, { recursive: true });
  const lock = await lockRun(config.out, log, takeOver);
  try {
    const existing = await hasCheckpoints(config.out);
    if (existing && !resume) {
      throw new UserError(
        `${config.out} already holds a training run: add --resume to continue it, or choose another --out`,
      );
    }
    const saved = existing ? await resumedRun(config, check.fingerprint) : undefined;
    await mkdir(join(config.out, SAMPLES_DIR), { recursive: true });
    const degrade = await degradationOf(config, log);
    const used: TrainConfig = { ...config, microBatch: microBatchOf(config, log) };
    const latest = existing
      ? await resumableCheckpoint(config.out, lock.replaced !== undefined, log)
      : undefined;
    if (resume && !existing) log.warn(`${config.out} has no checkpoint to resume from: starting at epoch 1`);
    const state = createTrainState(used);
    try {
      const at = latest
        ? await restore(config.out, latest, state, log)
        : { epoch: 1, batchInEpoch: 0, step: 0, trainSeconds: 0, images: 0 };
      // A run killed before its first checkpoint starts again: the steps it logged are trained again.
      if (!latest)
        await guardWrite(metricsPath(config.out), config.out, () => truncateMetrics(config.out, 0));
      await recordRun(used, check, saved, at.epoch);
      return { config: used, state, at, hasTest: check.counts.test > 0, degrade, lock };
    } catch (e) {
      disposeTrainState(state);
      throw e;
    }
  } catch (e) {
    await lock.release();
    throw e;
  }
}
