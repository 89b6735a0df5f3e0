import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../util/log.js';
import { convInit, type NormKind, normLayer, SeedSequence } from './layers.js';

export interface UnetOptions {
  /** Square input side: a power of two >= 32; the UNet has log2(size) levels (8 at 256). */
  size: number;
  inChannels?: number;
  outChannels?: number;
  norm?: NormKind;
  seed?: number;
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

/** Channels of down level `i` (1-based): 64, 128, 256, then 512 for every inner level. */
const levelChannels = (i: number) => Math.min(64 * 2 ** (i - 1), 512);

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
 * with bias maps to the output channels through tanh.
 */
export function unetGenerator(opts: UnetOptions): tfl.LayersModel {
  const { size, inChannels = 3, outChannels = 3, norm = 'instance', seed = 1 } = opts;
  const depth = unetDepth(size);
  const seeds = new SeedSequence(seed);
  const input = tfl.input({ shape: [size, size, inChannels], name: 'input' });

  const skips: Sym[] = [];
  let x: Sym = input;
  for (let i = 1; i <= depth; i++) {
    const c = levelChannels(i);
    const outer = i === 1 || i === depth;
    x = downBlock(x, `down${i}`, c, outer ? 'none' : norm, c === 512, seeds);
    skips.push(x);
  }
  for (let i = depth - 1, u = 1; i >= 1; i--, u++) {
    const c = levelChannels(i);
    x = upBlock(x, skips[i - 1], `up${u}`, c, norm, c === 512, seeds);
  }
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
  const output = apply(tfl.layers.activation({ name: 'output', activation: 'tanh' }), x);
  return tfl.model({ inputs: input, outputs: output, name: 'unet' });
}
