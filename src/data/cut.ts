// How a source image becomes pairs: its name, the scaling, the tile grid, the flat-tile rule and the
// seeded degradation. One module with no Node import, shared by `pix2pix prepare` (prepare.ts) and the
// browser's in-memory datasets (in-memory.ts), so both give the same pairs from the same pixels.
import { applyDegradation, type Degradation } from './degrade-core.js';
import { crop, luma, type PixelCodec, type RgbImage } from './rgb.js';
import { Rng } from './rng.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff'];

/** The extension of a path's last part, dot included, as node:path's extname gives it ('' for `.hidden`). */
export function extensionOf(path: string): string {
  const base = path.slice(Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\')) + 1);
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? '' : base.slice(dot);
}

/** Hidden files and folders (`.DS_Store`, `.git/`) are never sources. */
export function isHidden(rel: string): boolean {
  return rel.split(/[\\/]/).some((part) => part.startsWith('.'));
}

/**
 * A source's name: its path (relative to the dataset's folder) without extension, folders joined by `_`,
 * odd characters replaced. Pair names and the split derive from it, so it must not depend on the platform:
 * both `/` and `\` separate folders.
 */
export function stemOf(rel: string): string {
  return rel
    .slice(0, rel.length - extensionOf(rel).length)
    .split(/[\\/]/)
    .join('_')
    .replace(/[^A-Za-z0-9._-]/g, '_');
}

/** The pair's name, as prepare names its files: `<source>-<tile number>.png`. */
export const pairName = (source: string, tile: number): string => `${source}-${tile}.png`;

/** What cutting needs of the options (prepare's, after defaults). */
export interface CutOptions {
  size: number;
  seed: number;
  /** `tile`: a grid of size x size crops; `cover`: one centre crop per image. */
  fit: 'tile' | 'cover';
  /** Tile step in pixels. */
  stride: number;
  /** At most this many tiles per image, a seeded choice among the grid (0: all). */
  maxTiles: number;
  /** Tiles whose target luma standard deviation is below this (on 0..255) are left out; 0 keeps all. */
  flat: number;
  /** How A is made from B (photos), or an extra degradation of A (pairs). */
  steps: Degradation[];
}

/** Scale so the shorter side is `short` pixels, never enlarging. */
function scaledDims(w: number, h: number, short: number): [number, number] {
  const k = short / Math.min(w, h);
  if (k >= 1) return [w, h];
  return [Math.max(1, Math.round(w * k)), Math.max(1, Math.round(h * k))];
}

/** Both sides of a source scaled (never enlarged) so the shorter side is `short` pixels. */
export async function scaleToShortSide<T extends { a?: RgbImage; b: RgbImage }>(
  src: T,
  short: number,
  codec: Pick<PixelCodec, 'resize'>,
): Promise<T> {
  const [w, h] = scaledDims(src.b.width, src.b.height, short);
  if (w === src.b.width && h === src.b.height) return src;
  return { ...src, b: await codec.resize(src.b, w, h), ...(src.a && { a: await codec.resize(src.a, w, h) }) };
}

function tileOrigins(length: number, size: number, stride: number): number[] {
  const n = Math.floor((length - size) / stride) + 1;
  // The grid is centred, so the margins left over are split between both borders.
  const offset = Math.floor((length - ((n - 1) * stride + size)) / 2);
  return Array.from({ length: n }, (_, i) => offset + i * stride);
}

/** Where a cut is taken: the tile's number in the grid (row-major) and its top-left corner. */
export interface Cut {
  t: number;
  left: number;
  top: number;
}

/** Cut positions in a w x h source (after any scaling, and at least `size` on both sides). */
export function cuts(w: number, h: number, o: CutOptions, name: string): Cut[] {
  if (o.fit === 'cover')
    return [{ t: 0, left: Math.floor((w - o.size) / 2), top: Math.floor((h - o.size) / 2) }];
  const xs = tileOrigins(w, o.size, o.stride);
  const ys = tileOrigins(h, o.size, o.stride);
  let all = ys.flatMap((top, j) => xs.map((left, i) => ({ t: j * xs.length + i, left, top })));
  if (o.maxTiles > 0 && all.length > o.maxTiles) {
    all = Rng.derive(o.seed, 'tiles', name)
      .shuffle(all)
      .slice(0, o.maxTiles)
      .sort((p, q) => p.t - q.t);
  }
  return all;
}

function lumaStd(img: RgbImage): number {
  const y = luma(img);
  let s = 0;
  let s2 = 0;
  for (const v of y) {
    s += v;
    s2 += v * v;
  }
  const m = s / y.length;
  return Math.sqrt(Math.max(0, s2 / y.length - m * m));
}

/**
 * The pair cut at `c` from source `name`: B the crop of `b`, A the same crop of `a` (pairs) or of `b`
 * (photos), then degraded with a stream keyed by (seed, name, tile) so it never depends on the order
 * sources are handled in. Undefined when B's crop is nearly flat (see CutOptions.flat).
 */
export async function cutPair(
  name: string,
  src: { a?: RgbImage; b: RgbImage },
  c: Cut,
  o: CutOptions,
): Promise<{ a: RgbImage; b: RgbImage } | undefined> {
  const b = crop(src.b, c.left, c.top, o.size, o.size);
  if (o.flat > 0 && lumaStd(b) < o.flat) return undefined;
  const base = src.a ? crop(src.a, c.left, c.top, o.size, o.size) : b;
  return { a: await applyDegradation(o.steps, base, Rng.derive(o.seed, 'degrade', name, c.t)), b };
}
