import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../util/log.js';
import { convInit, type NormKind, normLayer, SeedSequence } from './layers.js';
import { ResidualOutput } from './residual.js';

export interface UnetOptions {
  /** Square input side: a power of two >= 32; by default the UNet has log2(size) levels (8 at 256). */
  size: number;
  inChannels?: number;
  outChannels?: number;
  norm?: NormKind;
  seed?: number;
  /** Channels of the first level (default 64, the reference's): levels have ngf, 2ngf, 4ngf, then 8ngf. */
  ngf?: number;
  /**
   * Down levels (default 0: log2(size), a 1x1 bottleneck). Fewer keeps the same outer levels and stops
   * earlier, so the bottleneck is size / 2^depth px; the innermost level has no norm either way.
   */
  depth?: number;
  /** Dropout 0.5 on the 8ngf-channel levels, as the reference (default true). */
  dropout?: boolean;
  /**
   * Predict a correction instead of the image: output = clip(input + r, -1, 1) (a ResidualOutput
   * layer) where r is the last transposed conv's output, without tanh (see unetGenerator).
   */
  residual?: boolean;
  /** With `residual`: sigma in px of the Gaussian blur of the input the correction is added to (0: none). */
  residualBlur?: number;
  /**
   * A level at the image's own side around the UNet (default false): a stride-1 3x3 conv block of ngf
   * channels before the first down level, skipped to a last up level that returns to ngf channels at
   * full size, then a stride-1 3x3 conv to the output. Without it the finest level is half the image's
   * side, and every pixel's detail comes back through one transposed conv.
   */
  fullRes?: boolean;
}

type Sym = tfl.SymbolicTensor;

/** Number of down levels, so that the bottleneck is 1x1: 8 at 256 (the reference), 6 at 64. */
export function unetDepth(size: number): number {
  const depth = Math.log2(size);
  if (!Number.isInteger(depth) || size < 32 || size > 2048) {
    throw new UserError(`image size ${size} does not fit the unet: use a power of two from 32 to 2048`);
  }
  return depth;
}

/**
 * The number of down levels for images of `side` px: `depth`, or log2(side) (a 1x1 bottleneck) when it
 * is 0. A UserError unless 1 <= depth <= log2(side): every level halves the image.
 */
export function resolveUnetDepth(side: number, depth = 0): number {
  const max = unetDepth(side);
  if (depth === 0) return max;
  if (!Number.isInteger(depth) || depth < 1 || depth > max) {
    throw new UserError(
      `--depth ${depth} does not fit ${side} px images: use 1 to ${max} (each level halves the image; 0 means ${max}, a 1x1 bottleneck)`,
    );
  }
  return depth;
}

/** Channels of down level `i` (1-based): ngf, 2ngf, 4ngf, then 8ngf for every inner level (64 .. 512). */
const levelChannels = (i: number, ngf: number) => Math.min(ngf * 2 ** (i - 1), 8 * ngf);

function apply(layer: tfl.layers.Layer | null, x: Sym): Sym {
  return layer ? (layer.apply(x) as Sym) : x;
}

/** Shared body of every block: (transposed) conv 4x4/2 without bias -> [norm] -> LeakyReLU -> [Dropout 0.5]. */
function convNormAct(
  x: Sym,
  name: string,
  conv: tfl.layers.Layer,
  norm: NormKind,
  alpha: number,
  dropout: boolean,
  seeds: SeedSequence,
): Sym {
  x = apply(conv, x);
  x = apply(normLayer(norm, `${name}_norm`, seeds), x);
  x = apply(tfl.layers.leakyReLU({ name: `${name}_act`, alpha }), x);
  return dropout ? apply(tfl.layers.dropout({ name: `${name}_drop`, rate: 0.5 }), x) : x;
}

const stride2 = (seeds: SeedSequence) =>
  ({ kernelSize: 4, strides: 2, padding: 'same', useBias: false, ...convInit(seeds) }) as const;

const stride1 = (seeds: SeedSequence, useBias: boolean) =>
  ({ kernelSize: 3, strides: 1, padding: 'same', useBias, ...convInit(seeds) }) as const;

/** Down block: Conv -> [norm] -> LeakyReLU(0.2) -> [Dropout]. */
function downBlock(
  x: Sym,
  name: string,
  filters: number,
  norm: NormKind,
  dropout: boolean,
  seeds: SeedSequence,
) {
  const conv = tfl.layers.conv2d({ name: `${name}_conv`, filters, ...stride2(seeds) });
  return convNormAct(x, name, conv, norm, 0.2, dropout, seeds);
}

/** Up block: ConvTranspose -> norm -> LeakyReLU(0.01) -> [Dropout] -> concat skip. */
function upBlock(
  x: Sym,
  skip: Sym,
  name: string,
  filters: number,
  norm: NormKind,
  dropout: boolean,
  seeds: SeedSequence,
) {
  const deconv = tfl.layers.conv2dTranspose({ name: `${name}_deconv`, filters, ...stride2(seeds) });
  // 0.01 is torch.nn.LeakyReLU()'s default slope, which the reference's UNetUp uses.
  x = convNormAct(x, name, deconv, norm, 0.01, dropout, seeds);
  return tfl.layers.concatenate({ name: `${name}_cat`, axis: -1 }).apply([x, skip]) as Sym;
}

/**
 * The reference's GeneratorUNet: the outermost and innermost down levels have no norm, every
 * 512-channel level has dropout (down4..down8, up1..up4 at 256), and a final transposed conv
 * with bias maps to the output channels through tanh. `ngf`, `depth`, `dropout`, `residual` and
 * `fullRes` vary it (their defaults give the reference, layer for layer and weight for weight).
 */
export function unetGenerator(opts: UnetOptions): tfl.LayersModel {
  const { size, inChannels = 3, outChannels = 3, norm = 'instance', seed = 1 } = opts;
  const { ngf = 64, dropout = true, residual = false, residualBlur = 0, fullRes = false } = opts;
  if (!Number.isInteger(ngf) || ngf < 1) throw new UserError(`--ngf must be an integer >= 1 (got ${ngf})`);
  const depth = resolveUnetDepth(size, opts.depth ?? 0);
  const seeds = new SeedSequence(seed);
  const input = tfl.input({ shape: [size, size, inChannels], name: 'input' });
  const widest = 8 * ngf;

  const skips: Sym[] = [];
  let x: Sym = input;
  // The full-resolution head: like down1 (no norm, LeakyReLU 0.2), at stride 1.
  const head = fullRes
    ? convNormAct(
        input,
        'full',
        tfl.layers.conv2d({ name: 'full_conv', filters: ngf, ...stride1(seeds, false) }),
        'none',
        0.2,
        false,
        seeds,
      )
    : null;
  if (head) x = head;
  for (let i = 1; i <= depth; i++) {
    const c = levelChannels(i, ngf);
    const outer = i === 1 || i === depth;
    x = downBlock(x, `down${i}`, c, outer ? 'none' : norm, dropout && c === widest, seeds);
    skips.push(x);
  }
  for (let i = depth - 1, u = 1; i >= 1; i--, u++) {
    const c = levelChannels(i, ngf);
    x = upBlock(x, skips[i - 1]!, `up${u}`, c, norm, dropout && c === widest, seeds);
  }
  if (head) {
    x = upBlock(x, head, `up${depth}`, ngf, norm, false, seeds);
    x = apply(tfl.layers.conv2d({ name: 'full_out', filters: outChannels, ...stride1(seeds, true) }), x);
  } else {
    x = apply(
      tfl.layers.conv2dTranspose({
        name: `up${depth}_deconv`,
        filters: outChannels,
        kernelSize: 4,
        strides: 2,
        padding: 'same',
        useBias: true,
        ...convInit(seeds),
      }),
      x,
    );
  }
  // Residual: no tanh on r. The clip already keeps the output in [-1, 1]; a tanh would also cap the
  // correction at +-1 (half the range: a white input pixel could never become black) and flatten its
  // gradient where r is large. With the N(0, 0.02) init r starts small (std ~0.2 at ngf 64).
  const output = residual
    ? (new ResidualOutput({ name: 'output', min: -1, max: 1, blur: residualBlur }).apply([input, x]) as Sym)
    : apply(tfl.layers.activation({ name: 'output', activation: 'tanh' }), x);
  return tfl.model({ inputs: input, outputs: output, name: 'unet' });
}
