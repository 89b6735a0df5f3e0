// The run folder's layout: every name `train` gives a file or folder of a run, and the patterns that
// recognise them, in one place. No Node or tfjs import: the train page's worker bundles it to build
// the same folder as a download, and the dashboard to name what it shows.
//
//   config.json        the options and history (records.ts RunConfigFile)
//   metrics.jsonl      one MetricsRow a training step
//   eval.csv           one EvalRow an evaluated epoch (eval-dropout.csv with dropout on)
//   run.lock           while a process trains the run (lock.ts)
//   samples/epoch-NNNN.png
//   checkpoints/epoch-NNNN/                 an epoch's checkpoint: generator/, discriminator/,
//                                           optimizer-{g,d}.{bin,json}, meta.json
//   checkpoints/epoch-NNNN-step-NNNNNNNN/   a mid-epoch one, kept until a newer one is durable
//   checkpoints/.NAME.tmp/                  a checkpoint being written
//   checkpoints/latest                      a symlink to the one a resume continues from

export const RUN_CONFIG = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';
export const EVAL_CSV = 'eval.csv';
export const EVAL_DROPOUT_CSV = 'eval-dropout.csv';
export const RUN_LOCK = 'run.lock';
export const SAMPLES_DIR = 'samples';
export const CHECKPOINTS_DIR = 'checkpoints';
/** checkpoints/latest: a symlink to the folder of the checkpoint a resume continues from. */
export const LATEST = 'latest';
/** How messages name `latest`, relative to the run folder. */
export const LATEST_PATH = `${CHECKPOINTS_DIR}/${LATEST}`;

/**
 * The csv a run's evaluations go to: eval.csv, or eval-dropout.csv for `--dropout`, never mixed; scores
 * on another dataset than the run's own (`eval --data`) go to eval[-dropout]-on-<its tag>.csv, so they
 * never replace the run's own scores.
 */
export const evalCsvName = (dropout: boolean | undefined, on?: string) => {
  const base = dropout ? EVAL_DROPOUT_CSV : EVAL_CSV;
  return on ? base.replace(/\.csv$/, `-on-${on}.csv`) : base;
};

/** A dataset folder's tag in those names: its base name, with what a file name should not hold as _. */
export const datasetTag = (dataDir: string): string =>
  (
    dataDir
      .replace(/[\\/]+$/, '')
      .split(/[\\/]/)
      .at(-1) || 'data'
  ).replace(/[^A-Za-z0-9._-]/g, '_');

// Inside a checkpoint folder.
export const CHECKPOINT_META = 'meta.json';
export const GENERATOR_DIR = 'generator';
export const DISCRIMINATOR_DIR = 'discriminator';
/** The generator's model.json (the tfjs layers-model format's name): what the dashboard loads. */
export const GENERATOR_MODEL = `${GENERATOR_DIR}/model.json`;
export const OPTIMIZER_G = 'optimizer-g';
export const OPTIMIZER_D = 'optimizer-d';
/** Only resuming needs these (twice the models' size): only the latest checkpoint keeps them. */
export const OPTIMIZER_FILES = [OPTIMIZER_G, OPTIMIZER_D].flatMap((o) => [`${o}.bin`, `${o}.json`]);

/** An epoch's checkpoint folder (and sample grid): `epoch-0007`. */
export const checkpointName = (epoch: number) => `epoch-${String(epoch).padStart(4, '0')}`;

/** How messages name the epoch checkpoints a run holds. */
export const EPOCH_CHECKPOINTS = `${CHECKPOINTS_DIR}/epoch-NNNN`;

/** A mid-epoch checkpoint's folder: kept only until a newer checkpoint is durable. */
export const midEpochName = (at: { epoch: number; step: number }) =>
  `${checkpointName(at.epoch)}-step-${String(at.step).padStart(8, '0')}`;

/** The folder name of the checkpoint at `at`: mid-epoch when batches of its epoch remain, else the epoch's own. */
export const checkpointDirName = (at: { epoch: number; step: number; batchInEpoch?: number }) =>
  at.batchInEpoch ? midEpochName(at) : checkpointName(at.epoch);

/** A named (whole) checkpoint folder: never a `.NAME.tmp` being written. */
const CHECKPOINT_NAME = /^epoch-(\d{4,})(?:-step-(\d+))?$/;

/** What a checkpoint folder's name says: its epoch, and its global step when it is a mid-epoch one. */
export function parseCheckpointName(name: string): { epoch: number; step?: number } | undefined {
  const m = CHECKPOINT_NAME.exec(name);
  if (!m) return undefined;
  return m[2] === undefined ? { epoch: Number(m[1]) } : { epoch: Number(m[1]), step: Number(m[2]) };
}

/** Whether a checkpoint folder (a name or a path ending in one) is a mid-epoch checkpoint. */
export const isMidEpochCheckpoint = (dir: string) =>
  parseCheckpointName(dir.split(/[/\\]/).at(-1) ?? '')?.step !== undefined;

/** Where a checkpoint is written before it is renamed to `name`: hidden, so nothing lists it. */
export const unfinishedCheckpointName = (name: string) => `.${name}.tmp`;
export const isUnfinishedCheckpoint = (name: string) => /^\..+\.tmp$/.test(name);

/** The sample grid of an epoch: samples/epoch-NNNN.png. */
export const sampleName = (epoch: number) => `${checkpointName(epoch)}.png`;

/** The epoch of a sample grid's file name, or undefined for another file. */
export function parseSampleName(name: string): number | undefined {
  const m = /^epoch-(\d+)\.png$/.exec(name);
  return m ? Number(m[1]) : undefined;
}
