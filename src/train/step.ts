import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { fusedApply } from '../models/fused.js';
import { patchDiscriminator } from '../models/patchgan.js';
import { unetGenerator } from '../models/unet.js';
import { UserError } from '../util/log.js';
import { Adam } from './adam.js';
import { generatorDepth, type TrainConfig, trainingSide } from './config.js';
import { ganLoss, l1Loss } from './losses.js';

/** What the networks are built from. */
export type NetworkConfig = Pick<
  TrainConfig,
  'size' | 'crop' | 'netD' | 'norm' | 'ngf' | 'depth' | 'dropout' | 'residual' | 'residualBlur' | 'seed'
>;

export type ModelConfig = NetworkConfig &
  Pick<TrainConfig, 'ganMode' | 'lambdaL1' | 'lr' | 'beta1' | 'beta2' | 'microBatch'>;

/**
 * A run's two networks, freshly initialised. G takes --size images (what evaluation, samples,
 * translate and export feed it); with --crop it trains on smaller crops through the same weights
 * (fusedApply runs any side that 2^depth divides). D only ever sees training images, so it is built
 * at the training side; its weights do not depend on it.
 */
export function buildNetworks(c: NetworkConfig): { G: tfl.LayersModel; D: tfl.LayersModel } {
  const G = unetGenerator({
    size: c.size,
    norm: c.norm,
    seed: c.seed,
    ngf: c.ngf,
    depth: generatorDepth(c),
    dropout: c.dropout,
    residual: c.residual,
    residualBlur: c.residualBlur,
  });
  const D = patchDiscriminator({ size: trainingSide(c), kind: c.netD, norm: c.norm, seed: c.seed + 1 });
  return { G, D };
}

export interface TrainState {
  config: ModelConfig;
  G: tfl.LayersModel;
  D: tfl.LayersModel;
  optG: Adam;
  optD: Adam;
}

export interface StepLosses {
  /** BCE(D(fake, a), real): the generator's adversarial term (NaN in an L1-only step: D did not run). */
  gGan: number;
  /** L1(fake, b), unweighted. */
  gL1: number;
  /** (BCE(D(b, a), real) + BCE(D(fake, a), fake)) / 2 (NaN in an L1-only step). */
  d: number;
}

const trainableVariables = (m: tfl.LayersModel) => m.trainableWeights.map((w) => w.read() as tf.Variable);

export function createTrainState(
  config: ModelConfig,
  models?: { G: tfl.LayersModel; D: tfl.LayersModel },
): TrainState {
  const { G, D } = models ?? buildNetworks(config);
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
 * Thrown before an update whose loss or gradients are not finite: Adam would spread a NaN/Inf into
 * every weight, and the next checkpoint would save them. The weights of the network being updated
 * are untouched when it is thrown.
 */
export class NonFiniteError extends UserError {
  override name = 'NonFiniteError';
}

/**
 * Throws NonFiniteError when the loss or any gradient holds a NaN or Inf. One reduction per gradient
 * (a sum is non-finite when any term is): a pass over the weights, small beside the step's convolutions.
 */
function checkFinite(what: string, value: tf.Scalar, grads: tf.NamedTensorMap): void {
  const sums = tf.tidy(() => tf.stack([value, ...Object.values(grads).map((g) => tf.sum(g))]));
  const v = sums.dataSync();
  sums.dispose();
  if (!Number.isFinite(v[0]!)) {
    throw new NonFiniteError(`the ${what} loss is ${v[0]}: stopped before updating the weights`);
  }
  const bad = Object.keys(grads).filter((_, i) => !Number.isFinite(v[i + 1]!));
  if (bad.length) {
    throw new NonFiniteError(
      `the ${what} gradients of ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ` and ${bad.length - 3} more` : ''} are not finite: stopped before updating the weights`,
    );
  }
}

/** [start, count] of each micro-batch: the whole batch unless config.microBatch is smaller. */
function microBatches(s: TrainState, n: number): [number, number][] {
  const size = s.config.microBatch > 0 ? Math.min(s.config.microBatch, n) : n;
  const out: [number, number][] = [];
  for (let i = 0; i < n; i += size) out.push([i, Math.min(size, n - i)]);
  return out;
}

/**
 * Gradients of the batch-mean `loss` for `vars`, computed micro-batch by micro-batch and summed, each
 * micro-batch's mean loss weighted by its share of the batch. With per-sample normalisation (instance
 * norm; batch norm is refused in config) that is exactly the whole batch's gradient, while the
 * activations held for the backward pass never exceed one micro-batch's.
 */
export function accumulatedGrads(
  s: TrainState,
  vars: tf.Variable[],
  batch: tf.Tensor4D[],
  loss: (parts: tf.Tensor4D[], weight: number) => tf.Scalar,
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  const n = batch[0].shape[0];
  const chunks = microBatches(s, n);
  let value: tf.Scalar | undefined;
  let total: tf.NamedTensorMap | undefined;
  for (const [start, count] of chunks) {
    const weight = count / n;
    const parts =
      chunks.length === 1 ? batch : batch.map((t) => tf.slice(t, [start, 0, 0, 0], [count, -1, -1, -1]));
    const r = tf.variableGrads(() => tf.mul(loss(parts, weight), weight), vars);
    if (parts !== batch) tf.dispose(parts);
    if (!total || !value) {
      total = r.grads;
      value = r.value;
      continue;
    }
    for (const [name, g] of Object.entries(r.grads)) {
      const sum = tf.add(total[name], g);
      tf.dispose([total[name], g]);
      total[name] = sum;
    }
    const v = tf.add(value, r.value) as tf.Scalar;
    tf.dispose([value, r.value]);
    value = v;
  }
  return { value: value!, grads: total! };
}

/**
 * G update: loss = GAN(D(fake, a), real) + lambda * L1(fake, b), gradients taken for G's variables
 * only, so D's weights are untouched. The reference fed D (fake_b, real_b) here, i.e. the target as
 * the condition; pix2pix conditions D on the input, D(fake, a), as the D update does.
 * Without `adversarial` (the L1 warm-up) D does not run and the loss is lambda * L1 alone; the GAN
 * term is reported as NaN.
 * Returns `fake` (kept, the caller disposes it) and the two loss terms.
 */
export function generatorUpdate(s: TrainState, a: tf.Tensor4D, b: tf.Tensor4D, adversarial = true) {
  const fakes: tf.Tensor4D[] = [];
  const terms: tf.Tensor[] = [];
  const { value, grads } = accumulatedGrads(s, s.optG.variables, [a, b], ([ai, bi], weight) => {
    // Neither the data batch's gradient nor D's weight gradients are used here: not computed.
    const f = fusedApply(s.G, [ai], true, { inputs: false }) as tf.Tensor4D;
    const l1 = l1Loss(f, bi);
    fakes.push(tf.keep(f));
    if (!adversarial) {
      terms.push(tf.keep(tf.mul(tf.stack([tf.scalar(Number.NaN), l1]), weight)));
      return tf.mul(l1, s.config.lambdaL1);
    }
    const gan = ganLoss(fusedApply(s.D, [f, ai], true, { weights: false }), true, s.config.ganMode);
    terms.push(tf.keep(tf.mul(tf.stack([gan, l1]), weight)));
    return tf.add(gan, tf.mul(l1, s.config.lambdaL1));
  });
  try {
    checkFinite('generator', value, grads);
  } catch (e) {
    tf.dispose([...Object.values(grads), ...fakes, ...terms]);
    throw e;
  } finally {
    value.dispose();
  }
  s.optG.apply(grads);
  const fake = fakes.length === 1 ? fakes[0] : (tf.concat(fakes) as tf.Tensor4D);
  const parts = tf.addN(terms);
  tf.dispose([...terms, ...(fakes.length === 1 ? [] : fakes)]);
  return { fake, parts };
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
  const { value, grads } = accumulatedGrads(s, s.optD.variables, [a, b, fake], ([ai, bi, fi]) =>
    discriminatorLoss(s, ai, bi, fi),
  );
  try {
    checkFinite('discriminator', value, grads);
  } catch (e) {
    tf.dispose([value, ...Object.values(grads)]);
    throw e;
  }
  s.optD.apply(grads);
  return value;
}

/**
 * One pix2pix step on a batch: G update, then D update on the same fake. Leaves no tensor behind.
 * With `adversarial` false (the L1 warm-up) it is the G update on lambda * L1 alone: D neither runs
 * nor learns, so the step costs G's forward and backward passes only.
 */
export function trainStep(s: TrainState, a: tf.Tensor4D, b: tf.Tensor4D, adversarial = true): StepLosses {
  const { fake, parts } = generatorUpdate(s, a, b, adversarial);
  if (!adversarial) {
    fake.dispose();
    const [gGan, gL1] = parts.dataSync();
    parts.dispose();
    return { gGan, gL1, d: Number.NaN };
  }
  let d: tf.Scalar;
  try {
    d = discriminatorUpdate(s, a, b, fake);
  } catch (e) {
    tf.dispose([fake, parts]);
    throw e;
  }
  fake.dispose();
  const all = tf.tidy(() => tf.concat([parts, tf.reshape(d, [1])]));
  const [gGan, gL1, dLoss] = all.dataSync();
  tf.dispose([parts, d, all]);
  return { gGan, gL1, d: dLoss };
}
