import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type * as tfl from '@tensorflow/tfjs-layers';
import { bestByPsnr, type EvalRow, readEvalCsv } from '../eval/evaluate.js';
import { loadModel } from '../models/io.js';
import {
  type CheckpointMeta,
  checkpointName,
  latestCheckpoint,
  listCheckpoints,
  verifyCheckpoint,
} from '../train/checkpoint.js';
import type { TrainConfig } from '../train/config.js';
import { readSavedRun } from '../train/loop.js';
import { UserError } from '../util/log.js';

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
  /** The checkpoint folder it came from. */
  checkpoint: string;
  meta: CheckpointMeta;
  /** The run folder, when the checkpoint sits in one (checkpoints/epoch-NNNN under a config.json). */
  runDir?: string;
  /** The run's config.json, when there is one: direction, norm, dataset, schedule. */
  config?: TrainConfig;
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
    throw new UserError(`${runDir} holds no checkpoints (checkpoints/epoch-NNNN): train it first`);
  }
  const have = () =>
    all.length ? `it has epochs ${all.map((c) => c.epoch).join(', ')}` : 'it has no checkpoints';
  let wanted = epoch;
  if (wanted === 'best') {
    const best = bestByPsnr(await readEvalCsv(runDir));
    if (!best) {
      throw new UserError(
        `${runDir} has no eval.csv to choose the best epoch from: run pix2pix eval --run ${runDir}, or pass --epoch latest`,
      );
    }
    wanted = best.epoch;
  }
  const found = all.find((c) => c.epoch === wanted);
  if (!found) {
    throw new UserError(
      `${runDir} has no checkpoint ${checkpointName(wanted)}${epoch === 'best' ? ' (the best by PSNR in eval.csv; pruned?)' : ''}: ${have()}`,
    );
  }
  return found.dir;
}

/**
 * Loads the generator of a run (`--model RUN --epoch ...`) or of one checkpoint folder, verified
 * against its meta.json checksums, with the run's config and the epoch's eval scores when they exist.
 * Everything a user would otherwise have to repeat as flags (size, direction, norm) comes from here.
 */
export async function loadGenerator(model: string, epoch?: EpochChoice): Promise<LoadedGenerator> {
  let checkpoint: string;
  let runDir: string | undefined;
  if (await isFile(join(model, 'meta.json'))) {
    if (epoch !== undefined) {
      throw new UserError(`${model} is one checkpoint: --epoch chooses among a run's checkpoints, drop it`);
    }
    checkpoint = model;
    const parent = dirname(dirname(model));
    if (basename(dirname(model)) === 'checkpoints' && (await isFile(join(parent, 'config.json')))) {
      runDir = parent;
    }
  } else if (await isFile(join(model, 'config.json'))) {
    runDir = model;
    checkpoint = await pickCheckpoint(model, epoch ?? 'latest');
  } else {
    throw new UserError(
      `${model} is neither a training run (config.json) nor a checkpoint (meta.json): point --model at a folder made by pix2pix train`,
    );
  }
  let meta: CheckpointMeta;
  let G: tfl.LayersModel;
  try {
    meta = await verifyCheckpoint(checkpoint, ['generator']);
    G = await loadModel(join(checkpoint, 'generator'));
  } catch (e) {
    throw new UserError(`checkpoint ${checkpoint} cannot be loaded: ${(e as Error).message.split('\n')[0]}`);
  }
  const shape = G.inputs[0]!.shape;
  const size = shape[1];
  if (typeof size !== 'number' || shape[2] !== size) {
    G.dispose();
    throw new UserError(`${checkpoint}: the generator's input is not square (${JSON.stringify(shape)})`);
  }
  const config = runDir ? (await readSavedRun(runDir))?.config : undefined;
  // eval.csv scores whole epochs: a mid-epoch checkpoint has none of its own.
  const scores =
    runDir && meta.batchInEpoch === undefined
      ? (await readEvalCsv(runDir)).find((r) => r.epoch === meta.epoch)
      : undefined;
  return { G, checkpoint, meta, runDir, config, size, scores };
}
