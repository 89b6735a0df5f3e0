// A run's checkpoints on disk: writing one so that a crash at any moment leaves `latest` on a whole
// checkpoint, finding `latest`, listing, checking against meta.json, pruning. The bytes of a checkpoint
// come from its builder (train/checkpoint-files.ts); nothing here knows tensors.
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
import type { FileBytes } from '../util/zip.js';
import {
  CHECKPOINT_META,
  CHECKPOINTS_DIR,
  checkpointName,
  isMidEpochCheckpoint,
  isUnfinishedCheckpoint,
  LATEST,
  OPTIMIZER_FILES,
  parseCheckpointName,
  unfinishedCheckpointName,
} from './layout.js';
import { type CheckpointMeta, parseCheckpointMeta } from './records.js';

export const sha256Hex = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

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
 * Writes checkpoints/NAME from `files` under a temporary name, renames it into place, then repoints
 * `latest`: a crash at any moment leaves `latest` on a whole checkpoint. Returns the folder.
 */
export async function writeCheckpoint(
  runDir: string,
  name: string,
  files: AsyncIterable<FileBytes>,
): Promise<string> {
  const root = join(runDir, CHECKPOINTS_DIR);
  const previous = await latestCheckpoint(runDir);
  const tmp = join(root, unfinishedCheckpointName(name));
  try {
    return await publish(root, tmp, name, previous, files);
  } catch (e) {
    // A full disk (or any write fault) leaves `latest` on the previous checkpoint; the partial copy
    // goes, so the space it took is free again for the resume.
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}

async function publish(
  root: string,
  tmp: string,
  name: string,
  previous: string | undefined,
  files: AsyncIterable<FileBytes>,
): Promise<string> {
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  // One file at a time: a 256 px checkpoint is ~0.7 GB, and only the file being written is held.
  const written: string[] = [];
  for await (const f of files) {
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
  const link = join(root, `.${LATEST}.tmp`);
  await rm(link, { force: true });
  await symlink(name, link);
  await rename(link, join(root, LATEST));
  await sync(root);
  // Only now may the previous resumable state go. Optimizer moments are twice the model's size and
  // only resuming needs them, so only the latest checkpoint keeps them; every epoch keeps its
  // networks for evaluation, and a mid-epoch checkpoint (only for resuming) goes whole.
  if (previous && previous !== final) {
    if (isMidEpochCheckpoint(previous)) await rm(previous, { recursive: true, force: true });
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
  const root = join(runDir, CHECKPOINTS_DIR);
  let names: string[];
  try {
    names = (await readdir(root)).filter(isUnfinishedCheckpoint);
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
  const path = join(root, LATEST);
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
 * writeCheckpoint makes it, or a small file holding a checkpoint folder's name (latestFromFile).
 */
export async function latestCheckpoint(runDir: string): Promise<string | undefined> {
  const root = join(runDir, CHECKPOINTS_DIR);
  let name: string | undefined;
  try {
    name = await readlink(join(root, LATEST));
  } catch {
    name = await latestFromFile(root);
  }
  return name === undefined ? undefined : join(root, name);
}

/** Whether checkpoints/latest exists in any form (a link, a file naming a checkpoint, or a copy of one). */
export const latestEntryExists = (runDir: string): Promise<boolean> =>
  lstat(join(runDir, CHECKPOINTS_DIR, LATEST)).then(
    () => true,
    () => false,
  );

/** The folder of epoch `epoch`'s checkpoint in a run (which may not exist). */
export const epochCheckpointPath = (runDir: string, epoch: number) =>
  join(runDir, CHECKPOINTS_DIR, checkpointName(epoch));

/** A named checkpoint folder: an epoch's, or a mid-epoch one (with its global step). */
export interface CheckpointFolder {
  name: string;
  dir: string;
  epoch: number;
  step?: number;
}

/**
 * Every named checkpoint of a run, epoch's and mid-epoch ones, in name order. Half-written ones
 * (`.NAME.tmp`) are not listed; a listed one may still be damaged, which loading it tells.
 */
export async function listCheckpointFolders(runDir: string): Promise<CheckpointFolder[]> {
  const root = join(runDir, CHECKPOINTS_DIR);
  let names: string[];
  try {
    names = await readdir(root);
  } catch {
    return [];
  }
  return names.sort().flatMap((name) => {
    const parsed = parseCheckpointName(name);
    return parsed ? [{ name, dir: join(root, name), ...parsed }] : [];
  });
}

/**
 * The checkpoint furthest into training among `folders` (an epoch's own follows its mid-epoch ones,
 * which name order puts after it); undefined for none.
 */
export function newestCheckpointFolder(folders: CheckpointFolder[]): CheckpointFolder | undefined {
  const at = (c: CheckpointFolder) => [c.epoch, c.step ?? Number.POSITIVE_INFINITY] as const;
  return folders.reduce<CheckpointFolder | undefined>((a, b) => {
    if (!a) return b;
    const [x, y] = [at(a), at(b)];
    return y[0] > x[0] || (y[0] === x[0] && y[1] > x[1]) ? b : a;
  }, undefined);
}

/** The run's epoch checkpoints (`checkpoints/epoch-NNNN`), by epoch. */
export async function listCheckpoints(runDir: string): Promise<{ epoch: number; dir: string }[]> {
  return (await listCheckpointFolders(runDir))
    .filter((c) => c.step === undefined)
    .map(({ epoch, dir }) => ({ epoch, dir }))
    .sort((a, b) => a.epoch - b.epoch);
}

/** Whether the run holds any named checkpoint (an epoch's or a mid-epoch one). */
export const hasCheckpoints = async (runDir: string): Promise<boolean> =>
  (await listCheckpointFolders(runDir)).length > 0;

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
  const path = join(dir, CHECKPOINT_META);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message.split('\n')[0]}`);
  }
  return parseCheckpointMeta(text, path);
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
