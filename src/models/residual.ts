import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../util/log.js';

export interface ResidualOutputArgs {
  /** Bounds of the output: the images' range, [-1, 1]. */
  min?: number;
  max?: number;
  /**
   * Sigma in pixels of a Gaussian blur applied to x before r is added (0: x itself). See ResidualOutput.
   */
  blur?: number;
  name?: string;
}

/** Radius of the blur's kernel: 3 sigma, whole pixels. */
export const blurRadius = (sigma: number) => Math.ceil(3 * sigma);

/** The normalised 1-D Gaussian of `sigma` px over [-radius, radius] (the blur is separable). */
export function gaussianTaps(sigma: number): Float32Array {
  const r = blurRadius(sigma);
  const taps = new Float32Array(2 * r + 1);
  let sum = 0;
  for (let i = -r; i <= r; i++) sum += taps[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
  return taps.map((t) => t / sum);
}

/**
 * `x` padded by `r` on both sides of `axis` (1: H, 2: W) with its mirror image, the edge not repeated
 * (tf.mirrorPad 'reflect', ONNX Pad 'reflect'). Built from single-row slices and one concat, which the
 * native backend runs in C++; tfjs's mirrorPad and reverse are JS loops (70 and 150 ms a step at
 * 8 x 128 x 128 px, half the step's time).
 */
function reflectPad(x: tf.Tensor4D, axis: 1 | 2, r: number): tf.Tensor4D {
  const n = x.shape[axis];
  if (r >= n) throw new UserError(`a blur of radius ${r} px needs images larger than ${r} px (got ${n})`);
  const line = (i: number) => {
    const begin = [0, 0, 0, 0];
    const size = [-1, -1, -1, -1];
    begin[axis] = i;
    size[axis] = 1;
    return tf.slice(x, begin, size);
  };
  // Rows r .. 1, the image, rows n-2 .. n-1-r: one concat of single-row slices (tf.reverse is JS too).
  const before = Array.from({ length: r }, (_, j) => line(r - j));
  const after = Array.from({ length: r }, (_, j) => line(n - 2 - j));
  return tf.concat([...before, x, ...after], axis);
}

/**
 * Gaussian blur of an NHWC batch, each channel on its own, with mirrored borders (a zero border would
 * darken the image's edges): a 1-D pass along W and one along H, each after a reflect pad by the radius.
 * Each pass is a full conv2d with a diagonal [.., c, c] kernel rather than a depthwise conv: 3x the
 * multiplies of 3 channels, but the native backend runs conv2d in oneDNN and depthwise in tfjs's JS
 * (the blur took more time than G's own convolutions that way).
 */
export function gaussianBlur(x: tf.Tensor4D, sigma: number): tf.Tensor4D {
  return tf.tidy(() => {
    const r = blurRadius(sigma);
    const c = x.shape[3];
    const taps = gaussianTaps(sigma);
    const k = 2 * r + 1;
    const diagonal = (shape: [number, number, number, number]) => {
      const w = new Float32Array(k * c * c);
      for (let i = 0; i < k; i++) for (let ch = 0; ch < c; ch++) w[(i * c + ch) * c + ch] = taps[i]!;
      return tf.tensor4d(w, shape);
    };
    const rows = tf.conv2d(reflectPad(x, 2, r), diagonal([1, k, c, c]), 1, 'valid');
    return tf.conv2d(reflectPad(rows, 1, r), diagonal([k, 1, c, c]), 1, 'valid');
  });
}

/**
 * The output of a residual generator (`--residual`): y = clip(x + r, min, max), with x the network's
 * input image and r what the UNet predicts (the correction: for denoising, minus the noise). Inputs
 * are [x, r] in that order, of equal shape; min/max default to -1/1. In ONNX: Add(x, r) -> Clip(min, max).
 * The gradient is clip's own (dy where min <= x + r <= max, else 0), as tf.clipByValue and ONNX Clip.
 *
 * With `blur` (--residual-blur), y = clip(blur(x) + r): the UNet, whose finest level is half the
 * image's side, then corrects a smooth image (restoring edges, removing the noise the blur left)
 * instead of having to reproduce every pixel's noise to subtract it. In ONNX: Pad(reflect) and two
 * depthwise Convs before the Add.
 *
 * tfjs-layers has no clip layer; this one is registered for serialisation, so a saved residual
 * generator reloads in Node and in the browser like any other.
 */
export class ResidualOutput extends tfl.layers.Layer {
  static className = 'ResidualOutput';
  readonly min: number;
  readonly max: number;
  readonly blur: number;

  constructor(args: ResidualOutputArgs = {}) {
    super({ name: args.name });
    this.min = args.min ?? -1;
    this.max = args.max ?? 1;
    this.blur = args.blur ?? 0;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2) {
      throw new Error('ResidualOutput takes two inputs: the image and the residual');
    }
    return tf.tidy(() => {
      const x = inputs[0] as tf.Tensor4D;
      const base = this.blur > 0 ? gaussianBlur(x, this.blur) : x;
      return tf.clipByValue(tf.add(base, inputs[1]!), this.min, this.max);
    });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return (inputShape as tfl.Shape[])[0]!;
  }

  override getConfig(): tf.serialization.ConfigDict {
    // blur only where set, so a plain residual generator saves exactly what it did before.
    return {
      ...super.getConfig(),
      min: this.min,
      max: this.max,
      ...(this.blur > 0 ? { blur: this.blur } : {}),
    };
  }
}

tf.serialization.registerClass(ResidualOutput);
