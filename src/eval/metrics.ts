import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { toUint8 } from '../data/pixels.js';
import type { PairSource } from '../data/types.js';
import { generate } from '../models/fused.js';
import { UserError } from '../util/log.js';

/** Per-image scores, one entry per image of the batch, in batch order. */
export interface ImageMetrics {
  psnr: number[];
  ssim: number[];
  mae: number[];
}

/** SSIM constants of Wang et al. 2004 for 8-bit data: K1 0.01, K2 0.03, L 255. */
const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;
/** The Gaussian window: sigma 1.5, 11 taps (scikit-image truncates at 3.5 sigma: radius int(5.75) = 5). */
const SIGMA = 1.5;
const RADIUS = 5;
export const SSIM_WINDOW = 2 * RADIUS + 1;

function gaussianTaps(): Float32Array {
  const taps = Float32Array.from({ length: SSIM_WINDOW }, (_, i) =>
    Math.exp(-((i - RADIUS) ** 2) / (2 * SIGMA * SIGMA)),
  );
  const sum = taps.reduce((a, b) => a + b, 0);
  return taps.map((t) => t / sum);
}

/** 'valid' separable Gaussian filtering of single-channel maps [m, h, w, 1] -> [m, h-10, w-10, 1]. */
function gaussianValid(x: tf.Tensor4D): tf.Tensor4D {
  const taps = gaussianTaps();
  const rows = tf.tensor4d(taps, [SSIM_WINDOW, 1, 1, 1]);
  const cols = tf.tensor4d(taps, [1, SSIM_WINDOW, 1, 1]);
  return tf.conv2d(tf.conv2d(x, rows, 1, 'valid'), cols, 1, 'valid');
}

function checkPair(x: tf.Tensor4D, y: tf.Tensor4D): void {
  if (x.shape.join() !== y.shape.join()) {
    throw new Error(`metrics need images of one shape, got [${x.shape}] and [${y.shape}]`);
  }
  const [, h, w, c] = x.shape;
  if (c !== 3) throw new Error(`metrics need RGB images (3 channels), got ${c}`);
  if (h < SSIM_WINDOW || w < SSIM_WINDOW) {
    throw new Error(`SSIM needs images of at least ${SSIM_WINDOW}x${SSIM_WINDOW} pixels, got ${w}x${h}`);
  }
}

/**
 * PSNR, SSIM and MAE of each image pair, on [0, 255] values (uint8 RGB as int32 or float32), in tfjs ops
 * on the active backend, batched.
 * - PSNR = 10 log10(255^2 / MSE), the MSE over every pixel and channel; identical images give
 *   +Infinity (no cap: callers print it as "inf").
 * - SSIM = Wang et al. 2004 as scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
 *   use_sample_covariance=False, data_range=255)`: an 11x11 Gaussian window (sigma 1.5), K1 0.01,
 *   K2 0.03, 'valid' filtering (the map is (h-10) x (w-10)), the map's mean per channel, then the
 *   mean of the three channels.
 * - MAE = mean |x - y| on the 0..255 scale.
 */
export async function uint8Metrics(x: tf.Tensor4D, y: tf.Tensor4D): Promise<ImageMetrics> {
  checkPair(x, y);
  const [n, h, w] = x.shape;
  const [mse, mae, ssim] = tf.tidy(() => {
    // Centred on 127.5: the variances are differences of large float32 numbers, and centring makes
    // them 4x smaller (the luminance term adds the offset back).
    const xc = tf.sub(tf.cast(x, 'float32'), 127.5);
    const yc = tf.sub(tf.cast(y, 'float32'), 127.5);
    const diff = tf.sub(xc, yc);
    const mse = tf.mean(tf.square(diff), [1, 2, 3]);
    const mae = tf.mean(tf.abs(diff), [1, 2, 3]);
    // Channels into the batch: [n, h, w, 3] -> [3n, h, w, 1], one filtering pass for five maps.
    const planes = (t: tf.Tensor) => tf.reshape(tf.transpose(t, [0, 3, 1, 2]), [n * 3, h, w, 1]);
    const [px, py] = [planes(xc), planes(yc)];
    const stacked = tf.concat([px, py, tf.square(px), tf.square(py), tf.mul(px, py)]) as tf.Tensor4D;
    const [mx, my, mxx, myy, mxy] = tf.split(gaussianValid(stacked), 5);
    const vx = tf.sub(mxx!, tf.square(mx!));
    const vy = tf.sub(myy!, tf.square(my!));
    const vxy = tf.sub(mxy!, tf.mul(mx!, my!));
    const ux = tf.add(mx!, 127.5);
    const uy = tf.add(my!, 127.5);
    const num = tf.mul(tf.add(tf.mul(tf.mul(ux, uy), 2), C1), tf.add(tf.mul(vxy, 2), C2));
    const den = tf.mul(tf.add(tf.add(tf.square(ux), tf.square(uy)), C1), tf.add(tf.add(vx, vy), C2));
    const perPlane = tf.mean(tf.div(num, den), [1, 2, 3]); // [3n]
    const ssim = tf.mean(tf.reshape(perPlane, [n, 3]), 1);
    return [mse, mae, ssim];
  });
  // One asynchronous read of all three (no backend needs a synchronous one; a GPU waits once).
  const all = tf.concat([mse, ssim, mae]);
  tf.dispose([mse, mae, ssim]);
  const v = Array.from(await all.data().finally(() => all.dispose()));
  const n3 = v.length / 3;
  return {
    psnr: v.slice(0, n3).map((e) => (e === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / e))),
    ssim: v.slice(n3, 2 * n3),
    mae: v.slice(2 * n3),
  };
}

/**
 * Scores of a generator's output against the target, both NHWC in [-1, 1]: each is mapped to uint8
 * the way saved images are (toUint8: (x+1)/2*255 rounded, clipped), then uint8Metrics.
 */
export async function imageMetrics(fake: tf.Tensor4D, target: tf.Tensor4D): Promise<ImageMetrics> {
  const [x, y] = [toUint8(fake), toUint8(target)];
  try {
    return await uint8Metrics(x, y);
  } finally {
    tf.dispose([x, y]);
  }
}

/** The plain average (Infinity when any value is; NaN for an empty list). */
export function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

export interface EvalOptions {
  /**
   * Run the generator with dropout on, as the pix2pix paper does at test time (then the scores vary
   * from one evaluation to the next). Default off: deterministic.
   */
  dropout?: boolean;
}

/** Test pairs per forward pass: inference holds no gradients, so 8 pairs of 256 px are ~1 GB. */
export const EVAL_BATCH = 8;

/**
 * Mean PSNR, SSIM and MAE of `G`'s outputs against the targets over every pair of `source` (each
 * image scored on uint8 RGB, then averaged; see metrics.ts).
 */
export async function evaluateGenerator(
  G: tfl.LayersModel,
  source: PairSource,
  opts: EvalOptions = {},
): Promise<{ psnr: number; ssim: number; mae: number; count: number }> {
  const sum = { psnr: 0, ssim: 0, mae: 0 };
  let count = 0;
  for await (const { a, b } of source.batches(0)) {
    const fake = tf.tidy(() => generate(G, a, opts.dropout));
    const m = await imageMetrics(fake, b).finally(() => tf.dispose([a, b, fake]));
    for (let i = 0; i < m.psnr.length; i++) {
      sum.psnr += m.psnr[i]!;
      sum.ssim += m.ssim[i]!;
      sum.mae += m.mae[i]!;
    }
    count += m.psnr.length;
  }
  if (count === 0) throw new UserError('the test split has no pairs to evaluate');
  return { psnr: sum.psnr / count, ssim: sum.ssim / count, mae: sum.mae / count, count };
}
