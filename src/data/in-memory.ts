// A dataset built from decoded images in memory, with no Node import: what the browser's train page calls
// on the files a user drops, in its Web Worker. The names, tile grid, flat-tile rule, seeded degradation
// (cut.ts) and split by source (split.ts) are the code `pix2pix prepare` runs, so the same pixels, options
// and seed give the same pairs on the same sides. Where prepare skips a bad file and goes on, this stops
// with one line naming the file: the user is looking at the page and can fix the drop.
import { UserError } from '../util/log.js';
import { type CutOptions, cutPair, cuts, isHidden, pairName, scaleToShortSide, stemOf } from './cut.js';
import { parseDegradationWith, resolveDegradation } from './degrade-core.js';
import { crop, type PixelCodec, type RgbImage } from './rgb.js';
import { splitSources } from './split.js';

/** Side-by-side A|B images, A/ and B/ folders matched by name, or photos (B the photo, A degraded). */
export type InMemoryKind = 'aligned' | 'folders' | 'photos';

/** A dropped file: its path and its pixels. */
export interface ImageFile {
  /**
   * The path as the page has it: a file name, or with folders (`A/x.png`, or `mydata/A/x.png` from
   * webkitRelativePath or a dropped folder); one folder that holds every file is left off, as prepare
   * reads the folder given to --from.
   */
  path: string;
  /**
   * The pixels, or a function decoding them when they are needed, so a worker holds one source image at
   * a time. What such a function throws (other than a UserError) is reported as notAnImage(path, error).
   */
  image: RgbImage | (() => Promise<RgbImage>);
}

export interface InMemoryOptions {
  kind: InMemoryKind;
  /** Side of the square pairs (default 256). */
  size?: number;
  /** Train fraction, split by source (default 0.8). */
  split?: number;
  seed?: number;
  /** The degradation grammar of `--degrade` (e.g. `gaussian:25`, `blur:1+jpeg:30`): photos need it or
   * `task`; for pairs it is an extra degradation of A. */
  degrade?: string;
  /** A task whose default degradation applies when `degrade` is not given (denoise, colorize, ...). */
  task?: string;
  /** Pairs only: BtoA takes the right half (or B/) as the input. */
  direction?: 'AtoB' | 'BtoA';
  /** The training batch: fewer training pairs than this is an error (default 1). */
  batch?: number;
  /** As prepare's options of the same names, with the same defaults. */
  fit?: 'tile' | 'cover';
  stride?: number;
  resize?: number;
  flat?: number;
  maxTiles?: number;
  /** JPEG degradations and resampling: canvasCodec (canvas.ts) in a browser, sharpCodec in Node. */
  codec: PixelCodec;
  /** Called after each source: how many are done, of how many, and the file. */
  onProgress?: (done: number, total: number, path: string) => void;
}

/** One pair; `name` is the file name prepare gives it (`<source>-<tile>.png`). */
export interface InMemoryPair {
  name: string;
  source: string;
  a: RgbImage;
  b: RgbImage;
}

export interface InMemoryDataset {
  /** Sorted by name, as prepare's dataset.json lists them. */
  train: InMemoryPair[];
  test: InMemoryPair[];
  /** Sources on each side: every pair of a source is on one side. */
  sources: { train: number; test: number };
  /** Tiles left out as nearly flat (prepare's --flat). */
  flatTiles: number;
  /** Files that gave no pairs and why: every tile nearly flat, or (folders) outside A/ and B/. */
  skipped: { file: string; reason: string }[];
}

/** The one-line error for a dropped file that does not decode as an image (for the page's decoder too). */
export function notAnImage(path: string, cause: unknown): UserError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new UserError(
    `${path} is not an image this browser can read (${why.split('\n')[0]}): remove it, or drop only images`,
  );
}

/** Whether the page should read a dropped file at all: hidden files and folders are left out, as prepare does. */
export const wantsFile = (path: string): boolean => !isHidden(path);

interface Resolved extends CutOptions {
  kind: InMemoryKind;
  split: number;
  resize: number;
  direction: 'AtoB' | 'BtoA';
  batch: number;
}

function resolve(opts: InMemoryOptions): Resolved {
  const int = (name: string, v: number, min: number): number => {
    if (!Number.isInteger(v) || v < min)
      throw new UserError(`${name} must be an integer >= ${min}, got ${v}`);
    return v;
  };
  if (!['aligned', 'folders', 'photos'].includes(opts.kind))
    throw new UserError(`kind must be aligned, folders or photos, got ${opts.kind}`);
  const size = int('size', opts.size ?? 256, 8);
  const split = opts.split ?? 0.8;
  if (!(split >= 0 && split <= 1)) throw new UserError(`split must be in [0, 1], got ${opts.split}`);
  const direction = opts.direction ?? 'AtoB';
  if (direction !== 'AtoB' && direction !== 'BtoA')
    throw new UserError(`direction must be AtoB or BtoA, got ${direction}`);
  const pairs = opts.kind !== 'photos';
  const fit = opts.fit ?? (pairs ? 'cover' : 'tile');
  if (fit !== 'tile' && fit !== 'cover') throw new UserError(`fit must be tile or cover, got ${fit}`);
  const spec = pairs ? opts.degrade : resolveDegradation(opts.task, opts.degrade);
  if (!spec && !pairs)
    throw new UserError('photos need a degradation to make the input side (e.g. gaussian:25)');
  const flat = opts.flat ?? 2;
  if (!(flat >= 0)) throw new UserError(`flat must be >= 0, got ${opts.flat}`);
  return {
    kind: opts.kind,
    size,
    split,
    seed: int('seed', opts.seed ?? 1, 0),
    fit,
    stride: int('stride', opts.stride ?? size, 1),
    resize: opts.resize ? int('resize', opts.resize, size) : 0,
    flat,
    maxTiles: int('maxTiles', opts.maxTiles ?? 0, 0),
    direction,
    batch: int('batch', opts.batch ?? 1, 1),
    steps: spec ? parseDegradationWith(spec, opts.codec) : [],
  };
}

/** A file with its path relative to the dataset's folder. */
interface Entry {
  file: ImageFile;
  rel: string;
}

/** Non-hidden files, with the one folder that holds them all left off (`mydata/A/x.png` -> `A/x.png`). */
function entries(files: readonly ImageFile[], kind: InMemoryKind): Entry[] {
  const parts = files.map((f) => f.path.split(/[\\/]/).filter((p) => p !== ''));
  const top = parts[0]?.[0];
  const common =
    parts.length > 0 &&
    parts.every((p) => p.length >= 2 && p[0] === top) &&
    !(kind === 'folders' && (top === 'A' || top === 'B'));
  return files
    .map((file, i) => ({ file, rel: parts[i]!.slice(common ? 1 : 0).join('/') }))
    .filter((e) => !isHidden(e.rel));
}

async function pixels(f: ImageFile): Promise<RgbImage> {
  if (typeof f.image !== 'function') return f.image;
  try {
    return await f.image();
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw notAnImage(f.path, e);
  }
}

/** A source to cut pairs from: `a` absent for photos (A is degraded B). */
interface Source {
  name: string;
  /** The file named in errors and in `skipped`. */
  path: string;
  load(): Promise<{ a?: RgbImage; b: RgbImage }>;
}

/** Sources keyed by name, one file per name (the names become the pairs' names). */
function byName(list: Entry[], rel: (e: Entry) => string): Map<string, Entry> {
  const m = new Map<string, Entry>();
  for (const e of list) {
    const name = stemOf(rel(e));
    const other = m.get(name);
    if (other)
      throw new UserError(
        `${e.file.path} and ${other.file.path} have the same name without their extension: rename one (pairs are named after their files)`,
      );
    m.set(name, e);
  }
  return m;
}

function folderSources(list: Entry[], r: Resolved, skipped: InMemoryDataset['skipped']): Source[] {
  const side = (e: Entry): string => e.rel.split('/')[0]!;
  for (const e of list)
    if (side(e) !== 'A' && side(e) !== 'B') skipped.push({ file: e.file.path, reason: 'not under A/ or B/' });
  const under = (s: string): Map<string, Entry> =>
    byName(
      list.filter((e) => side(e) === s),
      (e) => e.rel.slice(2),
    );
  let [as, bs] = [under('A'), under('B')];
  for (const [s, m] of [
    ['A', as],
    ['B', bs],
  ] as const) {
    if (m.size === 0)
      throw new UserError(
        `folders of pairs need images under A/ (inputs) and B/ (targets), matched by file name; there are none under ${s}/`,
      );
  }
  for (const [mine, theirs, other] of [
    [as, bs, 'B'],
    [bs, as, 'A'],
  ] as const) {
    for (const [name, e] of mine) {
      if (!theirs.has(name))
        throw new UserError(
          `${e.file.path} has no partner in ${other}/ (pairs are matched by file name without extension)`,
        );
    }
  }
  if (r.direction === 'BtoA') [as, bs] = [bs, as];
  return [...as].map(([name, ea]) => {
    const eb = bs.get(name)!;
    return {
      name,
      path: ea.file.path,
      load: async () => {
        const [a, b] = [await pixels(ea.file), await pixels(eb.file)];
        if (a.width !== b.width || a.height !== b.height)
          throw new UserError(
            `${ea.file.path} is ${a.width}x${a.height} but ${eb.file.path} is ${b.width}x${b.height}`,
          );
        return { a, b };
      },
    };
  });
}

function imageSources(list: Entry[], r: Resolved): Source[] {
  return [...byName(list, (e) => e.rel)].map(([name, e]) => ({
    name,
    path: e.file.path,
    load: async () => {
      const img = await pixels(e.file);
      if (r.kind === 'photos') return { b: img };
      const { width: w, height: h } = img;
      // prepare only needs an even width; here a mistaken drop of ordinary photos would be cut into
      // nonsense pairs without a word, so the pix2pix convention (two square halves) is required.
      if (w !== 2 * h)
        throw new UserError(
          `${e.file.path} is ${w}x${h}, not a side-by-side A|B image (twice as wide as high)`,
        );
      const [left, right] = [crop(img, 0, 0, h, h), crop(img, h, 0, h, h)];
      return r.direction === 'AtoB' ? { a: left, b: right } : { a: right, b: left };
    },
  }));
}

/**
 * Pairs from dropped images, as `pix2pix prepare` makes them from the same files: photos tiled (B the
 * tile, A degraded with the stream prepare uses), aligned and folder pairs scaled to `size` on the shorter
 * side and centre-cropped ('cover'), near-flat tiles left out, split 8:2 (or `split`) by source. Pixels
 * equal prepare's where the codec is sharp (sharpCodec). In a browser the codec is the canvas
 * (canvasCodec): every step but JPEG and resampling is the same code, so pairs that need neither are
 * bit-identical to Node's; Chromium's JPEG matched sharp's in the tests, its resampling (only for images
 * larger than `size` in 'cover' fit, or with `resize`) is close, not equal. Throws a one-line UserError
 * naming the file or the limit at the first problem.
 */
export async function pairsFromImages(
  files: readonly ImageFile[],
  opts: InMemoryOptions,
): Promise<InMemoryDataset> {
  const r = resolve(opts);
  const skipped: InMemoryDataset['skipped'] = [];
  const list = entries(files, r.kind);
  if (list.length === 0)
    throw new UserError('no images: drop photos, side-by-side A|B images, or A/ and B/ folders of pairs');
  const sources = (r.kind === 'folders' ? folderSources(list, r, skipped) : imageSources(list, r)).sort(
    (x, y) => (x.name < y.name ? -1 : 1),
  );
  const pairs: InMemoryPair[] = [];
  const counts: { name: string; pairs: number }[] = [];
  let flatTiles = 0;
  for (const [i, src] of sources.entries()) {
    let img = await src.load();
    // Checked on the image as dropped: `resize` is never below `size`, so it cannot make one too small.
    const { width, height } = img.b;
    if (Math.min(width, height) < r.size) {
      const what =
        r.kind === 'aligned'
          ? `${2 * width}x${height}: its halves are ${width}x${height}`
          : `${width}x${height}`;
      throw new UserError(`${src.path} is ${what}, smaller than the size ${r.size}`);
    }
    if (r.resize > 0) img = await scaleToShortSide(img, r.resize, opts.codec);
    if (r.fit === 'cover') img = await scaleToShortSide(img, r.size, opts.codec);
    let n = 0;
    for (const c of cuts(img.b.width, img.b.height, r, src.name)) {
      const pair = await cutPair(src.name, img, c, r);
      if (!pair) {
        flatTiles++;
        continue;
      }
      pairs.push({ name: pairName(src.name, c.t), source: src.name, ...pair });
      n++;
    }
    if (n > 0) counts.push({ name: src.name, pairs: n });
    else skipped.push({ file: src.path, reason: `every tile is nearly flat (luma std below ${r.flat})` });
    opts.onProgress?.(i + 1, sources.length, src.path);
  }
  if (counts.length === 0)
    throw new UserError(`no pairs: every tile of every image is nearly flat (luma std below ${r.flat})`);
  const sides = splitSources(counts, r.split, r.seed);
  const order = (x: InMemoryPair, y: InMemoryPair): number =>
    x.name < y.name ? -1 : x.name > y.name ? 1 : 0;
  const train = pairs.filter((p) => sides.get(p.source) === 'train').sort(order);
  const test = pairs.filter((p) => sides.get(p.source) === 'test').sort(order);
  if (train.length < r.batch)
    throw new UserError(
      `${train.length} training pair${train.length === 1 ? '' : 's'}, fewer than a batch of ${r.batch}: drop more images, or choose a smaller batch`,
    );
  const nTrain = counts.filter((s) => sides.get(s.name) === 'train').length;
  return { train, test, sources: { train: nTrain, test: counts.length - nTrain }, flatTiles, skipped };
}
