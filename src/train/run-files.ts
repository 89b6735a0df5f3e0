// A run folder's files as bytes, with no Node import: the browser's train page offers its run as a
// zip of the folder `pix2pix train` would have written, so `train --resume`, `translate`, `eval` and
// `export` take it up. loop.ts writes config.json and metrics.jsonl through the same definitions.
import * as tf from '@tensorflow/tfjs-core';
import { version_layers } from '@tensorflow/tfjs-layers';
import { type ZipEntry, type ZipOptions, zip } from '../util/zip.js';
import { type CheckpointMeta, checkpointDirName, checkpointFiles } from './checkpoint-files.js';
import type { ConfigChanges, TrainConfig } from './config.js';
import type { TrainState } from './step.js';

export const RUN_CONFIG = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';
export const CHECKPOINTS_DIR = 'checkpoints';
/** checkpoints/latest: a symlink to the folder of the checkpoint a resume continues from. */
export const LATEST = 'latest';

/** A run's config.json as train writes it (readSavedRun reads it back). */
export interface RunConfigFile {
  config: TrainConfig;
  /** The tfjs backend it trained on. */
  backend: string;
  /** Node's and tfjs's (Node), or tfjs's and the browser's (the train page). */
  versions: Record<string, string>;
  dataset?: { counts?: Record<string, number>; size?: number; fingerprint?: string };
  started: string;
  /** Every resume, with the options it changed. */
  resumes: { time: string; epoch: number; changed: ConfigChanges }[];
}

export const runConfigJson = (run: RunConfigFile) => JSON.stringify(run, null, 2);

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

export interface RunFolderSource {
  config: TrainConfig;
  /** When the run began (ISO 8601). */
  started: string;
  backend: string;
  /** Added to tfjs's own versions (e.g. the browser's user agent). */
  versions?: Record<string, string>;
  /** The dataset's counts and fingerprint, where known: a resume on other data is then refused. */
  dataset?: RunConfigFile['dataset'];
  resumes?: RunConfigFile['resumes'];
  /** metrics.jsonl's rows, written as given (a resume drops those past the checkpoint's step). */
  metrics?: readonly MetricsRow[];
  /** The networks and optimizers to checkpoint, and where in training they are. */
  state: Pick<TrainState, 'G' | 'D' | 'optG' | 'optD'>;
  meta: CheckpointMeta;
  /** Puts every entry under this folder (what unzip then creates); default the archive's root. */
  folder?: string;
}

/**
 * The entries of a run folder with one checkpoint: `config.json`, `metrics.jsonl` (when rows are
 * given), `checkpoints/NAME/...` (checkpointFiles; NAME is epoch-NNNN, or epoch-NNNN-step-NNNNNNNN
 * mid-epoch) and `checkpoints/latest`, a symlink to NAME.
 */
export async function runFolderEntries(src: RunFolderSource): Promise<ZipEntry[]> {
  const at = (path: string) => (src.folder ? `${src.folder}/${path}` : path);
  const utf8 = new TextEncoder();
  const run: RunConfigFile = {
    config: src.config,
    backend: src.backend,
    versions: { tfjs: tf.version_core, tfjsLayers: version_layers, ...src.versions },
    ...(src.dataset ? { dataset: src.dataset } : {}),
    started: src.started,
    resumes: src.resumes ?? [],
  };
  const entries: ZipEntry[] = [{ path: at(RUN_CONFIG), data: utf8.encode(runConfigJson(run)) }];
  if (src.metrics) {
    entries.push({ path: at(METRICS_FILE), data: utf8.encode(src.metrics.map(metricsLine).join('')) });
  }
  const name = checkpointDirName(src.meta);
  for await (const f of checkpointFiles(src.state, src.meta)) {
    entries.push({ path: at(`${CHECKPOINTS_DIR}/${name}/${f.path}`), data: f.data });
  }
  entries.push({ path: at(`${CHECKPOINTS_DIR}/${LATEST}`), symlinkTo: name });
  return entries;
}

/** runFolderEntries as one ZIP archive (zipParts of the entries for a Blob without the extra copy). */
export async function runFolderZip(src: RunFolderSource, opts: ZipOptions = {}): Promise<Uint8Array> {
  return zip(await runFolderEntries(src), opts);
}
