// A run folder's files on disk: config.json, metrics.jsonl, eval.csv and the sample grids, read and
// written whole or not at all (a crash or a full disk never leaves a truncated file that a resume or
// a reader would trust). Node only: the browser builds the same files with records.ts.
import { appendFile, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/fs.js';
import { UserError } from '../util/log.js';
import { evalCsvName, METRICS_FILE, parseSampleName, RUN_CONFIG, SAMPLES_DIR, sampleName } from './layout.js';
import {
  type EvalRow,
  formatEvalCsv,
  type MetricsRow,
  metricsLine,
  parseEvalCsv,
  parseMetrics,
  parseMetricsLine,
  parseRunConfig,
  type RecordedOptions,
  type RunConfigFile,
  runConfigJson,
  type SavedRun,
} from './records.js';

export const runConfigPath = (runDir: string) => join(runDir, RUN_CONFIG);
export const metricsPath = (runDir: string) => join(runDir, METRICS_FILE);
export const evalCsvPath = (runDir: string, dropout?: boolean, on?: string) =>
  join(runDir, evalCsvName(dropout, on));
export const samplePath = (runDir: string, epoch: number) => join(runDir, SAMPLES_DIR, sampleName(epoch));

/** A run is a folder with the config.json `train` writes before its first step. */
export async function isRunDir(dir: string): Promise<boolean> {
  return (await stat(runConfigPath(dir)).catch(() => undefined))?.isFile() ?? false;
}

/**
 * A run's config.json as train wrote it: undefined when there is none, a UserError when it is
 * unreadable. `C` is the type of its options (train's TrainConfig; JSON is not checked against it).
 */
export async function readSavedRun<C = RecordedOptions>(runDir: string): Promise<SavedRun<C> | undefined> {
  const path = runConfigPath(runDir);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`${path} is unreadable (${(e as Error).message})`);
  }
  return parseRunConfig<C>(text, path);
}

/**
 * Writes config.json whole under another name, then renames it: a full disk never leaves a
 * truncated one (the resume history would be lost with it).
 */
export function writeRunConfig<C>(runDir: string, run: RunConfigFile<C>): Promise<void> {
  return writeFileAtomic(runConfigPath(runDir), runConfigJson(run));
}

/** Appends one step's row to metrics.jsonl (on disk before any later checkpoint is written). */
export function appendMetrics(runDir: string, row: MetricsRow): Promise<void> {
  return appendFile(metricsPath(runDir), metricsLine(row));
}

/** A run's metrics.jsonl as rows; a torn last line (a kill) is left out; none when it has no file. */
export async function readMetrics(runDir: string): Promise<MetricsRow[]> {
  try {
    return parseMetrics(await readFile(metricsPath(runDir), 'utf8'));
  } catch {
    return [];
  }
}

/**
 * Keeps the metrics.jsonl rows up to global step `step` (a torn last line goes too), atomically: the
 * steps a resume trains again are then logged once.
 */
export async function truncateMetrics(runDir: string, step: number): Promise<void> {
  let text: string;
  try {
    text = await readFile(metricsPath(runDir), 'utf8');
  } catch {
    return;
  }
  // The kept lines as they were written, byte for byte.
  const kept = text.split('\n').filter((line) => {
    const row = parseMetricsLine(line);
    return row !== undefined && row.step <= step;
  });
  await writeFileAtomic(metricsPath(runDir), kept.map((line) => `${line}\n`).join(''));
}

/** A run's evaluations so far (empty when it has none). */
export async function readEvalCsv(runDir: string, dropout?: boolean, on?: string): Promise<EvalRow[]> {
  const path = evalCsvPath(runDir, dropout, on);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return [];
  }
  return parseEvalCsv(text, path);
}

/** Merges `rows` into the run's csv (a new row for an epoch replaces the old one), atomically. */
export async function mergeEvalCsv(
  runDir: string,
  rows: EvalRow[],
  dropout?: boolean,
  on?: string,
): Promise<EvalRow[]> {
  const byEpoch = new Map((await readEvalCsv(runDir, dropout, on)).map((r) => [r.epoch, r]));
  for (const r of rows) byEpoch.set(r.epoch, r);
  const all = [...byEpoch.values()].sort((x, y) => x.epoch - y.epoch);
  await writeFileAtomic(evalCsvPath(runDir, dropout, on), formatEvalCsv(all));
  return all;
}

/** The sample grids of a run (samples/epoch-NNNN.png), by epoch. */
export async function listSamples(runDir: string): Promise<{ name: string; epoch: number; path: string }[]> {
  const names = await readdir(join(runDir, SAMPLES_DIR)).catch(() => [] as string[]);
  return names
    .flatMap((name) => {
      const epoch = parseSampleName(name);
      return epoch === undefined ? [] : [{ name, epoch, path: join(runDir, SAMPLES_DIR, name) }];
    })
    .sort((a, b) => a.epoch - b.epoch);
}
