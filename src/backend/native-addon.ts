import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { packageRoot } from '../util/package-root.js';

/**
 * The C++ addon in native/ (oneDNN convolutions, OpenMP element-wise loops); see native/src/addon.cc.
 * Every function checks its arguments before it runs: a wrong type (an Int32Array for float data, a
 * string for a size) or a missing argument throws a TypeError, a bad value (a size that is negative or
 * not whole, an array shorter than its shape, a stride of 0, an Adam step < 1) a RangeError, each one
 * line naming the function and the argument. oneDNN's own failures throw an Error starting "oneDNN:".
 */
export interface NativeAddon {
  /**
   * params: [n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, padTop, padLeft, dh, dw, layoutMode]; sizes
   * >= 0, strides and dilations >= 1, pads >= 0, layoutMode 0-4 (see LayoutMode in native/src/conv.h).
   * weightsId > 0 (forward and backward-data): `w` is a constant filter under that id until
   * convForgetWeights(weightsId), so its reorder into the kernel's layout is made once and kept (see
   * conv_forward in native/src/conv.h).
   */
  convForward(
    params: number[],
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    weightsId?: number,
  ): void;
  convBackwardData(
    params: number[],
    dy: Float32Array,
    w: Float32Array,
    dx: Float32Array,
    weightsId?: number,
  ): void;
  /** Drops what was kept for a constant filter's id (it changed, or was freed). */
  convForgetWeights(weightsId: number): void;
  /** Bytes of reordered constant-filter copies kept. */
  convKeptWeightBytes(): number;
  convBackwardWeights(params: number[], x: Float32Array, dy: Float32Array, dw: Float32Array): void;
  convImpl(params: number[]): string;
  convRelease(): void;
  /** The layout choice made for each (pass, shape) so far: [key, mode] pairs (see conv_choices in conv.h). */
  convChoices(): [string, number][];
  /** Adds choices made by another process; malformed or known keys are skipped. Returns how many were taken. */
  setConvChoices(choices: unknown[]): number;
  /** How many (pass, shape) layout choices this process has timed itself. */
  convTunings(): number;
  binary(
    op: number,
    a: Float32Array,
    aShape: number[],
    b: Float32Array,
    bShape: number[],
    out: Float32Array | Uint8Array,
    outShape: number[],
  ): void;
  unary(op: number, alpha: number, x: Float32Array, out: Float32Array, n: number): void;
  select(cond: Uint8Array, a: Float32Array, b: Float32Array, out: Float32Array, n: number): void;
  fill(out: Float32Array, value: number, n: number): void;
  addN(xs: Float32Array[], out: Float32Array, n: number): void;
  reduceSum(x: Float32Array, outer: number, r: number, inner: number, out: Float32Array, mean: boolean): void;
  /** out row r = [xs[0] row r, xs[1] row r, ...], row r of xs[i] its widths[i] elements from r * widths[i]. */
  concatRows(xs: Float32Array[], widths: number[], rows: number, out: Float32Array): void;
  copyBox(
    src: Float32Array,
    srcShape: number[],
    srcBegin: number[],
    dst: Float32Array,
    dstShape: number[],
    dstBegin: number[],
    box: number[],
  ): void;
  adam(
    w: Float32Array,
    g: Float32Array,
    m: Float32Array,
    v: Float32Array,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    epsilon: number,
    /** The 1-based step of the bias correction: an integer >= 1. */
    t: number,
  ): void;
  /** Instance norm + LeakyReLU over [n, hw, c] (alpha null: no activation); writes h and rs [n, c]. */
  inormActForward(
    z: Float32Array,
    n: number,
    hw: number,
    c: number,
    epsilon: number,
    alpha: number | null,
    h: Float32Array,
    rs: Float32Array,
  ): void;
  inormActBackward(
    g: Float32Array,
    h: Float32Array,
    rs: Float32Array,
    n: number,
    hw: number,
    c: number,
    alpha: number | null,
    dz: Float32Array,
  ): void;
  /** dz = g * (h > 0 ? 1 : alpha): LeakyReLU's gradient from its output h (alpha > 0). */
  leakyBackward(g: Float32Array, h: Float32Array, n: number, alpha: number, dz: Float32Array): void;
  /**
   * madvise(MADV_HUGEPAGE) over the 2 MiB-aligned part of x's first n elements; whether it was taken.
   */
  adviseHugePages(x: Float32Array, n: number): boolean;
  /** FP32 FMA-loop GFLOP/s of `threads` OpenMP threads (default all). */
  peak(
    secondsEach: number,
    threads?: number,
  ): {
    avx2Gflops: number;
    avx512Gflops: number;
    hasAvx512: boolean;
    threads: number;
  };
  info(): { onednn: string; threads: number };
}

const ADDON_FILE = join('native', 'build', 'Release', 'pix2pix_native.node');

/** The built addon's path (PIX2PIX_NATIVE_ADDON, else native/build in the package root), or null. */
export function addonPath(): string | null {
  const env = process.env['PIX2PIX_NATIVE_ADDON'];
  if (env) return resolve(env);
  const p = join(packageRoot(), ADDON_FILE);
  return existsSync(p) ? p : null;
}

let cached: NativeAddon | null = null;

/** Loads the addon once; throws one line saying why it cannot be used. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const path = addonPath();
  if (path == null)
    throw new Error(`the native addon is not built (run 'npm run build:native'; needs libdnnl-dev)`);
  try {
    cached = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    throw new Error(`the native addon at ${path} failed to load: ${msg}`);
  }
  return cached;
}
