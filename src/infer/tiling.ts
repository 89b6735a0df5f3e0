// Runs a trained generator on images of any size and aspect ratio: reflect-padded to the network's
// multiple, or cut into overlapping tiles blended with a raised-cosine window; never resized.
//
// How sizes other than the training size are run, and why:
// The saved generator records a fixed input shape [size, size, 3], but every one of its layers is
// convolutional: no weight depends on the spatial extent. So the same topology is recreated from its
// JSON with H and W left open (null) and the weights are copied in (`flexibleGenerator`). Its depth is
// the checkpoint's (the weights fix the number of levels); each level halves the image, so an input
// side must be a multiple of 2^depth for the skip connections to line up, and at the training size
// the innermost level is 1x1. Inputs are therefore reflect-padded to that multiple (centred) and the
// output cropped back. At the training size the rebuilt model computes exactly what the saved one does.
//
// Instance norm normalises each channel over the whole extent it is given. At the training size the
// innermost level is 1x1 and has no norm (a 1x1 instance norm would zero it); at a larger input that
// level is k x k, still without norm, and every normed level averages over a larger area of the same
// kind of picture: the fully convolutional use the pix2pix reference makes of its UNet at test time.
// The further an input is from the training size, the more those statistics and the share of the image
// the receptive field sees drift from what training saw (and the memory grows with the area), so an
// image larger than `tile` (default 2x the training size) on a side is cut along that side into tiles
// of `tile` px overlapping by at least `overlap` (default tile/4). Each tile's output is weighted by a
// separable window that ramps from 0 to 1 as a raised cosine over `overlap` px centred in the overlap
// with its neighbour (and is 1 at the image border); the neighbours' ramps are complementary, so the
// weights sum to 1 everywhere and the output is the weighted sum normalised by the summed weights. The
// tiles' own outermost pixels (zero-padded by the convolutions, and normalised with statistics of a
// different crop) get weight 0, and the change from one tile's statistics to the next is spread over
// the ramp instead of showing as a step. Translating whole images up to `tile` keeps one tile's
// statistics for the whole picture.
// Measured with a 64 px denoiser (gaussian:25, 15 epochs, 27.1 dB on its test split) on 16 real 256 px
// test photos: noisy 20.6 dB; tiles of 64 px (the training size) blended 27.7; the default 128 px tiles
// 27.4; and on 8 of them, the whole 256 px image at once 27.9 against 28.6 for 64 px tiles and 28.0 for
// 64 px tiles without overlap. Sane at 4x the training size, and best at the training size: pass
// `tile: size` (`--tile`) where the last 0.3 dB matters.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { newImage, type RgbImage } from '../data/rgb.js';
import { generate } from '../models/fused.js';
import '../models/instance-norm.js';
import { UserError } from '../util/log.js';
// Nothing here imports Node: the try-it page bundles this module and runs the same code in the browser.

/** A generator that takes any H x W that is a multiple of `multiple`. */
export interface FlexibleGenerator {
  model: tfl.LayersModel;
  /** The side it was trained at (its saved input was size x size). */
  size: number;
  /** 2^depth: every input side must be a multiple of it. */
  multiple: number;
}

type Json = Record<string, unknown>;

/** Every `*_initializer` of a layer config set to zeros: the weights are overwritten anyway. */
function zeroInitializers(node: unknown): void {
  if (Array.isArray(node)) {
    for (const v of node) zeroInitializers(v);
  } else if (node && typeof node === 'object') {
    const o = node as Json;
    for (const key of Object.keys(o)) {
      if (key.endsWith('_initializer') && o[key]) o[key] = { class_name: 'Zeros', config: {} };
      else zeroInitializers(o[key]);
    }
  }
}

/**
 * The same network as `G` with its input's H and W left open, sharing no memory with `G` (the caller
 * may dispose `G` afterwards). `G` must be a square-input image-to-image LayersModel, as unetGenerator
 * builds and checkpoints save.
 */
export async function flexibleGenerator(G: tfl.LayersModel): Promise<FlexibleGenerator> {
  const shape = G.inputs[0]!.shape;
  const size = shape[1];
  if (typeof size !== 'number' || shape[2] !== size) {
    throw new UserError(`the generator's input is not a fixed square (${JSON.stringify(shape)})`);
  }
  // The smallest feature map at the training size: 1x1 in the reference UNet, so multiple = size.
  let smallest = size;
  for (const layer of G.layers) {
    const out = layer.outputShape;
    const shapes = (Array.isArray(out[0]) ? out : [out]) as tfl.Shape[];
    for (const s of shapes)
      if (s.length === 4 && typeof s[1] === 'number') smallest = Math.min(smallest, s[1]);
  }
  const multiple = size / smallest;
  if (!Number.isInteger(multiple) || !Number.isInteger(Math.log2(multiple))) {
    throw new UserError(`the generator's levels do not halve its ${size} px input evenly`);
  }
  const topology = G.toJSON(null, false) as Json;
  const layers = ((topology.config as Json).layers ?? []) as Json[];
  const inputs = layers.filter((l) => l.class_name === 'InputLayer');
  if (inputs.length !== 1) throw new UserError('the generator does not have exactly one input');
  const config = inputs[0]!.config as Json;
  const channels = (config.batch_input_shape as (number | null)[])[3];
  config.batch_input_shape = [null, null, null, channels];
  zeroInitializers(topology);
  const model = (await tfl.models.modelFromJSON({ modelTopology: topology } as never)) as tfl.LayersModel;
  model.setWeights(G.getWeights());
  return { model, size, multiple };
}

/** One tile's place along one axis of the image. */
export interface AxisTile {
  /** First image coordinate the tile covers (negative when it reaches into the reflected padding). */
  start: number;
  /** Its extent in the network: a multiple of the generator's multiple. */
  extent: number;
  /** Its blending weight for each image coordinate in [max(0, start), min(length, start + extent)). */
  weight: Float32Array;
}

/** Where tiles meet along one axis: the blend window [from, to) of each neighbouring pair. */
export interface AxisPlan {
  tiles: AxisTile[];
  /** Blend windows between neighbouring tiles (empty for one tile): [from, to) image coordinates. */
  seams: { from: number; to: number }[];
}

const roundUp = (n: number, m: number) => Math.ceil(n / m) * m;

/**
 * How one axis of `length` px is covered: one reflect-padded tile when it fits in `tile`, otherwise
 * tiles of `tile` px, evenly spaced, overlapping by at least `overlap`, with complementary raised-cosine
 * ramps of `overlap` px centred in each overlap (a hard cut at the centre when `overlap` is 0).
 */
export function planAxis(length: number, tile: number, multiple: number, overlap: number): AxisPlan {
  if (length <= tile) {
    const extent = roundUp(length, multiple);
    return {
      tiles: [
        { start: -Math.floor((extent - length) / 2), extent, weight: new Float32Array(length).fill(1) },
      ],
      seams: [],
    };
  }
  const n = Math.ceil((length - overlap) / (tile - overlap));
  const starts = Array.from({ length: n }, (_, i) => Math.round((i * (length - tile)) / (n - 1)));
  // Blend window between tile i and i+1, centred in their overlap [starts[i+1], starts[i] + tile).
  const seams = starts.slice(1).map((s, i) => {
    const centre = (s + starts[i]! + tile) / 2;
    return { from: centre - overlap / 2, to: centre + overlap / 2 };
  });
  // Weight of the tile after a seam at image coordinate x (pixel centre x + 0.5): 0 -> 1.
  const rampUp = (seam: { from: number; to: number }, x: number) => {
    const c = x + 0.5;
    if (overlap === 0) return c >= seam.from ? 1 : 0;
    const t = Math.min(1, Math.max(0, (c - seam.from) / overlap));
    return 0.5 - 0.5 * Math.cos(Math.PI * t);
  };
  const tiles = starts.map((start, i) => {
    const weight = new Float32Array(tile);
    for (let k = 0; k < tile; k++) {
      const x = start + k;
      const up = i > 0 ? rampUp(seams[i - 1]!, x) : 1;
      const down = i < n - 1 ? 1 - rampUp(seams[i]!, x) : 1;
      weight[k] = up * down;
    }
    return { start, extent: tile, weight };
  });
  return { tiles, seams };
}

/** Index of coordinate `i` in [0, n) after reflecting at the borders (without repeating the edge). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const j = ((i % period) + period) % period;
  return j < n ? j : period - j;
}

export interface TranslateImageOptions {
  /** Largest side translated whole; larger sides are tiled. Default 2x the training size. */
  tile?: number;
  /** Least overlap of neighbouring tiles, and the width of the blend ramp: 0 to tile / 3, default tile / 4. */
  overlap?: number;
  /** Called after each batch of tiles. */
  onTile?: (done: number, total: number) => void;
}

/** The tile and overlap a generator runs with, checked against its multiple. */
export function tileSettings(
  gen: Pick<FlexibleGenerator, 'size' | 'multiple'>,
  opts: Pick<TranslateImageOptions, 'tile' | 'overlap'> = {},
): { tile: number; overlap: number } {
  const tile = opts.tile ?? 2 * gen.size;
  if (!Number.isInteger(tile) || tile < gen.multiple || tile % gen.multiple !== 0) {
    throw new UserError(
      `--tile ${tile} does not fit this generator: use a multiple of ${gen.multiple} (2^depth of its UNet), e.g. ${2 * gen.size}`,
    );
  }
  const overlap = opts.overlap ?? Math.round(tile / 4);
  // Up to a third of the tile, the blend ramps of a tile's two sides never meet (planAxis).
  if (!Number.isInteger(overlap) || overlap < 0 || overlap > tile / 3) {
    throw new UserError(
      `tile overlap ${overlap} must be an integer from 0 to a third of the tile (${tile / 3})`,
    );
  }
  return { tile, overlap };
}

const f32 = Math.fround;

/** Pixels (of tiles of the same shape) per forward pass: 4 tiles of 512 px, 64 of 128 px. */
const PIXELS_PER_BATCH = 1 << 20;

/**
 * Translates one image with the generator (dropout off), at its own size: reflect-padded to the
 * network's multiple, tiled with blending above `tile` (see the top of this file). `G` is a flexible
 * generator (reuse one across images) or a saved LayersModel, which is then rebuilt for this call.
 */
export async function translateImage(
  G: FlexibleGenerator | tfl.LayersModel,
  img: RgbImage,
  opts: TranslateImageOptions = {},
): Promise<RgbImage> {
  const own = G instanceof tfl.LayersModel;
  const gen = own ? await flexibleGenerator(G) : G;
  try {
    const { tile, overlap } = tileSettings(gen, opts);
    const { width: W, height: H } = img;
    const cols = planAxis(W, tile, gen.multiple, overlap).tiles;
    const rows = planAxis(H, tile, gen.multiple, overlap).tiles;
    const tw = cols[0]!.extent;
    const th = rows[0]!.extent;
    const jobs = rows.flatMap((r) => cols.map((c) => ({ r, c })));
    const batch = Math.max(1, Math.min(jobs.length, Math.floor(PIXELS_PER_BATCH / (tw * th))));
    const acc = new Float32Array(W * H * 3);
    const wsum = new Float32Array(W * H);
    const src = img.data;
    let done = 0;
    for (let j0 = 0; j0 < jobs.length; j0 += batch) {
      const part = jobs.slice(j0, j0 + batch);
      const input = new Float32Array(part.length * th * tw * 3);
      part.forEach(({ r, c }, b) => {
        const xs = Int32Array.from({ length: tw }, (_, k) => reflect(c.start + k, W));
        for (let y = 0; y < th; y++) {
          const row = reflect(r.start + y, H) * W;
          let o = (b * th + y) * tw * 3;
          for (let x = 0; x < tw; x++) {
            const s = (row + xs[x]!) * 3;
            input[o++] = src[s]! / 127.5 - 1;
            input[o++] = src[s + 1]! / 127.5 - 1;
            input[o++] = src[s + 2]! / 127.5 - 1;
          }
        }
      });
      const out = tf.tidy(() => generate(gen.model, tf.tensor4d(input, [part.length, th, tw, 3])));
      const y = (await out.data()) as Float32Array;
      out.dispose();
      part.forEach(({ r, c }, b) => {
        const x0 = Math.max(0, c.start);
        const x1 = Math.min(W, c.start + c.extent);
        for (let iy = Math.max(0, r.start); iy < Math.min(H, r.start + r.extent); iy++) {
          const wy = r.weight[iy - Math.max(0, r.start)]!;
          if (wy === 0) continue;
          const base = (b * th + (iy - r.start)) * tw;
          for (let ix = x0; ix < x1; ix++) {
            const w = wy * c.weight[ix - x0]!;
            if (w === 0) continue;
            const s = (base + ix - c.start) * 3;
            const p = iy * W + ix;
            acc[3 * p] += w * y[s]!;
            acc[3 * p + 1] += w * y[s + 1]!;
            acc[3 * p + 2] += w * y[s + 2]!;
            wsum[p] += w;
          }
        }
      });
      done += part.length;
      opts.onTile?.(done, jobs.length);
    }
    const result = newImage(W, H);
    for (let p = 0; p < W * H; p++) {
      if (!(wsum[p]! > 0)) throw new Error(`tiling left pixel (${p % W}, ${Math.floor(p / W)}) uncovered`);
      for (let k = 0; k < 3; k++) {
        // [-1, 1] -> uint8 rounded as eval's toUint8 (and torchvision's save_image), in float32 steps
        // as toUint8 computes them, so that one whole tile gives exactly toUint8(generate(G, x)).
        const x = Math.fround(acc[3 * p + k]! / wsum[p]!);
        const v = Math.floor(f32(f32(f32(x + 1) * 127.5) + 0.5));
        result.data[3 * p + k] = Math.min(255, Math.max(0, v));
      }
    }
    return result;
  } finally {
    if (own) gen.model.dispose();
  }
}

/** Input | output side by side (same height). */
export function sideBySide(a: RgbImage, b: RgbImage): RgbImage {
  const out = newImage(a.width + b.width, Math.max(a.height, b.height));
  for (let y = 0; y < out.height; y++) {
    const o = y * out.width * 3;
    if (y < a.height) out.data.set(a.data.subarray(y * a.width * 3, (y + 1) * a.width * 3), o);
    if (y < b.height) out.data.set(b.data.subarray(y * b.width * 3, (y + 1) * b.width * 3), o + a.width * 3);
  }
  return out;
}
