import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { loadModel, saveModel } from '../models/io.js';
import type { Adam } from './adam.js';
import type { TrainState } from './step.js';

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

export const checkpointName = (epoch: number) => `epoch-${String(epoch).padStart(4, '0')}`;

/** A mid-epoch checkpoint's folder: kept only until a newer checkpoint is durable. */
const midEpochName = (meta: CheckpointMeta) =>
  `${checkpointName(meta.epoch)}-step-${String(meta.step).padStart(8, '0')}`;
const isMidEpoch = (dir: string) => /-step-\d+$/.test(dir);

/** fsyncs a file or a folder (a folder's fsync makes the names in it durable). */
async function sync(path: string): Promise<void> {
  const h = await open(path, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** Paths of the files below `dir`, relative to it, with '/' separators. */
async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out.sort();
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
    if (createHash('sha256').update(buf).digest('hex') !== want.sha256) {
      throw new Error(`${join(dir, rel)} does not match its SHA-256 in meta.json`);
    }
  }
  return meta;
}

async function saveOptimizer(opt: Adam, path: string): Promise<void> {
  const { step, shapes, flat } = await opt.snapshot();
  await writeFile(`${path}.bin`, new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength));
  await writeFile(`${path}.json`, JSON.stringify({ step, shapes }));
}

async function loadOptimizer(opt: Adam, path: string): Promise<void> {
  const { step, shapes } = JSON.parse(await readFile(`${path}.json`, 'utf8')) as {
    step: number;
    shapes: number[][];
  };
  const buf = await readFile(`${path}.bin`);
  opt.restoreSnapshot({
    step,
    shapes,
    flat: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4),
  });
}

/**
 * Writes checkpoints/epoch-NNNN (generator, discriminator, both optimizers, meta.json) under a
 * temporary name, renames it into place, then repoints `latest`: a crash at any moment leaves
 * `latest` on a whole checkpoint.
 */
export async function saveCheckpoint(runDir: string, s: TrainState, meta: CheckpointMeta): Promise<string> {
  const root = join(runDir, 'checkpoints');
  const previous = await latestCheckpoint(runDir);
  const name = meta.batchInEpoch ? midEpochName(meta) : checkpointName(meta.epoch);
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
  await saveModel(s.G, join(tmp, 'generator'));
  await saveModel(s.D, join(tmp, 'discriminator'));
  await saveOptimizer(s.optG, join(tmp, 'optimizer-g'));
  await saveOptimizer(s.optD, join(tmp, 'optimizer-d'));
  const written = await listFiles(tmp);
  const files = Object.fromEntries(
    await Promise.all(
      written.map(async (rel) => {
        const buf = await readFile(join(tmp, rel));
        return [rel, { bytes: buf.length, sha256: createHash('sha256').update(buf).digest('hex') }] as const;
      }),
    ),
  );
  await writeFile(join(tmp, 'meta.json'), JSON.stringify({ ...meta, files }, null, 2));
  // Durable before it can be named: every file and folder on disk, then the rename, then `latest`.
  for (const rel of [...written, 'meta.json']) await sync(join(tmp, rel));
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
      for (const f of ['optimizer-g.bin', 'optimizer-g.json', 'optimizer-d.bin', 'optimizer-d.json']) {
        await rm(join(previous, f), { force: true });
      }
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

/** The checkpoint `latest` points at, or undefined when the run has none. */
export async function latestCheckpoint(runDir: string): Promise<string | undefined> {
  try {
    return join(runDir, 'checkpoints', await readlink(join(runDir, 'checkpoints', 'latest')));
  } catch {
    return undefined;
  }
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
    meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${join(dir, 'meta.json')}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!Number.isInteger(meta.epoch) || !Number.isInteger(meta.step)) {
    throw new Error(`${join(dir, 'meta.json')} has no epoch/step`);
  }
  return meta as CheckpointMeta;
}

/** Restores weights and optimizer moments into `s` from a checkpoint directory; returns its meta. */
export async function loadCheckpoint(dir: string, s: TrainState): Promise<CheckpointMeta> {
  const meta = await verifyCheckpoint(dir);
  for (const [model, sub] of [
    [s.G, 'generator'],
    [s.D, 'discriminator'],
  ] as const) {
    const saved = await loadModel(join(dir, sub));
    model.setWeights(saved.getWeights());
    saved.dispose();
  }
  await loadOptimizer(s.optG, join(dir, 'optimizer-g'));
  await loadOptimizer(s.optD, join(dir, 'optimizer-d'));
  return meta;
}
