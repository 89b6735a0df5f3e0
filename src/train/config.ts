import { BACKENDS, type BackendChoice } from '../backend/index.js';
import { NORMS, type NormKind } from '../models/layers.js';
import { DISCRIMINATORS, type DiscriminatorKind } from '../models/patchgan.js';
import { unetDepth } from '../models/unet.js';
import { UserError } from '../util/log.js';

/** Everything a training run depends on; saved as the run's config.json. Defaults are the reference's. */
export interface TrainConfig {
  /** Dataset directory (train/{A,B}, test/{A,B}). */
  data: string;
  /** Run directory. */
  out: string;
  size: number;
  batchSize: number;
  /** Epochs at the initial learning rate. */
  epochs: number;
  /** Further epochs over which the learning rate decays linearly to 0 (pix2pix's n_epochs_decay). */
  epochsDecay: number;
  netD: DiscriminatorKind;
  norm: NormKind;
  ganMode: 'vanilla' | 'lsgan';
  lambdaL1: number;
  lr: number;
  beta1: number;
  beta2: number;
  direction: 'AtoB' | 'BtoA';
  /** Resize to 1.12x + random crop, and horizontal flip, on the training split. */
  augment: boolean;
  dropLast: boolean;
  seed: number;
  backend: BackendChoice;
  /**
   * Largest number of pairs whose activations are held at once: bigger batches are split and their
   * gradients summed, which is exact with per-sample norms (0 = never split).
   */
  microBatch: number;
  /** Stop each epoch after this many steps (0 = the whole split); for demos and smoke runs. */
  maxStepsPerEpoch: number;
}

export const DEFAULT_CONFIG: TrainConfig = {
  data: '',
  out: 'runs/default',
  size: 256,
  batchSize: 1,
  epochs: 200,
  epochsDecay: 0,
  netD: 'patch16',
  norm: 'instance',
  ganMode: 'vanilla',
  lambdaL1: 100,
  lr: 2e-4,
  beta1: 0.5,
  beta2: 0.999,
  direction: 'AtoB',
  augment: true,
  dropLast: false,
  seed: 1,
  backend: 'auto',
  maxStepsPerEpoch: 0,
  microBatch: 0,
};

function oneOf<T extends string>(key: string, value: T, allowed: readonly T[]): string[] {
  return allowed.includes(value) ? [] : [`${key} '${value}' is not one of ${allowed.join(', ')}`];
}

function positiveInt(key: string, value: number, min = 1): string[] {
  return Number.isInteger(value) && value >= min
    ? []
    : [`${key} must be an integer >= ${min} (got ${value})`];
}

/** Fills defaults and rejects every invalid field at once, in one UserError. */
export function validateConfig(partial: Partial<TrainConfig>): TrainConfig {
  const c: TrainConfig = { ...DEFAULT_CONFIG, ...partial };
  const errors = [
    ...positiveInt('batch size', c.batchSize),
    ...positiveInt('epochs', c.epochs),
    ...positiveInt('epochs-decay', c.epochsDecay, 0),
    ...positiveInt('max-steps', c.maxStepsPerEpoch, 0),
    ...positiveInt('seed', c.seed, 0),
    ...positiveInt('micro-batch', c.microBatch, 0),
    ...oneOf('netD', c.netD, DISCRIMINATORS),
    ...oneOf('norm', c.norm, NORMS),
    ...oneOf('gan mode', c.ganMode, ['vanilla', 'lsgan'] as const),
    ...oneOf('direction', c.direction, ['AtoB', 'BtoA'] as const),
    ...oneOf('backend', c.backend, BACKENDS),
  ];
  for (const [key, v] of [
    ['lr', c.lr],
    ['lambda', c.lambdaL1],
  ] as const) {
    if (!(Number.isFinite(v) && v >= 0)) errors.push(`${key} must be a finite number >= 0 (got ${v})`);
  }
  for (const [key, v] of [
    ['beta1', c.beta1],
    ['beta2', c.beta2],
  ] as const) {
    if (!(v >= 0 && v < 1)) errors.push(`${key} must be in [0, 1) (got ${v})`);
  }
  if (c.microBatch > 0 && c.norm === 'batch') {
    errors.push(
      'micro-batches need per-sample normalisation: use --norm instance or none, or --micro-batch 0',
    );
  }
  try {
    unetDepth(c.size);
  } catch (e) {
    errors.push((e as Error).message);
  }
  if (errors.length) throw new UserError(`invalid training options: ${errors.join('; ')}`);
  return c;
}

/** pix2pix's linear policy: constant for `epochs`, then linearly to 0 over `epochsDecay` (epoch is 1-based). */
export function learningRateAt(c: TrainConfig, epoch: number): number {
  return c.lr * (1 - Math.max(0, epoch - c.epochs) / (c.epochsDecay + 1));
}
