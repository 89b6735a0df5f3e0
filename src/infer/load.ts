import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { loadModel } from '../models/io.js';
import { latestCheckpoint, listCheckpoints, verifyCheckpoint } from '../run/checkpoints.js';
import { isRunDir, readEvalCsv, readSavedRun } from '../run/folder.js';
import {
  CHECKPOINT_META,
  CHECKPOINTS_DIR,
  checkpointName,
  EPOCH_CHECKPOINTS,
  EVAL_CSV,
  GENERATOR_DIR,
  RUN_CONFIG,
} from '../run/layout.js';
import { bestByPsnr, type CheckpointMeta, type EvalRow } from '../run/records.js';
import type { TrainConfig } from '../train/config.js';
import { UserError } from '../util/log.js';
import { EXPORT_FORMAT, EXPORT_METADATA_FILE, type ExportedModelInfo } from './export-format.js';

/** Which checkpoint of a run to use: an epoch number, the best by eval PSNR, or the one `latest` names. */
export type EpochChoice = number | 'best' | 'latest';

/** Parses `--epoch N|best|latest`. */
export function parseEpochChoice(text: string): EpochChoice {
  const t = text.trim();
  if (t === 'best' || t === 'latest') return t;
  const n = Number(t);
  if (t === '' || !Number.isInteger(n) || n < 1) {
    throw new UserError(`--epoch must be an epoch number, 'best' or 'latest' (got '${text}')`);
  }
  return n;
}

/** A trained generator with what is known about it: its checkpoint, run config and scores. */
export interface LoadedGenerator {
  G: tfl.LayersModel;
  /** The checkpoint folder it came from (or the folder of a `pix2pix export`). */
  checkpoint: string;
  /** The checkpoint's meta.json (an export's: epoch, step and time of the checkpoint it was made from). */
  meta: CheckpointMeta;
  /** The run folder, when the checkpoint sits in one (checkpoints/epoch-NNNN under a config.json). */
  runDir?: string;
  /** The run's config.json, when there is one: direction, norm, dataset, schedule. */
  config?: TrainConfig;
  /** AtoB or BtoA: the run's, or what an export's metadata.json recorded; undefined when unknown. */
  direction?: string;
  /** Side length the generator was built for (its input is size x size x 3). */
  size: number;
  /** This epoch's row of the run's eval.csv, when it was evaluated. */
  scores?: EvalRow;
}

const isFile = (p: string) =>
  stat(p).then(
    (s) => s.isFile(),
    () => false,
  );

async function pickCheckpoint(runDir: string, epoch: EpochChoice): Promise<string> {
  const all = await listCheckpoints(runDir);
  if (epoch === 'latest') {
    const latest = await latestCheckpoint(runDir);
    if (latest) return latest;
    if (all.length) return all[all.length - 1]!.dir;
    throw new UserError(`${runDir} holds no checkpoints (${EPOCH_CHECKPOINTS}): train it first`);
  }
  const have = () =>
    all.length ? `it has epochs ${all.map((c) => c.epoch).join(', ')}` : 'it has no checkpoints';
  let wanted = epoch;
  if (wanted === 'best') {
    const best = bestByPsnr(await readEvalCsv(runDir));
    if (!best) {
      throw new UserError(
        `${runDir} has no ${EVAL_CSV} to choose the best epoch from: run pix2pix eval --run ${runDir}, or pass --epoch latest`,
      );
    }
    wanted = best.epoch;
  }
  const found = all.find((c) => c.epoch === wanted);
  if (!found) {
    throw new UserError(
      `${runDir} has no checkpoint ${checkpointName(wanted)}${epoch === 'best' ? ` (the best by PSNR in ${EVAL_CSV}; pruned?)` : ''}: ${have()}`,
    );
  }
  return found.dir;
}

/** The metadata.json of a `pix2pix export` folder, or undefined when `dir` has none of that format. */
async function readExportInfo(dir: string): Promise<ExportedModelInfo | undefined> {
  const path = join(dir, EXPORT_METADATA_FILE);
  if (!(await isFile(path))) return undefined;
  let info: Partial<ExportedModelInfo>;
  try {
    info = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message.split('\n')[0]})`);
  }
  if (info?.format !== EXPORT_FORMAT) return undefined;
  const c = info.checkpoint;
  if (!c || !Number.isInteger(c.epoch) || !Number.isInteger(c.step)) {
    throw new UserError(`${path} has no checkpoint epoch/step: export the model again with pix2pix export`);
  }
  return info as ExportedModelInfo;
}

/** An export's eval scores as an eval.csv row (metadata.json writes an infinite PSNR as null). */
function exportedScores(info: ExportedModelInfo): EvalRow | undefined {
  const s = info.scores;
  if (!s) return undefined;
  const { epoch } = info.checkpoint;
  return { epoch, step: s.step, psnr: s.psnr ?? Infinity, ssim: s.ssim, mae: s.mae, seconds: s.evalSeconds };
}

/**
 * Loads the generator of a run (`--model RUN --epoch ...`), of one checkpoint folder (verified against
 * its meta.json checksums), or of a folder written by `pix2pix export` (model.json + weight shards,
 * float16 ones too, + metadata.json), with the run's config and the epoch's eval scores when they
 * exist. Everything a user would otherwise have to repeat as flags (size, direction, norm) comes from here.
 */
export async function loadGenerator(model: string, epoch?: EpochChoice): Promise<LoadedGenerator> {
  let checkpoint: string;
  let runDir: string | undefined;
  const single = (what: string) =>
    new UserError(`${model} is ${what}: --epoch chooses among a run's checkpoints, drop it`);
  const isCheckpoint = await isFile(join(model, CHECKPOINT_META));
  const isRun = !isCheckpoint && (await isRunDir(model));
  const exported = isCheckpoint || isRun ? undefined : await readExportInfo(model);
  if (isCheckpoint) {
    if (epoch !== undefined) throw single('one checkpoint');
    checkpoint = model;
    const parent = dirname(dirname(model));
    if (basename(dirname(model)) === CHECKPOINTS_DIR && (await isRunDir(parent))) {
      runDir = parent;
    }
  } else if (isRun) {
    runDir = model;
    checkpoint = await pickCheckpoint(model, epoch ?? 'latest');
  } else if (exported) {
    if (epoch !== undefined) throw single('one exported model');
    checkpoint = model;
  } else {
    throw new UserError(
      `${model} is neither a training run (${RUN_CONFIG}) nor a checkpoint (${CHECKPOINT_META}) nor an export (metadata.json): point --model at a folder made by pix2pix train or pix2pix export`,
    );
  }
  let meta: CheckpointMeta;
  let G: tfl.LayersModel;
  try {
    if (exported) {
      const { epoch: e, step, time, batchInEpoch } = exported.checkpoint;
      meta = { epoch: e, step, time, ...(batchInEpoch !== undefined ? { batchInEpoch } : {}) };
    } else {
      meta = await verifyCheckpoint(checkpoint, [GENERATOR_DIR]);
    }
    G = await loadModel(exported ? checkpoint : join(checkpoint, GENERATOR_DIR));
  } catch (e) {
    const what = exported ? 'exported model' : 'checkpoint';
    throw new UserError(`${what} ${checkpoint} cannot be loaded: ${(e as Error).message.split('\n')[0]}`);
  }
  const shape = G.inputs[0]!.shape;
  const size = shape[1];
  if (typeof size !== 'number' || shape[2] !== size) {
    G.dispose();
    throw new UserError(`${checkpoint}: the generator's input is not square (${JSON.stringify(shape)})`);
  }
  const config = runDir ? (await readSavedRun<TrainConfig>(runDir))?.config : undefined;
  const direction = config?.direction ?? exported?.direction ?? undefined;
  // eval.csv scores whole epochs: a mid-epoch checkpoint has none of its own.
  const scores = exported
    ? exportedScores(exported)
    : runDir && meta.batchInEpoch === undefined
      ? (await readEvalCsv(runDir)).find((r) => r.epoch === meta.epoch)
      : undefined;
  return { G, checkpoint, meta, runDir, config, direction, size, scores };
}
