// The JSON the `serve` API answers with, shared by the server (src/web) and the browser client
// (src/web/client). Types only: nothing here runs.
import type { MetricsRow } from '../run/records.js';
import type { RunState } from '../run/state.js';

/** A run (a folder made by `train`) or a group of runs (a folder made by `compare`, or any holding runs). */
export interface RunSummary {
  /** Path below --runs with '/' separators ('' when --runs is itself the run or group). */
  id: string;
  /** The folder's name (the last part of the id, or of --runs). */
  name: string;
  kind: 'run' | 'group';
  /** The group holding this run, when it sits in one. */
  parent?: string;
  /** Runs of a group, in name order. */
  children?: string[];
  /** A group that `compare` finished has a report.html at its top. */
  report?: boolean;
  /** The newest whole epoch with a checkpoint. */
  epoch?: number;
  /** Epochs the run was configured for (config.json: epochs + epochsDecay). */
  totalEpochs?: number;
  /** A run's state from its folder (run.lock, checkpoints, config.json), not from file times. */
  state?: RunState;
  /** Best eval.csv row by PSNR. */
  best?: { epoch: number; psnr: number | string; ssim: number | string };
  /** Last change of metrics.jsonl, eval.csv or config.json (ISO time). */
  updated?: string;
}

/** One named checkpoint folder: checkpoints/epoch-NNNN (or epoch-NNNN-step-NNNNNNNN mid-epoch). */
export interface CheckpointInfo {
  name: string;
  epoch: number;
  step?: number;
  time?: string;
  /** Written mid-epoch (for resuming): has no eval row or sample of its own. */
  mid: boolean;
  /** `checkpoints/latest` points here. */
  latest: boolean;
  /** URL of its generator's model.json (tfjs layers model), when the folder has one. */
  model?: string;
}

export interface SampleInfo {
  name: string;
  epoch: number;
  /** URL of the PNG (input | target | output grid), with a version query that changes with the file. */
  url: string;
}

/**
 * An eval.csv row. PSNR is infinite for a perfect output: non-finite numbers travel as the strings
 * 'Infinity', '-Infinity' or 'NaN' (JSON has no such numbers).
 */
export interface EvalRowJson {
  epoch: number;
  step: number;
  psnr: number | string;
  ssim: number | string;
  mae: number | string;
  seconds: number;
}

/** One metrics.jsonl line, as `train` writes it (the `metrics` events carry them unchanged). */
export type { MetricsRow, RunState };

/** GET /api/run?id=ID */
export interface RunDetail {
  summary: RunSummary;
  /** config.json as written by train (null when absent or unreadable). */
  config: unknown;
  /** Why config.json could not be read, if it could not. */
  configError?: string;
  checkpoints: CheckpointInfo[];
  samples: SampleInfo[];
  eval: EvalRowJson[];
  /** For a group: its runs with their eval rows (for the comparison chart). */
  runs?: (RunSummary & { eval: EvalRowJson[] })[];
  /** For a group with report.html: its URL. */
  reportUrl?: string;
  /** URL prefix of the run's files (ends with '/'). */
  files: string;
}

/** GET /api/runs */
export interface RunList {
  root: string;
  runs: RunSummary[];
}

/**
 * Server-sent events of GET /api/events?id=ID, by name, with what each one's `data:` holds (JSON).
 * Comment lines (`: hb`) come between them as heartbeats.
 */
export interface RunEvents {
  /** The stream (re)started; the full state follows, so the client drops what it had. */
  hello: { id: string };
  /**
   * All of metrics.jsonl (sent first, and again when the file was rewritten, as a resume truncating
   * it to its checkpoint does); a long file continues in `metrics` events.
   */
  'metrics-reset': MetricsRow[];
  /** Lines appended since. */
  metrics: MetricsRow[];
  /** The rest: the whole current list or object, whenever it changed. */
  eval: EvalRowJson[];
  checkpoints: CheckpointInfo[];
  samples: SampleInfo[];
  /** config.json (null when absent or unreadable). */
  config: unknown;
  /** Whether the run is training, stopped or finished (null before the first poll read it). */
  state: RunState | null;
}

export type EventName = keyof RunEvents;
