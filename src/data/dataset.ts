import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../util/log.js';
import { encodePng, type RgbImage, sha256 } from './image.js';
import { DATASET_FORMAT, type DatasetFile, type DatasetInfo, type Split } from './types.js';

export { type SourcePairs, splitSources } from './split.js';

export const SPLITS: readonly Split[] = ['train', 'test'];

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
