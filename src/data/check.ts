import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { readDatasetInfo, SPLITS } from './dataset.js';
import { sha256 } from './image.js';
import type { DatasetInfo, Split } from './types.js';

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

const few = (xs: string[]): string =>
  xs.length > 3 ? `${xs.slice(0, 3).join(', ')} and ${xs.length - 3} more` : xs.join(', ');

/**
 * The pair names of a split, sorted: from dataset.json when there is one, else every file of
 * `<split>/A` that has a file of the same name in `<split>/B`. A file without its partner is an error
 * (silently training on fewer pairs would hide a broken copy).
 */
export async function listPairs(dir: string, split: Split, info?: DatasetInfo | null): Promise<string[]> {
  if (!(await exists(dir))) throw new UserError(`dataset folder ${dir} does not exist`);
  const described = info === undefined ? await readDatasetInfo(dir) : (info ?? undefined);
  if (described) return described.files[split].map((f) => f.name);
  const a = await listDir(join(dir, split, 'A'));
  const b = await listDir(join(dir, split, 'B'));
  if (split === 'train' && a.length === 0 && b.length === 0) {
    throw new UserError(
      `${dir} has no dataset.json and no images in train/A and train/B: run pix2pix prepare first`,
    );
  }
  const inB = new Set(b);
  const inA = new Set(a);
  const noB = a.filter((n) => !inB.has(n));
  const noA = b.filter((n) => !inA.has(n));
  if (noB.length)
    throw new UserError(
      `${join(dir, split)}: ${few(noB)} in A/ ${noB.length === 1 ? 'has' : 'have'} no partner in B/`,
    );
  if (noA.length)
    throw new UserError(
      `${join(dir, split)}: ${few(noA)} in B/ ${noA.length === 1 ? 'has' : 'have'} no partner in A/`,
    );
  return a;
}

export interface CheckOptions {
  /**
   * `full` hashes every file against dataset.json and reads every image header; `fast` compares byte
   * lengths only and leaves decoding problems to the loader (which skips a bad pair with a warning);
   * `auto` (default) is `full` up to `autoHashLimit` bytes of images, `fast` above.
   */
  hash?: 'full' | 'fast' | 'auto';
  /** Default 1 GiB: hashing runs at several hundred MB/s, so a full check stays within seconds. */
  autoHashLimit?: number;
  log?: Logger;
}

export interface CheckResult {
  info?: DatasetInfo;
  counts: Record<Split, number>;
  /** Image side when all images share one square size. */
  size?: number;
  hashed: boolean;
  /**
   * SHA-256 of what the dataset holds: dataset.json's file list (names, hashes and lengths of every
   * image) when there is one, else the pair names of each split. A run records it, so evaluating or
   * resuming on a dataset that has changed since can be refused.
   */
  fingerprint: string;
}

/**
 * Checks a dataset before training starts, so problems show up as one clear UserError and not as a crash
 * mid-run: the folder and dataset.json, every pair present on both sides, A and B of a pair the same
 * size (and equal to dataset.json's size), and the recorded SHA-256 of every file. A folder without
 * dataset.json but with train/A and train/B is accepted with a warning, and checked by headers only.
 */
export async function checkDataset(dir: string, opts: CheckOptions = {}): Promise<CheckResult> {
  const log = opts.log ?? silentLogger;
  if (!(await exists(dir))) throw new UserError(`dataset folder ${dir} does not exist`);
  const info = await readDatasetInfo(dir);
  if (!info)
    log.warn(
      `${dir} has no dataset.json: using its train/{A,B} and test/{A,B} folders as they are, unhashed`,
    );
  const problems: string[] = [];
  const counts = { train: 0, test: 0 } as Record<Split, number>;
  let total = 0;
  if (info) for (const s of SPLITS) for (const f of info.files[s]) total += f.bytes[0] + f.bytes[1];
  const mode = opts.hash ?? 'auto';
  const hashed =
    info !== undefined && (mode === 'full' || (mode === 'auto' && total <= (opts.autoHashLimit ?? 2 ** 30)));
  if (info && !hashed)
    log.info(
      `${dir}: ${(total / 2 ** 20).toFixed(0)} MiB of images, checking byte lengths only (no hashing)`,
    );
  const sizes = new Set<string>();
  const listed: Record<string, string[]> = {};
  for (const split of SPLITS) {
    const names = await listPairs(dir, split, info ?? null);
    listed[split] = names;
    counts[split] = names.length;
    const entries = info ? new Map(info.files[split].map((f) => [f.name, f])) : undefined;
    if (info) {
      for (const side of ['A', 'B'] as const) {
        const extra = (await listDir(join(dir, split, side))).filter((n) => !entries!.has(n));
        if (extra.length) log.warn(`${join(dir, split, side)}: ${few(extra)} not in dataset.json, ignored`);
      }
    }
    const checkPair = async (name: string): Promise<{ problems: string[]; dims: string[] }> => {
      const found: string[] = [];
      const dims: string[] = [];
      const entry = entries?.get(name);
      for (const [k, side] of [
        [0, 'A'],
        [1, 'B'],
      ] as const) {
        const path = join(dir, split, side, name);
        const rel = `${split}/${side}/${name}`;
        let size: number;
        let bytes: Buffer | undefined;
        try {
          // The fast path stats only; otherwise one read serves the hash and the header.
          if (info && !hashed) size = (await stat(path)).size;
          else {
            bytes = await readFile(path);
            size = bytes.length;
          }
        } catch {
          found.push(`${rel} is missing`);
          continue;
        }
        if (entry && size !== entry.bytes[k]) {
          found.push(`${rel} has ${size} bytes, dataset.json says ${entry.bytes[k]}`);
          continue;
        }
        if (!bytes) continue;
        if (entry && sha256(bytes) !== (k === 0 ? entry.a : entry.b)) {
          found.push(`${rel} does not match its SHA-256 in dataset.json`);
          continue;
        }
        try {
          const m = await sharp(bytes).metadata();
          dims.push(`${m.width}x${m.height}`);
          if (info && (m.width !== info.size || m.height !== info.size)) {
            found.push(`${rel} is ${m.width}x${m.height}, dataset.json says ${info.size}x${info.size}`);
          }
        } catch (e) {
          found.push(`${rel} is not a readable image (${(e as Error).message})`);
        }
      }
      if (dims.length === 2 && dims[0] !== dims[1])
        found.push(`${split}/${name}: A is ${dims[0]} but B is ${dims[1]}`);
      return { problems: found, dims };
    };
    // A few pairs in flight at once keep the disk and sharp's threads busy; results keep name order.
    const results = new Array<{ problems: string[]; dims: string[] }>(names.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < names.length) {
        const i = next++;
        results[i] = await checkPair(names[i]!);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    for (const r of results) {
      problems.push(...r.problems);
      for (const d of r.dims) sizes.add(d);
    }
  }
  if (problems.length) {
    throw new UserError(
      `dataset ${dir} has ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${few(problems)}${info ? '; re-run pix2pix prepare' : ''}`,
    );
  }
  // Training refuses a dataset without training pairs, evaluation one without test pairs (each says
  // so itself): an evaluation-only set (prepare --split 0) has no training pairs, and is checked here.
  if (counts.train > 0 && counts.test === 0) log.warn(`dataset ${dir} has no test pairs`);
  let size = info?.size;
  if (!info && sizes.size === 1) {
    const [w, h] = [...sizes][0]!.split('x').map(Number);
    if (w === h) size = w;
  }
  const fingerprint = sha256(Buffer.from(JSON.stringify(info ? info.files : listed)));
  return { info, counts, size, hashed, fingerprint };
}
