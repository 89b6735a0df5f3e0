// A TrainState to and from a checkpoint folder: the bytes come from checkpoint-files.ts, the folder's
// layout and its crash-safe writing from src/run/checkpoints.ts.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModel } from '../models/io.js';
import { sha256Hex, verifyCheckpoint, writeCheckpoint } from '../run/checkpoints.js';
import {
  checkpointDirName,
  DISCRIMINATOR_DIR,
  GENERATOR_DIR,
  OPTIMIZER_D,
  OPTIMIZER_G,
} from '../run/layout.js';
import type { CheckpointMeta } from '../run/records.js';
import type { Adam } from './adam.js';
import { checkpointFiles, parseOptimizerFiles } from './checkpoint-files.js';
import type { TrainState } from './step.js';

async function loadOptimizer(opt: Adam, path: string): Promise<void> {
  opt.restoreSnapshot(
    parseOptimizerFiles(await readFile(`${path}.json`, 'utf8'), await readFile(`${path}.bin`)),
  );
}

/**
 * Writes checkpoints/epoch-NNNN (or a mid-epoch epoch-NNNN-step-NNNNNNNN): generator, discriminator,
 * both optimizers and meta.json; `latest` moves onto it only once it is whole on disk.
 */
export function saveCheckpoint(runDir: string, s: TrainState, meta: CheckpointMeta): Promise<string> {
  return writeCheckpoint(runDir, checkpointDirName(meta), checkpointFiles(s, meta, sha256Hex));
}

/** Restores weights and optimizer moments into `s` from a checkpoint directory; returns its meta. */
export async function loadCheckpoint(dir: string, s: TrainState): Promise<CheckpointMeta> {
  const meta = await verifyCheckpoint(dir);
  for (const [model, sub] of [
    [s.G, GENERATOR_DIR],
    [s.D, DISCRIMINATOR_DIR],
  ] as const) {
    const saved = await loadModel(join(dir, sub));
    model.setWeights(saved.getWeights());
    saved.dispose();
  }
  await loadOptimizer(s.optG, join(dir, OPTIMIZER_G));
  await loadOptimizer(s.optD, join(dir, OPTIMIZER_D));
  return meta;
}
