import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../util/log.js';
import { convInit, type NormKind, normLayer, SeedSequence } from './layers.js';

export const DISCRIMINATORS = ['patch16', 'patch70'] as const;
export type DiscriminatorKind = (typeof DISCRIMINATORS)[number];

export interface PatchOptions {
  size: number;
  kind?: DiscriminatorKind;
  /** Channels of the judged image and of the condition (each). */
  channels?: number;
  norm?: NormKind;
  /** Channels of the first stage (default 64, the reference's): stages have ndf, 2ndf, 4ndf, 8ndf. */
  ndf?: number;
  seed?: number;
}

type Sym = tfl.SymbolicTensor;

interface Stage {
  /** In units of ndf. */
  filters: number;
  kernel: number;
  stride: number;
  norm: boolean;
}

/**
 * patch16, the reference's: 3x3 stride-2 convs, so a 256 input gives a 16x16 map.
 * patch70, the paper's: 4x4 convs, 30x30 map at 256 with a 70x70 receptive field.
 */
const STAGES: Record<DiscriminatorKind, { stages: Stage[]; headKernel: number }> = {
  patch16: {
    stages: [
      { filters: 1, kernel: 3, stride: 2, norm: false },
      { filters: 2, kernel: 3, stride: 2, norm: true },
      { filters: 4, kernel: 3, stride: 2, norm: true },
      { filters: 8, kernel: 3, stride: 2, norm: true },
    ],
    headKernel: 3,
  },
  patch70: {
    stages: [
      { filters: 1, kernel: 4, stride: 2, norm: false },
      { filters: 2, kernel: 4, stride: 2, norm: true },
      { filters: 4, kernel: 4, stride: 2, norm: true },
      { filters: 8, kernel: 4, stride: 1, norm: true },
    ],
    headKernel: 4,
  },
};

/**
 * Conv with PyTorch's symmetric padding of 1. tfjs 'same' pads the extra row at the bottom only
 * (3x3 stride 2) or keeps the size (4x4 stride 1), so where they differ an explicit zero pad
 * and a 'valid' conv give the reference's exact alignment and output size.
 */
function torchConv(
  x: Sym,
  name: string,
  filters: number,
  kernel: number,
  stride: number,
  seeds: SeedSequence,
) {
  const symmetricSame = kernel % 2 === 1 ? stride === 1 : stride === 2;
  if (!symmetricSame) {
    x = tfl.layers.zeroPadding2d({ name: `${name}_pad`, padding: 1 }).apply(x) as Sym;
  }
  return tfl.layers
    .conv2d({
      name: `${name}_conv`,
      filters,
      kernelSize: kernel,
      strides: stride,
      padding: symmetricSame ? 'same' : 'valid',
      useBias: true,
      ...convInit(seeds),
    })
    .apply(x) as Sym;
}

/**
 * PatchGAN discriminator D(x, condition): the two images are concatenated on channels (judged image
 * first, as the reference's `torch.cat((a, b), 1)` does), and each output cell judges one patch.
 * It returns logits: the losses use sigmoid cross-entropy on them, which is the reference's
 * sigmoid + BCELoss in one numerically stable step.
 */
export function patchDiscriminator(opts: PatchOptions): tfl.LayersModel {
  const { size, kind = 'patch16', channels = 3, norm = 'instance', ndf = 64, seed = 2 } = opts;
  if (!Number.isInteger(ndf) || ndf < 1) throw new UserError(`--ndf must be an integer >= 1 (got ${ndf})`);
  const seeds = new SeedSequence(seed);
  const image = tfl.input({ shape: [size, size, channels], name: 'image' });
  const condition = tfl.input({ shape: [size, size, channels], name: 'condition' });
  let x = tfl.layers.concatenate({ name: 'pair', axis: -1 }).apply([image, condition]) as Sym;
  const { stages, headKernel } = STAGES[kind];
  stages.forEach((s, i) => {
    const name = `stage${i + 1}`;
    x = torchConv(x, name, s.filters * ndf, s.kernel, s.stride, seeds);
    const n = s.norm ? normLayer(norm, `${name}_norm`, seeds) : null;
    if (n) x = n.apply(x) as Sym;
    x = tfl.layers.leakyReLU({ name: `${name}_act`, alpha: 0.2 }).apply(x) as Sym;
  });
  const logits = torchConv(x, 'patch', 1, headKernel, 1, seeds);
  return tfl.model({ inputs: [image, condition], outputs: logits, name: kind });
}
