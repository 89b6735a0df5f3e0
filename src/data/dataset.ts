import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../util/log.js';
import { encodePng, type RgbImage, sha256 } from './image.js';
import { Rng } from './rng.js';
import { DATASET_FORMAT, type DatasetFile, type DatasetInfo, type Split } from './types.js';

export const SPLITS: readonly Split[] = ['train', 'test'];

/** A source to split and the number of pairs it gave. */
export interface SourcePairs {
  name: string;
  pairs: number;
}

/** Above this many item x sum steps the exact search gives way to a greedy one (large inputs only). */
const EXACT_BUDGET = 1e8;

/**
 * Assigns whole sources to train or test, so tiles of one photo never land on both sides, such that the
 * *pairs* come as close to `ratio` (the train fraction) as the sources' pair counts allow: the test side
 * gets a set of sources whose pair count is nearest to `total - round(total * ratio)` (an exact
 * subset-sum; ties go to the smaller test side). Plain names count one pair each, which splits by number
 * of sources. The order is a seeded shuffle of the sorted names, and among equally close sets the one
 * taking the sources at the end of that order for test is chosen, so the result depends only on the
 * sources and the seed, and with equal counts it is the same as a split by number of sources. With two or
 * more sources and 0 < ratio < 1, each side gets at least one.
 */
export function splitSources(
  sources: readonly string[] | readonly SourcePairs[],
  ratio: number,
  seed: number,
): Map<string, Split> {
  const items: SourcePairs[] = sources.map((s) => (typeof s === 'string' ? { name: s, pairs: 1 } : s));
  const count = new Map(items.map((s) => [s.name, s.pairs]));
  for (const [name, n] of count) {
    if (!Number.isInteger(n) || n < 0)
      throw new Error(`source ${name}: pairs must be an integer >= 0, got ${n}`);
  }
  const order = Rng.derive(seed, 'split').shuffle([...count.keys()].sort());
  const bySourceCount = (): Map<string, Split> => {
    let nTrain = Math.round(order.length * ratio);
    if (order.length >= 2 && ratio > 0 && ratio < 1) nTrain = Math.min(order.length - 1, Math.max(1, nTrain));
    return new Map(order.map((n, i) => [n, i < nTrain ? 'train' : 'test']));
  };
  if (order.length < 2 || !(ratio > 0 && ratio < 1)) return bySourceCount();
  // Candidates for test, most preferred first: the end of the shuffled order.
  const pref = [...order].reverse();
  const c = pref.map((n) => count.get(n)!);
  const total = c.reduce((a, b) => a + b, 0);
  if (c.filter((n) => n > 0).length < 2) return bySourceCount(); // pair counts cannot tell the sides apart
  const target = total - Math.round(total * ratio);
  const test = exactTestSet(c, total, target) ?? greedyTestSet(c, total, target);
  return new Map(pref.map((n, i) => [n, test.has(i) ? 'test' : 'train']));
}

/**
 * Indices (into `c`) of a set with 0 < sum < total nearest to `target`, lowest sum on ties; among sets of
 * that sum, the one whose highest index is lowest (recursively), i.e. the earliest items. Undefined when
 * the search would be too large.
 */
function exactTestSet(c: number[], total: number, target: number): Set<number> | undefined {
  // Some valid sum lies within max(c) of any target in [0, total] (prefix sums step by at most max(c)).
  const cap = Math.min(total - 1, target + c.reduce((a, b) => Math.max(a, b), 0));
  if (c.length * (cap + 1) > EXACT_BUDGET) return undefined;
  // by[s]: the first item with which sum s became reachable (-1: unreachable); s - c[by[s]] was
  // reachable with earlier items only, so walking back uses strictly decreasing indices.
  const by = new Int32Array(cap + 1).fill(-1);
  by[0] = c.length;
  for (let i = 0; i < c.length; i++) {
    const w = c[i]!;
    if (w === 0) continue;
    for (let s = cap; s >= w; s--) if (by[s] === -1 && by[s - w] !== -1) by[s] = i;
  }
  let best = -1;
  for (let d = 0; best < 0 && d <= Math.max(target, cap - target); d++) {
    for (const s of [target - d, target + d]) {
      if (s > 0 && s <= cap && by[s] !== -1) {
        best = s;
        break;
      }
    }
  }
  if (best < 0) return undefined;
  const set = new Set<number>();
  for (let s = best; s > 0; s -= c[by[s]!]!) set.add(by[s]!);
  return set;
}

/** First fit in preference order, then each side made non-empty: for inputs too large to search exactly. */
function greedyTestSet(c: number[], total: number, target: number): Set<number> {
  const set = new Set<number>();
  let sum = 0;
  for (const [i, w] of c.entries()) {
    if (w > 0 && Math.abs(sum + w - target) < Math.abs(sum - target)) {
      set.add(i);
      sum += w;
    }
  }
  if (sum === 0) set.add(c.findIndex((w) => w > 0));
  if (sum === total) {
    let last = c.length - 1;
    while (c[last] === 0) last--;
    set.delete(last);
  }
  return set;
}

async function readJson(path: string): Promise<unknown> {
  return JSON.parse(await readFile(path, 'utf8'));
}

/** Parses a dataset.json, or undefined when there is none; a broken one is a UserError. */
export async function readDatasetInfo(dir: string): Promise<DatasetInfo | undefined> {
  const path = join(dir, 'dataset.json');
  let raw: unknown;
  try {
    raw = await readJson(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UserError(`${path} is not valid JSON (${(e as Error).message}); re-run pix2pix prepare`);
  }
  const info = raw as Partial<DatasetInfo>;
  if (info.format !== DATASET_FORMAT || info.version !== 1 || !info.files?.train || !info.files?.test) {
    throw new UserError(`${path} is not a pix2pix-ts dataset description (format/version/files missing)`);
  }
  const problems: string[] = [];
  if (!(Number.isInteger(info.size) && (info.size as number) > 0))
    problems.push(`size ${info.size} is not a positive integer`);
  for (const split of SPLITS) {
    const files = info.files[split];
    if (!Array.isArray(files)) {
      problems.push(`files.${split} is not a list`);
      continue;
    }
    for (const [i, f] of files.entries()) {
      const where = `files.${split}[${i}]`;
      if (typeof f?.name !== 'string' || !isPlainFileName(f.name)) {
        // Names become paths: one that is not a plain file name could read outside the dataset.
        problems.push(`${where}.name ${JSON.stringify(f?.name)} is not a plain file name`);
      }
      if (typeof f?.a !== 'string' || typeof f?.b !== 'string') problems.push(`${where} has no a/b hashes`);
      if (
        !Array.isArray(f?.bytes) ||
        f.bytes.length !== 2 ||
        !f.bytes.every((n) => Number.isInteger(n) && n >= 0)
      ) {
        problems.push(`${where}.bytes is not two byte counts`);
      }
    }
  }
  if (problems.length) {
    const shown = problems.length > 3 ? [...problems.slice(0, 3), `${problems.length - 3} more`] : problems;
    throw new UserError(`${path} is damaged: ${shown.join('; ')}; re-run pix2pix prepare`);
  }
  return info as DatasetInfo;
}

/** A name that is one file inside its folder: no separators, not '.' or '..', no NUL. */
function isPlainFileName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0]/.test(name);
}

async function isEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
}

/**
 * Writes a dataset into a sibling `.<out>.partial` folder and moves it into place only when complete, so an
 * interrupted run never leaves something that looks like a dataset. Pairs are written before the split is
 * known (a source that fails to decode must not count), into `pending/`, and moved to train/ or test/ by
 * `finish`. An existing `out` is replaced only when it is empty or itself a dataset (it has our
 * dataset.json); anything else is refused.
 */
export class DatasetWriter {
  private readonly pending: DatasetFile[] = [];

  private constructor(
    readonly out: string,
    private readonly tmp: string,
  ) {}

  static async create(out: string): Promise<DatasetWriter> {
    if (!(await isEmptyDir(out))) {
      const s = await stat(out);
      if (!s.isDirectory()) throw new UserError(`output ${out} exists and is not a folder`);
      let ours = false;
      try {
        ours = (await readDatasetInfo(out)) !== undefined;
      } catch {
        ours = false;
      }
      if (!ours) {
        throw new UserError(
          `output folder ${out} is not empty and holds no dataset.json: refusing to overwrite it`,
        );
      }
    }
    const tmp = join(dirname(out), `.${basename(out)}.partial`);
    await rm(tmp, { recursive: true, force: true });
    for (const d of ['pending', 'train', 'test'])
      for (const side of ['A', 'B']) await mkdir(join(tmp, d, side), { recursive: true });
    return new DatasetWriter(out, tmp);
  }

  /** Encodes and writes one pair as `<name>` on both sides; returns its record. */
  async writePair(name: string, source: string, a: RgbImage, b: RgbImage): Promise<DatasetFile> {
    const [pa, pb] = await Promise.all([encodePng(a), encodePng(b)]);
    await Promise.all([
      writeFile(join(this.tmp, 'pending', 'A', name), pa),
      writeFile(join(this.tmp, 'pending', 'B', name), pb),
    ]);
    const entry: DatasetFile = { name, source, a: sha256(pa), b: sha256(pb), bytes: [pa.length, pb.length] };
    this.pending.push(entry);
    return entry;
  }

  /**
   * Moves every pair to the split of its source, writes dataset.json (files sorted by name; counts, the
   * achieved split and each source's split filled in) and moves the dataset into place.
   */
  async finish(
    info: Omit<DatasetInfo, 'files' | 'format' | 'version' | 'achievedSplit'>,
    splitOf: Map<string, Split>,
  ): Promise<DatasetInfo> {
    const files: Record<Split, DatasetFile[]> = { train: [], test: [] };
    for (const f of this.pending) {
      const split = splitOf.get(f.source);
      if (!split) throw new Error(`no split for source ${f.source}`);
      for (const side of ['A', 'B'])
        await rename(join(this.tmp, 'pending', side, f.name), join(this.tmp, split, side, f.name));
      files[split].push(f);
    }
    await rm(join(this.tmp, 'pending'), { recursive: true });
    for (const s of SPLITS) files[s].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    const pairs = files.train.length + files.test.length;
    const { kind, size, seed, split, ...rest } = info;
    const full: DatasetInfo = {
      format: DATASET_FORMAT,
      version: 1,
      kind,
      size,
      seed,
      split,
      ...(pairs > 0 && { achievedSplit: Math.round((files.train.length / pairs) * 1e4) / 1e4 }),
      ...rest,
      counts: { ...info.counts, train: files.train.length, test: files.test.length },
      sources: info.sources.map((s) => ({ ...s, split: splitOf.get(s.name) ?? s.split })),
      files,
    };
    await writeFile(join(this.tmp, 'dataset.json'), `${JSON.stringify(full, null, 2)}\n`);
    await rm(this.out, { recursive: true, force: true });
    await mkdir(dirname(this.out), { recursive: true });
    await rename(this.tmp, this.out);
    return full;
  }

  async abort(): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true });
  }
}
