import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { patchDiscriminator } from '../models/patchgan.js';
import { unetGenerator } from '../models/unet.js';
import { Adam } from './adam.js';
import type { TrainConfig } from './config.js';
import { fusedApply } from './fused.js';
import { ganLoss, l1Loss } from './losses.js';

export type ModelConfig = Pick<
  TrainConfig,
  'size' | 'netD' | 'norm' | 'ganMode' | 'lambdaL1' | 'lr' | 'beta1' | 'beta2' | 'seed'
>;

export interface TrainState {
  config: ModelConfig;
  G: tfl.LayersModel;
  D: tfl.LayersModel;
  optG: Adam;
  optD: Adam;
}

export interface StepLosses {
  /** BCE(D(fake, a), real): the generator's adversarial term. */
  gGan: number;
  /** L1(fake, b), unweighted. */
  gL1: number;
  /** (BCE(D(b, a), real) + BCE(D(fake, a), fake)) / 2. */
  d: number;
}

const trainableVariables = (m: tfl.LayersModel) => m.trainableWeights.map((w) => w.read() as tf.Variable);

export function createTrainState(
  config: ModelConfig,
  models?: { G: tfl.LayersModel; D: tfl.LayersModel },
): TrainState {
  const G = models?.G ?? unetGenerator({ size: config.size, norm: config.norm, seed: config.seed });
  const D =
    models?.D ??
    patchDiscriminator({ size: config.size, kind: config.netD, norm: config.norm, seed: config.seed + 1 });
  const hp = { lr: config.lr, beta1: config.beta1, beta2: config.beta2 };
  return {
    config,
    G,
    D,
    optG: new Adam(trainableVariables(G), hp),
    optD: new Adam(trainableVariables(D), hp),
  };
}

export function disposeTrainState(s: TrainState): void {
  s.optG.dispose();
  s.optD.dispose();
  s.G.dispose();
  s.D.dispose();
}

/**
 * G update: loss = GAN(D(fake, a), real) + lambda * L1(fake, b), gradients taken for G's variables
 * only, so D's weights are untouched. The reference fed D (fake_b, real_b) here, i.e. the target as
 * the condition; pix2pix conditions D on the input, D(fake, a), as the D update does.
 * Returns `fake` (kept, the caller disposes it) and the two loss terms.
 */
export function generatorUpdate(s: TrainState, a: tf.Tensor4D, b: tf.Tensor4D) {
  let fake: tf.Tensor4D | undefined;
  let parts: tf.Tensor | undefined;
  const { value, grads } = tf.variableGrads(() => {
    const f = fusedApply(s.G, [a], true) as tf.Tensor4D;
    const gan = ganLoss(fusedApply(s.D, [f, a], true), true, s.config.ganMode);
    const l1 = l1Loss(f, b);
    fake = tf.keep(f);
    parts = tf.keep(tf.stack([gan, l1]));
    return tf.add(gan, tf.mul(l1, s.config.lambdaL1));
  }, s.optG.variables);
  value.dispose();
  s.optG.apply(grads);
  return { fake: fake!, parts: parts! };
}

/** The discriminator's loss on a real pair (b, a) and a generated one (fake, a). */
export function discriminatorLoss(
  s: TrainState,
  a: tf.Tensor4D,
  b: tf.Tensor4D,
  fake: tf.Tensor4D,
): tf.Scalar {
  return tf.tidy(() => {
    const mode = s.config.ganMode;
    const real = ganLoss(fusedApply(s.D, [b, a], true), true, mode);
    const gen = ganLoss(fusedApply(s.D, [fake, a], true), false, mode);
    return tf.div(tf.add(real, gen), 2);
  });
}

/**
 * D update. `fake` is a finished tensor from the G update, outside this gradient tape, so no
 * gradient can reach G (the reference's fake_b.detach()); gradients are taken for D's variables only.
 */
export function discriminatorUpdate(
  s: TrainState,
  a: tf.Tensor4D,
  b: tf.Tensor4D,
  fake: tf.Tensor4D,
): tf.Scalar {
  const { value, grads } = tf.variableGrads(() => discriminatorLoss(s, a, b, fake), s.optD.variables);
  s.optD.apply(grads);
  return value;
}

/** One pix2pix step on a batch: G update, then D update on the same fake. Leaves no tensor behind. */
export function trainStep(s: TrainState, a: tf.Tensor4D, b: tf.Tensor4D): StepLosses {
  const { fake, parts } = generatorUpdate(s, a, b);
  const d = discriminatorUpdate(s, a, b, fake);
  fake.dispose();
  const all = tf.tidy(() => tf.concat([parts, tf.reshape(d, [1])]));
  const [gGan, gL1, dLoss] = all.dataSync();
  tf.dispose([parts, d, all]);
  return { gGan, gL1, d: dLoss };
}
