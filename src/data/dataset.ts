import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError } from '../util/log.js';
import { encodePng, type RgbImage, sha256 } from './image.js';
import { Rng } from './rng.js';
import { DATASET_FORMAT, type DatasetFile, type DatasetInfo, type Split } from './types.js';

export const SPLITS: readonly Split[] = ['train', 'test'];

/**
 * Assigns whole sources to train or test, so tiles of one photo never land on both sides. The order is
 * a seeded shuffle of the sorted names, so it depends only on the set of sources and the seed. With two
 * or more sources and 0 < ratio < 1, each side gets at least one.
 */
export function splitSources(names: string[], ratio: number, seed: number): Map<string, Split> {
  const order = Rng.derive(seed, 'split').shuffle([...names].sort());
  let nTrain = Math.round(order.length * ratio);
  if (order.length >= 2 && ratio > 0 && ratio < 1) nTrain = Math.min(order.length - 1, Math.max(1, nTrain));
  return new Map(order.map((n, i) => [n, i < nTrain ? 'train' : 'test']));
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
  return info as DatasetInfo;
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
 * Writes a dataset into a sibling `<out>.partial` folder and moves it into place only when complete, so an
 * interrupted run never leaves something that looks like a dataset. An existing `out` is replaced only
 * when it is empty or itself a dataset (it has our dataset.json); anything else is refused.
 */
export class DatasetWriter {
  private readonly files: Record<Split, DatasetFile[]> = { train: [], test: [] };

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
      if (!ours)
        throw new UserError(
          `output folder ${out} is not empty and holds no dataset.json: refusing to overwrite it`,
        );
    }
    const tmp = join(dirname(out), `.${basename(out)}.partial`);
    await rm(tmp, { recursive: true, force: true });
    for (const s of SPLITS)
      for (const side of ['A', 'B']) await mkdir(join(tmp, s, side), { recursive: true });
    return new DatasetWriter(out, tmp);
  }

  async writePair(
    split: Split,
    name: string,
    source: string,
    a: RgbImage,
    b: RgbImage,
  ): Promise<DatasetFile> {
    const [pa, pb] = await Promise.all([encodePng(a), encodePng(b)]);
    await Promise.all([
      writeFile(join(this.tmp, split, 'A', name), pa),
      writeFile(join(this.tmp, split, 'B', name), pb),
    ]);
    const entry: DatasetFile = { name, source, a: sha256(pa), b: sha256(pb), bytes: [pa.length, pb.length] };
    this.files[split].push(entry);
    return entry;
  }

  /** Writes dataset.json (files sorted by name, counts filled in) and moves the dataset into place. */
  async finish(info: Omit<DatasetInfo, 'files' | 'format' | 'version'>): Promise<DatasetInfo> {
    for (const s of SPLITS) this.files[s].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    const full: DatasetInfo = {
      format: DATASET_FORMAT,
      version: 1,
      ...info,
      counts: { ...info.counts, train: this.files.train.length, test: this.files.test.length },
      files: this.files,
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
