import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import {
  type CutOptions,
  cutPair,
  cuts,
  extensionOf,
  IMAGE_EXTENSIONS,
  isHidden,
  pairName,
  scaleToShortSide,
  stemOf,
} from './cut.js';
import { DatasetWriter, splitSources } from './dataset.js';
import { parseDegradation, resolveDegradation } from './degrade.js';
import { crop, decodeRgb, type RgbImage, sha256, sharpCodec } from './image.js';
import type { DatasetInfo, DatasetKind, DatasetSource } from './types.js';

export { IMAGE_EXTENSIONS };

export interface PrepareOptions {
  /** Folder of photos (default), of side-by-side A|B images (`aligned`), or with A/ and B/ (`folders`). */
  from: string;
  out: string;
  pairs?: 'aligned' | 'folders';
  /** Pairs only: which side is the input. BtoA takes the right half (or B/) as A. */
  direction?: 'AtoB' | 'BtoA';
  /** Sets the default degradation for photos; only a label for pairs. */
  task?: string;
  /** How A is made from B for photos; for pairs, an extra degradation applied to A. */
  degrade?: string;
  size?: number;
  split?: number;
  seed?: number;
  /** `tile`: a grid of size x size crops (default for photos); `cover`: one centre crop per image. */
  fit?: 'tile' | 'cover';
  /** Tile step in pixels (default: size, i.e. no overlap). */
  stride?: number;
  /** Downscale each image so its shorter side is this many pixels before cutting (0: keep). */
  resize?: number;
  /** Images whose shorter side (after `resize`) is below this are skipped (default: size). */
  minSize?: number;
  /** Tiles whose target luma standard deviation is below this (on 0..255) are skipped; 0 keeps all. */
  flat?: number;
  /** At most this many tiles per image, a seeded choice among the grid (0: all). */
  maxTiles?: number;
}

export interface PrepareProgress {
  /** Sources handled so far (used or skipped), and how many there are. */
  done: number;
  total: number;
  file: string;
  /** Pairs written so far. */
  pairs: number;
}

/** The options after defaults, as recorded in dataset.json. */
interface Resolved extends CutOptions {
  kind: DatasetKind;
  split: number;
  resize: number;
  minSize: number;
  direction: 'AtoB' | 'BtoA';
}

function resolveOptions(opts: PrepareOptions): Resolved {
  const size = opts.size ?? 256;
  const int = (name: string, v: number, min: number): number => {
    if (!Number.isInteger(v) || v < min)
      throw new UserError(`--${name} must be an integer >= ${min}, got ${v}`);
    return v;
  };
  int('size', size, 8);
  const split = opts.split ?? 0.8;
  if (!(split >= 0 && split <= 1)) throw new UserError(`--split must be in [0, 1], got ${opts.split}`);
  const seed = int('seed', opts.seed ?? 1, 0);
  const fit = opts.fit ?? (opts.pairs ? 'cover' : 'tile');
  if (fit !== 'tile' && fit !== 'cover') throw new UserError(`--fit must be tile or cover, got ${fit}`);
  const direction = opts.direction ?? 'AtoB';
  if (direction !== 'AtoB' && direction !== 'BtoA')
    throw new UserError(`--direction must be AtoB or BtoA, got ${direction}`);
  if (opts.pairs !== undefined && opts.pairs !== 'aligned' && opts.pairs !== 'folders') {
    throw new UserError(`--pairs must be aligned or folders, got ${opts.pairs}`);
  }
  let spec: string | undefined;
  if (opts.pairs) {
    spec = opts.degrade;
  } else {
    spec = resolveDegradation(opts.task, opts.degrade);
    if (!spec)
      throw new UserError('photos need --task or --degrade to make the input side (e.g. --task denoise)');
  }
  const minSize = int('min-size', opts.minSize ?? size, size);
  const flat = opts.flat ?? 2;
  if (!(flat >= 0)) throw new UserError(`--flat must be >= 0, got ${opts.flat}`);
  return {
    kind: opts.pairs ?? 'photos',
    size,
    split,
    seed,
    fit,
    stride: int('stride', opts.stride ?? size, 1),
    resize: opts.resize ? int('resize', opts.resize, size) : 0,
    minSize,
    flat,
    maxTiles: int('max-tiles', opts.maxTiles ?? 0, 0),
    direction,
    steps: spec ? parseDegradation(spec) : [],
  };
}

/**
 * Files under `dir`, recursively, sorted by relative path; hidden files and folders are left out, and so
 * is `exclude` (the output folder, when it lies inside the input: a re-run must not eat its own tiles).
 */
async function listFiles(dir: string, exclude?: string): Promise<string[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new UserError(`${dir} does not exist`);
    if (code === 'ENOTDIR') throw new UserError(`${dir} is not a folder`);
    throw e;
  }
  // Symlinks too (git-annex and DVC trees are made of them): a link to a photo is read through it, and
  // a broken link or one to a folder fails to decode and is reported as skipped, never dropped silently.
  return entries
    .filter((e) => e.isFile() || e.isSymbolicLink())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .filter((rel) => !isHidden(rel))
    .filter((rel) => !exclude || !resolve(dir, rel).startsWith(resolve(exclude) + sep))
    .sort();
}

/** A source to cut pairs from: B is the target; A is the input for pairs, absent for photos. */
interface Source {
  name: string;
  file: string;
  load(): Promise<{ a?: RgbImage; b: RgbImage; sha256: string }>;
}

class Skip extends Error {}

async function decodeOrSkip(buf: Buffer): Promise<RgbImage> {
  try {
    return await decodeRgb(buf);
  } catch (e) {
    throw new Skip(`unreadable image (${(e as Error).message.split('\n')[0]})`);
  }
}

async function readOrSkip(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw new Skip(`cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

async function collectSources(
  opts: PrepareOptions,
  r: Resolved,
  skipped: { file: string; reason: string }[],
): Promise<Source[]> {
  const sources: Source[] = [];
  const isImage = (rel: string): boolean => IMAGE_EXTENSIONS.includes(extensionOf(rel).toLowerCase());
  const notImage = (rel: string): void => {
    skipped.push({ file: rel, reason: `not an image file (supported: ${IMAGE_EXTENSIONS.join(' ')})` });
  };
  if (r.kind === 'folders') {
    const dirA = join(opts.from, 'A');
    const dirB = join(opts.from, 'B');
    for (const d of [dirA, dirB]) {
      const s = await stat(d).catch(() => undefined);
      if (!s?.isDirectory())
        throw new UserError(
          `--pairs folders needs ${d}: put inputs in A/ and targets in B/, matched by file name`,
        );
    }
    const byStem = async (d: string, side: string): Promise<Map<string, string>> => {
      const m = new Map<string, string>();
      for (const rel of await listFiles(d)) {
        if (!isImage(rel)) {
          notImage(`${side}/${rel}`);
          continue;
        }
        const stem = stemOf(rel);
        if (m.has(stem))
          skipped.push({
            file: `${side}/${rel}`,
            reason: `same name as ${side}/${m.get(stem)} (one per name)`,
          });
        else m.set(stem, rel);
      }
      return m;
    };
    let [as, bs] = [await byStem(dirA, 'A'), await byStem(dirB, 'B')];
    let [sideA, sideB] = ['A', 'B'];
    if (r.direction === 'BtoA') [as, bs, sideA, sideB] = [bs, as, sideB, sideA];
    const dir = (side: string): string => (side === 'A' ? dirA : dirB);
    for (const [stem, relA] of as) {
      const relB = bs.get(stem);
      if (!relB) {
        skipped.push({
          file: `${sideA}/${relA}`,
          reason: `no partner in ${sideB}/ (pairs are matched by file name without extension)`,
        });
        continue;
      }
      sources.push({
        name: stem,
        file: `${sideA}/${relA}`,
        load: async () => {
          const [ba, bb] = [
            await readOrSkip(join(dir(sideA), relA)),
            await readOrSkip(join(dir(sideB), relB)),
          ];
          const a = await decodeOrSkip(ba).catch((e: Skip) =>
            Promise.reject(new Skip(`${sideA} side: ${e.message}`)),
          );
          const b = await decodeOrSkip(bb).catch((e: Skip) =>
            Promise.reject(new Skip(`${sideB}/${relB}: ${e.message}`)),
          );
          if (a.width !== b.width || a.height !== b.height) {
            throw new Skip(
              `${sideA} is ${a.width}x${a.height} but ${sideB}/${relB} is ${b.width}x${b.height}`,
            );
          }
          return { a, b, sha256: `${sha256(ba)}:${sha256(bb)}` };
        },
      });
    }
    for (const [stem, relB] of bs) {
      if (!as.has(stem))
        skipped.push({
          file: `${sideB}/${relB}`,
          reason: `no partner in ${sideA}/ (pairs are matched by file name without extension)`,
        });
    }
    return sources.sort((x, y) => (x.name < y.name ? -1 : 1));
  }
  const files = await listFiles(opts.from, opts.out);
  if (files.length === 0) throw new UserError(`${opts.from} has no files`);
  const seen = new Map<string, string>();
  for (const rel of files) {
    if (!isImage(rel)) {
      notImage(rel);
      continue;
    }
    const stem = stemOf(rel);
    const other = seen.get(stem);
    if (other) {
      skipped.push({
        file: rel,
        reason: `same name as ${other}: pair names come from file names, so one of them must be renamed`,
      });
      continue;
    }
    seen.set(stem, rel);
    const path = join(opts.from, rel);
    sources.push({
      name: stem,
      file: rel,
      load: async () => {
        const buf = await readOrSkip(path);
        const img = await decodeOrSkip(buf);
        if (r.kind === 'photos') return { b: img, sha256: sha256(buf) };
        if (img.width % 2 !== 0) throw new Skip(`width ${img.width} is odd: not a side-by-side A|B image`);
        const half = img.width / 2;
        const left = crop(img, 0, 0, half, img.height);
        const right = crop(img, half, 0, half, img.height);
        return r.direction === 'AtoB'
          ? { a: left, b: right, sha256: sha256(buf) }
          : { a: right, b: left, sha256: sha256(buf) };
      },
    });
  }
  return sources;
}

/**
 * Builds a dataset from photos, side-by-side A|B images or A/ and B/ folders (see PrepareOptions) into
 * `out`: train/{A,B}, test/{A,B} and dataset.json. Every file that cannot be used is reported through
 * `log.warn` with its reason and listed in dataset.json; a UserError is thrown when nothing usable
 * remains. The same inputs and options give byte-identical output.
 */
export async function prepareDataset(
  opts: PrepareOptions,
  log: Logger = silentLogger,
  onProgress?: (p: PrepareProgress) => void,
): Promise<DatasetInfo> {
  const r = resolveOptions(opts);
  const skipped: { file: string; reason: string }[] = [];
  const sources = await collectSources(opts, r, skipped);
  const skip = (file: string, reason: string): void => {
    skipped.push({ file, reason });
  };
  const writer = await DatasetWriter.create(opts.out);
  const used: DatasetSource[] = [];
  let pairs = 0;
  let flatTiles = 0;
  try {
    for (const [i, src] of sources.entries()) {
      try {
        let { sha256: hash, ...img } = await src.load();
        if (r.resize > 0) img = await scaleToShortSide(img, r.resize, sharpCodec);
        const { width, height } = img.b;
        if (Math.min(width, height) < r.minSize) {
          const what = r.minSize > r.size ? `--min-size ${r.minSize}` : `--size ${r.size}`;
          throw new Skip(
            `${width}x${height}${r.resize > 0 ? ' after --resize' : ''} is smaller than ${what}`,
          );
        }
        if (r.fit === 'cover') img = await scaleToShortSide(img, r.size, sharpCodec);
        let n = 0;
        for (const c of cuts(img.b.width, img.b.height, r, src.name)) {
          const pair = await cutPair(src.name, img, c, r);
          if (!pair) {
            flatTiles++;
            continue;
          }
          await writer.writePair(pairName(src.name, c.t), src.name, pair.a, pair.b);
          n++;
        }
        if (n === 0) throw new Skip(`every tile is nearly flat (luma std below --flat ${r.flat})`);
        pairs += n;
        used.push({ name: src.name, file: src.file, sha256: hash, split: 'train', pairs: n });
      } catch (e) {
        if (!(e instanceof Skip)) throw e;
        skip(src.file, e.message);
      }
      onProgress?.({ done: i + 1, total: sources.length, file: src.file, pairs });
    }
    skipped.sort((x, y) => (x.file < y.file ? -1 : x.file > y.file ? 1 : 0));
    for (const s of skipped) log.warn(`skipped ${s.file}: ${s.reason}`);
    if (used.length === 0) {
      const total = skipped.length;
      if (total === 0) throw new UserError(`${opts.from} has no images`);
      throw new UserError(
        `no usable images in ${opts.from}: all ${total} file${total === 1 ? ' was' : 's were'} skipped (reasons above)`,
      );
    }
    const splits = splitSources(used, r.split, r.seed);
    if (used.length === 1 && r.split > 0 && r.split < 1) {
      log.warn(
        `only one usable source, and a source is never split: all ${pairs} pairs go to ${splits.values().next().value}`,
      );
    } else if (r.split > 0 && r.split < 1) {
      const train = used.reduce((n, s) => n + (splits.get(s.name) === 'train' ? s.pairs : 0), 0);
      if (Math.abs(train / pairs - r.split) > 0.05) {
        log.warn(
          `--split ${r.split} asked, but whole sources give ${train} train + ${pairs - train} test pairs` +
            ` (${(train / pairs).toFixed(3)}): too few sources, or too unequal, for a closer split`,
        );
      }
    }
    const options: DatasetInfo['options'] = {
      from: opts.from,
      pairs: opts.pairs ?? null,
      direction: opts.pairs ? r.direction : null,
      task: opts.task ?? null,
      degrade: r.steps.length ? r.steps.map((s) => s.spec).join('+') : null,
      fit: r.fit,
      stride: r.stride,
      resize: r.resize,
      minSize: r.minSize,
      flat: r.flat,
      maxTiles: r.maxTiles,
    };
    return await writer.finish(
      {
        kind: r.kind,
        size: r.size,
        seed: r.seed,
        split: r.split,
        options,
        counts: { train: 0, test: 0, sources: used.length, skipped: skipped.length, flatTiles },
        sources: used,
        skipped,
      },
      splits,
    );
  } catch (e) {
    await writer.abort();
    throw e;
  }
}
