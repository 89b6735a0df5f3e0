// Scores generators on a dataset's test split (PSNR, SSIM, MAE), checkpoint by checkpoint, into eval.csv.
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { checkDataset, openPairs } from '../data/loader.js';
import type { PairSource } from '../data/types.js';
import { loadModel } from '../models/io.js';
import { listCheckpoints, verifyCheckpoint } from '../run/checkpoints.js';
import { evalCsvPath, mergeEvalCsv, readEvalCsv, readSavedRun, runConfigPath } from '../run/folder.js';
import { datasetTag, EPOCH_CHECKPOINTS, GENERATOR_DIR, RUN_CONFIG } from '../run/layout.js';
import { bestByPsnr, type EvalRow } from '../run/records.js';
import type { TrainConfig } from '../train/config.js';
import type { EpochScores } from '../train/loop.js';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { EVAL_BATCH, type EvalOptions, evaluateGenerator } from './metrics.js';

export { type EvalOptions, evaluateGenerator };

export const evalModeName = (dropout: boolean | undefined) =>
  dropout ? 'dropout on (as the pix2pix paper at test time)' : 'deterministic (dropout off)';

/** The test split of a run's dataset, as training saw its images (size, direction). */
export async function openTestSplit(
  config: Pick<TrainConfig, 'data' | 'size' | 'seed' | 'direction'>,
  log: Logger = silentLogger,
): Promise<PairSource> {
  return openPairs(
    config.data,
    'test',
    {
      batchSize: EVAL_BATCH,
      size: config.size,
      augment: false,
      seed: config.seed,
      dropLast: false,
      direction: config.direction,
    },
    log,
  );
}

/** What a run folder's config.json says, checked enough to evaluate or compare it. */
export interface RunInfo {
  config: TrainConfig;
  /** The dataset fingerprint recorded when the run started (absent in older runs). */
  fingerprint?: string;
}

export async function readRun(runDir: string): Promise<RunInfo> {
  try {
    if (!(await stat(runDir)).isDirectory()) throw new UserError(`run ${runDir} is not a folder`);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`run folder ${runDir} does not exist`);
  }
  const saved = await readSavedRun<TrainConfig>(runDir);
  if (!saved) {
    throw new UserError(
      `${runDir} is not a training run (no ${RUN_CONFIG}): point --run at a folder made by pix2pix train`,
    );
  }
  const c = saved.config as TrainConfig | undefined;
  if (!c || typeof c.data !== 'string' || !Number.isInteger(c.size)) {
    throw new UserError(
      `${runConfigPath(runDir)} holds no training config (data, size): was it written by pix2pix train?`,
    );
  }
  return { config: c, fingerprint: saved.dataset?.fingerprint };
}

/** Parses `--epochs all|N,...`. */
export function parseEpochList(text: string): 'all' | number[] {
  if (text.trim() === 'all') return 'all';
  const parts = text.split(',').map((s) => s.trim());
  const epochs = parts.map(Number);
  if (parts.some((p) => p === '') || epochs.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new UserError(`--epochs must be 'all' or epoch numbers like 1,5,10 (got '${text}')`);
  }
  return [...new Set(epochs)].sort((a, b) => a - b);
}

export interface RunEvalOptions extends EvalOptions {
  epochs?: 'all' | number[];
  /** Evaluate on this dataset instead of the run's own (no fingerprint check). */
  data?: string;
  /** Skip epochs eval.csv already holds. */
  onlyMissing?: boolean;
  log?: Logger;
  onRow?: (row: EvalRow, done: number, total: number) => void;
}

export interface RunEvalResult {
  /** Rows evaluated now. */
  rows: EvalRow[];
  /** Every row of the csv after merging. */
  all: EvalRow[];
  best?: EvalRow;
  /** Checkpoints that could not be loaded, with why. */
  skipped: { epoch: number; dir: string; reason: string }[];
  csv: string;
}

/**
 * Evaluates a run's checkpoints (all, or the listed epochs) on its test split and merges the rows into
 * eval.csv. A checkpoint that cannot be loaded is named and skipped; a dataset that changed since the
 * run started, a run without checkpoints, or an epoch without one is a UserError.
 */
export async function evaluateRun(runDir: string, opts: RunEvalOptions = {}): Promise<RunEvalResult> {
  const log = opts.log ?? silentLogger;
  const run = await readRun(runDir);
  const config = { ...run.config, data: opts.data ?? run.config.data };
  // Scores on another dataset go to a csv of their own (eval-on-<tag>.csv): the run's eval.csv, which
  // `--epoch best`, the dashboard and compare read, keeps the scores on its own test split.
  const on =
    opts.data !== undefined && resolve(opts.data) !== resolve(run.config.data)
      ? datasetTag(opts.data)
      : undefined;
  const check = await checkDataset(config.data, { log });
  if (!opts.data && run.fingerprint && run.fingerprint !== check.fingerprint) {
    throw new UserError(
      `dataset ${config.data} has changed since the run in ${runDir} started (its files differ from those recorded in ${RUN_CONFIG}): evaluate on the dataset it was trained on, or pass --data to score it on this one anyway`,
    );
  }
  if (check.counts.test === 0) throw new UserError(`dataset ${config.data} has no test pairs to evaluate on`);
  const checkpoints = await listCheckpoints(runDir);
  if (checkpoints.length === 0) {
    throw new UserError(`${runDir} holds no checkpoints (${EPOCH_CHECKPOINTS}): train it first`);
  }
  let chosen = checkpoints;
  const wanted = opts.epochs ?? 'all';
  if (wanted !== 'all') {
    const have = new Set(checkpoints.map((c) => c.epoch));
    const missing = wanted.filter((e) => !have.has(e));
    if (missing.length) {
      throw new UserError(
        `${runDir} has no checkpoint for epoch ${missing.join(', ')} (it has ${checkpoints.map((c) => c.epoch).join(', ')})`,
      );
    }
    chosen = checkpoints.filter((c) => wanted.includes(c.epoch));
  }
  if (opts.onlyMissing) {
    const done = new Set((await readEvalCsv(runDir, opts.dropout, on)).map((r) => r.epoch));
    chosen = chosen.filter((c) => !done.has(c.epoch));
  }
  const source = await openTestSplit(config, log);
  const rows: EvalRow[] = [];
  const skipped: RunEvalResult['skipped'] = [];
  for (const c of chosen) {
    let G: tfl.LayersModel;
    let step: number;
    try {
      step = (await verifyCheckpoint(c.dir, [GENERATOR_DIR])).step;
      G = await loadModel(join(c.dir, GENERATOR_DIR));
    } catch (e) {
      const reason = (e as Error).message.split('\n')[0]!;
      log.warn(`checkpoint ${c.dir} is damaged, skipped: ${reason}`);
      skipped.push({ epoch: c.epoch, dir: c.dir, reason });
      continue;
    }
    const t0 = performance.now();
    try {
      const s = await evaluateGenerator(G, source, opts);
      const row = {
        epoch: c.epoch,
        step,
        psnr: s.psnr,
        ssim: s.ssim,
        mae: s.mae,
        seconds: (performance.now() - t0) / 1000,
      };
      rows.push(row);
      opts.onRow?.(row, rows.length + skipped.length, chosen.length);
    } finally {
      G.dispose();
    }
  }
  const all = rows.length
    ? await mergeEvalCsv(runDir, rows, opts.dropout, on)
    : await readEvalCsv(runDir, opts.dropout, on);
  return { rows, all, best: bestByPsnr(all), skipped, csv: evalCsvPath(runDir, opts.dropout, on) };
}

/**
 * The `evaluate` hook of train() for `--eval-every`: scores the in-memory generator on the run's test
 * split and merges the row into eval.csv.
 */
export function epochEvaluator(
  config: TrainConfig,
  opts: EvalOptions & { log?: Logger } = {},
): (G: tfl.LayersModel, at: { epoch: number; step: number }) => Promise<EpochScores> {
  let source: PairSource | undefined;
  return async (G, at) => {
    const t0 = performance.now();
    source ??= await openTestSplit(config, opts.log);
    const s = await evaluateGenerator(G, source, opts);
    const row: EvalRow = {
      ...at,
      psnr: s.psnr,
      ssim: s.ssim,
      mae: s.mae,
      seconds: (performance.now() - t0) / 1000,
    };
    await mergeEvalCsv(config.out, [row], opts.dropout);
    return row;
  };
}
