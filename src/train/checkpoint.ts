import { createHash } from 'node:crypto';
import {
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadModel } from '../models/io.js';
import type { Adam } from './adam.js';
import {
  CHECKPOINT_META,
  type CheckpointMeta,
  checkpointDirName,
  checkpointFiles,
  DISCRIMINATOR_DIR,
  GENERATOR_DIR,
  OPTIMIZER_D,
  OPTIMIZER_FILES,
  OPTIMIZER_G,
  parseOptimizerFiles,
} from './checkpoint-files.js';
import type { TrainState } from './step.js';

export { type CheckpointMeta, checkpointDirName, checkpointName, midEpochName } from './checkpoint-files.js';

const isMidEpoch = (dir: string) => /-step-\d+$/.test(dir);
const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** fsyncs a file or a folder (a folder's fsync makes the names in it durable). */
async function sync(path: string): Promise<void> {
  const h = await open(path, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/**
 * Checks the files of a checkpoint (those under `parts`, or all) against the sizes and SHA-256s its
 * meta.json lists; throws naming the first bad one. Checkpoints from before the list are not checked.
 */
export async function verifyCheckpoint(dir: string, parts?: string[]): Promise<CheckpointMeta> {
  const meta = await readCheckpointMeta(dir);
  for (const [rel, want] of Object.entries(meta.files ?? {})) {
    if (parts && !parts.some((p) => rel.startsWith(`${p}/`) || rel === p)) continue;
    let buf: Buffer;
    try {
      buf = await readFile(join(dir, rel));
    } catch {
      throw new Error(`${join(dir, rel)} is missing`);
    }
    if (buf.length !== want.bytes) {
      throw new Error(`${join(dir, rel)} has ${buf.length} bytes, meta.json says ${want.bytes}`);
    }
    if (sha256Hex(buf) !== want.sha256) {
      throw new Error(`${join(dir, rel)} does not match its SHA-256 in meta.json`);
    }
  }
  return meta;
}

async function loadOptimizer(opt: Adam, path: string): Promise<void> {
  opt.restoreSnapshot(
    parseOptimizerFiles(await readFile(`${path}.json`, 'utf8'), await readFile(`${path}.bin`)),
  );
}

/**
 * Writes checkpoints/epoch-NNNN (generator, discriminator, both optimizers, meta.json) under a
 * temporary name, renames it into place, then repoints `latest`: a crash at any moment leaves
 * `latest` on a whole checkpoint.
 */
export async function saveCheckpoint(runDir: string, s: TrainState, meta: CheckpointMeta): Promise<string> {
  const root = join(runDir, 'checkpoints');
  const previous = await latestCheckpoint(runDir);
  const name = checkpointDirName(meta);
  const tmp = join(root, `.${name}.tmp`);
  try {
    return await writeCheckpoint(root, tmp, name, previous, s, meta);
  } catch (e) {
    // A full disk (or any write fault) leaves `latest` on the previous checkpoint; the partial copy
    // goes, so the space it took is free again for the resume.
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

async function writeCheckpoint(
  root: string,
  tmp: string,
  name: string,
  previous: string | undefined,
  s: TrainState,
  meta: CheckpointMeta,
): Promise<string> {
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  // One file at a time: a 256 px checkpoint is ~0.7 GB, and only the file being written is held.
  const written: string[] = [];
  for await (const f of checkpointFiles(s, meta, sha256Hex)) {
    await mkdir(dirname(join(tmp, f.path)), { recursive: true });
    await writeFile(join(tmp, f.path), f.data);
    written.push(f.path);
  }
  // Durable before it can be named: every file and folder on disk, then the rename, then `latest`.
  for (const rel of written) await sync(join(tmp, rel));
  for (const sub of new Set(written.map((rel) => dirname(rel)))) await sync(join(tmp, sub));
  const final = join(root, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await sync(root);
  const link = join(root, '.latest.tmp');
  await rm(link, { force: true });
  await symlink(name, link);
  await rename(link, join(root, 'latest'));
  await sync(root);
  // Only now may the previous resumable state go. Optimizer moments are twice the model's size and
  // only resuming needs them, so only the latest checkpoint keeps them; every epoch keeps its
  // networks for evaluation, and a mid-epoch checkpoint (only for resuming) goes whole.
  if (previous && previous !== final) {
    if (isMidEpoch(previous)) await rm(previous, { recursive: true, force: true });
    else {
      for (const f of OPTIMIZER_FILES) await rm(join(previous, f), { force: true });
    }
  }
  return final;
}

/**
 * Removes the `.NAME.tmp` folders of checkpoints whose writing was cut short (a kill, a full disk):
 * they were never named, so nothing refers to them. Returns their names.
 */
export async function removeUnfinishedCheckpoints(runDir: string): Promise<string[]> {
  const root = join(runDir, 'checkpoints');
  let names: string[];
  try {
    names = (await readdir(root)).filter((n) => /^\..+\.tmp$/.test(n));
  } catch {
    return [];
  }
  for (const n of names) await rm(join(root, n), { recursive: true, force: true });
  return names;
}

/** Longer than any checkpoint folder's name: a bigger `latest` file is something else. */
const LATEST_FILE_MAX_BYTES = 255;

/**
 * The name a regular `latest` file holds, where an unzip that ignores unix modes (Python's zipfile,
 * Windows) wrote a symlink entry of a run folder zip as a file holding the link's target: accepted
 * only as the plain name of a folder beside it.
 */
async function latestFromFile(root: string): Promise<string | undefined> {
  const path = join(root, 'latest');
  try {
    const st = await lstat(path);
    if (!st.isFile() || st.size > LATEST_FILE_MAX_BYTES) return undefined;
    const name = (await readFile(path, 'utf8')).trim();
    if (!/^[^./\\][^/\\]*$/.test(name)) return undefined;
    return (await stat(join(root, name))).isDirectory() ? name : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The checkpoint `latest` points at, or undefined when the run has none. `latest` is a symlink as
 * saveCheckpoint makes it, or a small file holding a checkpoint folder's name (latestFromFile).
 */
export async function latestCheckpoint(runDir: string): Promise<string | undefined> {
  const root = join(runDir, 'checkpoints');
  let name: string | undefined;
  try {
    name = await readlink(join(root, 'latest'));
  } catch {
    name = await latestFromFile(root);
  }
  return name === undefined ? undefined : join(root, name);
}

const CHECKPOINT_DIR = /^epoch-(\d{4,})$/;

/**
 * The run's epoch checkpoints (`checkpoints/epoch-NNNN`), by epoch. Half-written ones (`.epoch-NNNN.tmp`)
 * are not listed; a listed one may still be damaged, which loading it tells.
 */
export async function listCheckpoints(runDir: string): Promise<{ epoch: number; dir: string }[]> {
  let names: string[];
  try {
    names = await readdir(join(runDir, 'checkpoints'));
  } catch {
    return [];
  }
  return names
    .map((n) => ({ m: CHECKPOINT_DIR.exec(n), n }))
    .filter((x) => x.m)
    .map((x) => ({ epoch: Number(x.m![1]), dir: join(runDir, 'checkpoints', x.n) }))
    .sort((a, b) => a.epoch - b.epoch);
}

/**
 * Deletes the epoch checkpoints other than the last `keep`, those of `protect` (e.g. the best by
 * PSNR) and the one `latest` names. Returns the folders removed.
 */
export async function pruneCheckpoints(
  runDir: string,
  keep: number,
  protect: number[] = [],
): Promise<string[]> {
  if (keep <= 0) return [];
  const all = await listCheckpoints(runDir);
  const latest = await latestCheckpoint(runDir);
  const kept = new Set([...all.slice(-keep).map((c) => c.epoch), ...protect]);
  const gone = all.filter((c) => !kept.has(c.epoch) && c.dir !== latest).map((c) => c.dir);
  for (const dir of gone) await rm(dir, { recursive: true, force: true });
  return gone;
}

/** A checkpoint's meta.json, checked to be one. */
export async function readCheckpointMeta(dir: string): Promise<CheckpointMeta> {
  let meta: Partial<CheckpointMeta>;
  try {
    meta = JSON.parse(await readFile(join(dir, CHECKPOINT_META), 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${join(dir, CHECKPOINT_META)}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!Number.isInteger(meta.epoch) || !Number.isInteger(meta.step)) {
    throw new Error(`${join(dir, CHECKPOINT_META)} has no epoch/step`);
  }
  return meta as CheckpointMeta;
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
