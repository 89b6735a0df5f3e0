import * as tfl from '@tensorflow/tfjs-layers';
import { InstanceNorm } from './instance-norm.js';

export const NORMS = ['instance', 'batch', 'none'] as const;
export type NormKind = (typeof NORMS)[number];

/** Derives one initialiser seed per layer from the model seed, so a model is reproducible. */
export class SeedSequence {
  private next: number;
  constructor(seed: number) {
    this.next = seed * 1009 + 1;
  }
  take(): number {
    return this.next++;
  }
}

/** Conv weights N(0, 0.02) and zero biases, as the pix2pix paper initialises them. */
export function convInit(seeds: SeedSequence) {
  return {
    kernelInitializer: tfl.initializers.randomNormal({ mean: 0, stddev: 0.02, seed: seeds.take() }),
    biasInitializer: tfl.initializers.zeros(),
  };
}

/** The normalisation layer for `kind`, or null for 'none'. Batch norm matches torch's eps and momentum. */
export function normLayer(kind: NormKind, name: string, seeds: SeedSequence): tfl.layers.Layer | null {
  switch (kind) {
    case 'instance':
      return new InstanceNorm({ name });
    case 'batch':
      return tfl.layers.batchNormalization({
        name,
        epsilon: 1e-5,
        momentum: 0.9,
        gammaInitializer: tfl.initializers.randomNormal({ mean: 1, stddev: 0.02, seed: seeds.take() }),
      });
    case 'none':
      return null;
  }
}
