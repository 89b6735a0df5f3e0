import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { throwBackendError } from '../backend/choices.js';
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
  | 'size'
  | 'crop'
  | 'netD'
  | 'ndf'
  | 'norm'
  | 'ngf'
  | 'depth'
  | 'dropout'
  | 'residual'
  | 'residualBlur'
  | 'fullRes'
  | 'seed'
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
    fullRes: c.fullRes,
  });
  const D = patchDiscriminator({
    size: trainingSide(c),
    kind: c.netD,
    norm: c.norm,
    ndf: c.ndf,
    seed: c.seed + 1,
  });
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

/** One network's computed update: its loss, and its gradients keyed by variable name. */
interface Update {
  what: 'generator' | 'discriminator';
  opt: Adam;
  value: tf.Scalar;
  grads: tf.NamedTensorMap;
}

function disposeUpdates(updates: Update[]): void {
  for (const u of updates) tf.dispose([u.value, ...Object.values(u.grads)]);
}

/** Throws NonFiniteError when `loss` or any of the `sums` (one per gradient, named `names`) is not finite. */
function checkFinite(what: string, loss: number, names: string[], sums: ArrayLike<number>): void {
  if (!Number.isFinite(loss)) {
    throw new NonFiniteError(`the ${what} loss is ${loss}: stopped before updating the weights`);
  }
  const bad = names.filter((_, i) => !Number.isFinite(sums[i]!));
  if (bad.length) {
    throw new NonFiniteError(
      `the ${what} gradients of ${bad.slice(0, 3).join(', ')}${bad.length > 3 ? ` and ${bad.length - 3} more` : ''} are not finite: stopped before updating the weights`,
    );
  }
}

/**
 * Reads, in one asynchronous transfer, `report` (the loss terms the caller logs), each update's loss
 * and one sum per gradient (a sum is non-finite when any term is: a pass over the weights, small
 * beside the step's convolutions), then applies the updates. A NaN or Inf anywhere, or a device error
 * (the GPU's out-of-memory is reported late), throws before any weight moves: Adam would spread it
 * into every weight and the next checkpoint would save them. One read a step, on every backend: a GPU
 * waits for its queue once, and no backend needs a synchronous read (WebGPU in Node has none).
 * Disposes `report` and every update's loss and gradients; returns `report`'s values.
 */
async function commit(updates: Update[], report: tf.Tensor): Promise<Float32Array> {
  const packed = tf.tidy(() =>
    tf.concat([
      tf.reshape(report, [-1]),
      ...updates.map((u) => tf.stack([u.value, ...Object.values(u.grads).map((g) => tf.sum(g))])),
    ]),
  );
  const n = report.size;
  report.dispose();
  let v: Float32Array;
  try {
    v = (await packed.data()) as Float32Array;
    throwBackendError();
    let at = n;
    for (const u of updates) {
      const names = Object.keys(u.grads);
      checkFinite(u.what, v[at]!, names, v.subarray(at + 1, at + 1 + names.length));
      at += 1 + names.length;
    }
  } catch (e) {
    disposeUpdates(updates);
    // A device error (out of memory, device lost) explains a failed read better than the read's own.
    throwBackendError();
    throw e;
  } finally {
    packed.dispose();
  }
  for (const u of updates) {
    u.value.dispose();
    u.opt.apply(u.grads);
  }
  return v.slice(0, n);
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
 * G's gradients: loss = GAN(D(fake, a), real) + lambda * L1(fake, b), taken for G's variables only,
 * so D's weights are untouched. The reference fed D (fake_b, real_b) here, i.e. the target as the
 * condition; pix2pix conditions D on the input, D(fake, a), as the D update does.
 * Without `adversarial` (the L1 warm-up) D does not run and the loss is lambda * L1 alone; the GAN
 * term is reported as NaN.
 * Returns the update (not applied), `fake` (the caller disposes it) and the two loss terms.
 */
function generatorGradients(s: TrainState, a: tf.Tensor4D, b: tf.Tensor4D, adversarial = true) {
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
  const fake = fakes.length === 1 ? fakes[0]! : (tf.concat(fakes) as tf.Tensor4D);
  const parts = tf.addN(terms);
  tf.dispose([...terms, ...(fakes.length === 1 ? [] : fakes)]);
  const update: Update = { what: 'generator', opt: s.optG, value, grads };
  return { update, fake, parts };
}

/** G update alone (generatorGradients, checked and applied). Returns `fake` and the loss terms' values. */
export async function generatorUpdate(s: TrainState, a: tf.Tensor4D, b: tf.Tensor4D, adversarial = true) {
  const { update, fake, parts } = generatorGradients(s, a, b, adversarial);
  try {
    return { fake, parts: await commit([update], parts) };
  } catch (e) {
    fake.dispose();
    throw e;
  }
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
 * D's gradients. `fake` is a finished tensor from G's pass, outside this gradient tape, so no
 * gradient can reach G (the reference's fake_b.detach()); gradients are taken for D's variables only.
 */
function discriminatorGradients(s: TrainState, a: tf.Tensor4D, b: tf.Tensor4D, fake: tf.Tensor4D): Update {
  const { value, grads } = accumulatedGrads(s, s.optD.variables, [a, b, fake], ([ai, bi, fi]) =>
    discriminatorLoss(s, ai, bi, fi),
  );
  return { what: 'discriminator', opt: s.optD, value, grads };
}

/** D update alone (its gradients, checked and applied); returns its loss. */
export async function discriminatorUpdate(
  s: TrainState,
  a: tf.Tensor4D,
  b: tf.Tensor4D,
  fake: tf.Tensor4D,
): Promise<number> {
  const u = discriminatorGradients(s, a, b, fake);
  return (await commit([u], u.value.clone()))[0]!;
}

/**
 * The dropout seed of a run's `step`-th step (1-based, counted over the whole run): the masks are a
 * function of the seed and the step alone, so a resumed run (CLI or browser) draws what the
 * uninterrupted one did.
 */
export const stepDropoutSeed = (seed: number, step: number) => (seed * 1_000_003 + step) % 2 ** 31;

/** A step whose gradients are computed and not yet applied (stepGradients, then applyStep). */
export interface PendingStep {
  updates: Update[];
  /** [gGan, gL1] or [gGan, gL1, d]. */
  report: tf.Tensor;
}

/**
 * The computing half of a step, synchronous (so every dropout mask is drawn inside the caller's
 * withDropoutSeed): G's gradients, then D's on the same fake. G's update has not been applied yet,
 * which changes nothing for D: its loss reads D's weights and the finished fake only. With
 * `adversarial` false (the L1 warm-up) only G's update: D neither runs nor learns.
 */
export function stepGradients(
  s: TrainState,
  a: tf.Tensor4D,
  b: tf.Tensor4D,
  adversarial = true,
): PendingStep {
  const g = generatorGradients(s, a, b, adversarial);
  if (!adversarial) {
    g.fake.dispose();
    return { updates: [g.update], report: g.parts };
  }
  let d: Update;
  try {
    d = discriminatorGradients(s, a, b, g.fake);
  } catch (e) {
    disposeUpdates([g.update]);
    throw e;
  } finally {
    g.fake.dispose();
  }
  const report = tf.tidy(() => tf.concat([g.parts, tf.reshape(d.value, [1])]));
  g.parts.dispose();
  return { updates: [g.update, d], report };
}

/** The finishing half: one read, the finiteness check, both updates (see commit). */
export async function applyStep(p: PendingStep): Promise<StepLosses> {
  const [gGan, gL1, d] = await commit(p.updates, p.report);
  return { gGan: gGan!, gL1: gL1!, d: d ?? Number.NaN };
}

/**
 * One pix2pix step on a batch: G update, then D update on the same fake. Leaves no tensor behind.
 * With `adversarial` false (the L1 warm-up) it is the G update on lambda * L1 alone: D neither runs
 * nor learns, so the step costs G's forward and backward passes only.
 */
export function trainStep(
  s: TrainState,
  a: tf.Tensor4D,
  b: tf.Tensor4D,
  adversarial = true,
): Promise<StepLosses> {
  return applyStep(stepGradients(s, a, b, adversarial));
}
