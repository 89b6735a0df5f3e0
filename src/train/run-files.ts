// A run folder's files as bytes from a TrainState, with no Node import: the browser's train page
// offers its run as a zip of the folder `pix2pix train` would have written, so `train --resume`,
// `translate`, `eval` and `export` take it up. The names and the files' formats are src/run's, which
// loop.ts writes through too.
import * as tf from '@tensorflow/tfjs-core';
import { version_layers } from '@tensorflow/tfjs-layers';
import { CHECKPOINTS_DIR, checkpointDirName, LATEST, METRICS_FILE, RUN_CONFIG } from '../run/layout.js';
import {
  type CheckpointMeta,
  type MetricsRow,
  metricsLine,
  type RunConfigFile,
  runConfigJson,
} from '../run/records.js';
import { type ZipEntry, type ZipOptions, zip } from '../util/zip.js';
import { checkpointFiles } from './checkpoint-files.js';
import type { TrainConfig } from './config.js';
import type { TrainState } from './step.js';

/** config.json of a run trained by this package. */
export type TrainRunFile = RunConfigFile<TrainConfig>;

export interface RunFolderSource {
  config: TrainConfig;
  /** When the run began (ISO 8601). */
  started: string;
  backend: string;
  /** Added to tfjs's own versions (e.g. the browser's user agent). */
  versions?: Record<string, string>;
  /** The dataset's counts and fingerprint, where known: a resume on other data is then refused. */
  dataset?: TrainRunFile['dataset'];
  resumes?: TrainRunFile['resumes'];
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
  const run: TrainRunFile = {
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
