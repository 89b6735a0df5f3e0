// What a run folder's files hold, and their text: config.json, metrics.jsonl rows, eval.csv rows and a
// checkpoint's meta.json, each typed once with its serialiser and parser. No Node or tfjs import (the
// train page's worker writes the same files into its download); folder.ts reads and writes them on disk.
import { fmtNum } from '../util/format.js';
import { UserError } from '../util/log.js';

// ---- config.json ----

/**
 * What the run folder's own readers need of a run's options. config.json holds them all (train's
 * TrainConfig, a type this layer below training does not import): `RunConfigFile<TrainConfig>` there.
 */
export interface RecordedOptions {
  data: string;
  out: string;
  size: number;
  epochs: number;
  epochsDecay: number;
}

/** One `--resume` of a run: when, from which epoch, and the options it changed (by flag). */
export interface RunResume {
  time: string;
  epoch: number;
  changed: Record<string, { from: unknown; to: unknown }>;
}

/** A run's config.json as train writes it. */
export interface RunConfigFile<C = RecordedOptions> {
  config: C;
  /** The tfjs backend it trained on. */
  backend: string;
  /** Node's and tfjs's (Node), or tfjs's and the browser's (the train page). */
  versions: Record<string, string>;
  dataset?: { counts?: Record<string, number>; size?: number; fingerprint?: string };
  started: string;
  /** Every resume, with the options it changed. */
  resumes: RunResume[];
}

/** What a run's config.json holds, as read back (older runs lack some of it). */
export type SavedRun<C = RecordedOptions> = Partial<RunConfigFile<C>> & Pick<RunConfigFile<C>, 'config'>;

export const runConfigJson = <C>(run: RunConfigFile<C>) => JSON.stringify(run, null, 2);

/** config.json's text as a SavedRun; not JSON is a UserError naming `path`. */
export function parseRunConfig<C = RecordedOptions>(text: string, path: string): SavedRun<C> {
  try {
    return JSON.parse(text) as SavedRun<C>;
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

// ---- metrics.jsonl ----

/** One line of metrics.jsonl: one training step. */
export interface MetricsRow {
  epoch: number;
  /** Global step. */
  step: number;
  g_gan: number;
  g_l1: number;
  d_loss: number;
  images_per_s: number;
  lr: number;
}

export const metricsLine = (row: MetricsRow) => `${JSON.stringify(row)}\n`;

/**
 * One line of metrics.jsonl as a row, or undefined for a blank line or one that is not JSON: the torn
 * last line a killed process leaves, which every reader skips.
 */
export function parseMetricsLine(line: string): MetricsRow | undefined {
  if (line.trim() === '') return undefined;
  try {
    return JSON.parse(line) as MetricsRow;
  } catch {
    return undefined;
  }
}

/** metrics.jsonl's text as rows (torn lines left out). */
export function parseMetrics(text: string): MetricsRow[] {
  return text.split('\n').flatMap((line) => parseMetricsLine(line) ?? []);
}

// ---- eval.csv ----

/** One line of eval.csv: a checkpoint's mean scores over the test split. */
export interface EvalRow {
  epoch: number;
  step: number;
  psnr: number;
  ssim: number;
  mae: number;
  /** Wall time of the evaluation. */
  seconds: number;
}

export const EVAL_CSV_HEADER = 'epoch,step,psnr,ssim,mae,seconds';

export function formatEvalCsv(rows: EvalRow[]): string {
  const lines = [...rows]
    .sort((x, y) => x.epoch - y.epoch)
    .map((r) =>
      [r.epoch, r.step, fmtNum(r.psnr, 4), fmtNum(r.ssim, 6), fmtNum(r.mae, 4), r.seconds.toFixed(2)].join(
        ',',
      ),
    );
  return `${[EVAL_CSV_HEADER, ...lines].join('\n')}\n`;
}

/** A csv cell as fmtNum wrote it ("inf", "-inf" and "nan" included); undefined when it is no number. */
function csvNumber(cell: string): number | undefined {
  if (cell === 'inf') return Number.POSITIVE_INFINITY;
  if (cell === '-inf') return Number.NEGATIVE_INFINITY;
  if (cell === 'nan') return Number.NaN;
  const x = cell.trim() === '' ? Number.NaN : Number(cell);
  return Number.isNaN(x) ? undefined : x;
}

export function parseEvalCsv(text: string, path = 'eval.csv'): EvalRow[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return [];
  if (lines[0]!.trim() !== EVAL_CSV_HEADER)
    throw new UserError(`${path} does not start with "${EVAL_CSV_HEADER}"`);
  return lines.slice(1).map((line, i) => {
    const v = line.split(',').map(csvNumber);
    if (v.length !== 6 || v.some((x) => x === undefined)) {
      throw new UserError(`${path} line ${i + 2} is not "${EVAL_CSV_HEADER}": ${line}`);
    }
    const [epoch, step, psnr, ssim, mae, seconds] = v as [number, number, number, number, number, number];
    return { epoch, step, psnr, ssim, mae, seconds };
  });
}

/** The row with the highest PSNR (SSIM breaks ties, then the earlier epoch). */
export function bestByPsnr(rows: EvalRow[]): EvalRow | undefined {
  let best: EvalRow | undefined;
  for (const r of rows) {
    if (Number.isNaN(r.psnr)) continue;
    if (!best || r.psnr > best.psnr || (r.psnr === best.psnr && r.ssim > best.ssim)) best = r;
  }
  return best;
}

// ---- a checkpoint's meta.json ----

export interface CheckpointMeta {
  epoch: number;
  /** Global step count when the checkpoint was written. */
  step: number;
  time: string;
  /** Wall time spent training (not evaluating) since the run began, over all its resumes. */
  trainSeconds?: number;
  /** Training images seen since the run began. */
  images?: number;
  /**
   * Batches of `epoch` done when the checkpoint was written mid-epoch (`--save-every-steps`, or a
   * signal); absent when the epoch was complete. A resume continues with the next batch.
   */
  batchInEpoch?: number;
  /** Byte length and SHA-256 of every other file of the checkpoint, checked when it is loaded. */
  files?: Record<string, { bytes: number; sha256: string }>;
}

/** meta.json's text, checked to be a checkpoint's; an Error naming `path` otherwise. */
export function parseCheckpointMeta(text: string, path: string): CheckpointMeta {
  let meta: Partial<CheckpointMeta>;
  try {
    meta = JSON.parse(text);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!Number.isInteger(meta?.epoch) || !Number.isInteger(meta?.step))
    throw new Error(`${path} has no epoch/step`);
  return meta as CheckpointMeta;
}
