import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import {
  instanceNormAct,
  instanceNormActGrad,
  leakyReluGrad,
  nativeFusedAvailable,
} from '../backend/native-fused.js';
import type { ConstantFilterAttrs } from '../backend/native-kernel.js';
import { InstanceNorm } from './instance-norm.js';

/**
 * Execution of our LayersModels, in training and inference, with every [ZeroPadding2D] -> conv ->
 * [InstanceNorm] -> [LeakyReLU] -> [Dropout] chain run as one op with a hand-written gradient (on the
 * native backend the norm and activation are one pass each way: src/backend/native-fused.ts).
 *
 * Why: tfjs's autodiff keeps every intermediate of the forward pass and every intermediate gradient
 * until the whole backward pass ends (tape.ts never frees a dy). Per block that is the conv output, the
 * normalised map, the activation, the dropout mask and product, and as many gradients. A fused block
 * keeps only its output (which the next layer needs anyway), 1/sigma, and the dropout mask; its
 * backward temporaries are freed inside it. The model itself stays made of standard layers, so it
 * serialises and runs in a browser unchanged; this module only reads its weights and configs.
 */

interface ConvSpec {
  transpose: boolean;
  strides: [number, number];
  /** Explicit for a conv whose ZeroPadding2D input layer is folded into it. */
  padding: 'same' | 'valid' | tf.backend_util.ExplicitPadding;
  kernel: tf.Variable<tf.Rank.R4>;
  bias: tf.Variable | null;
}

interface BlockSpec {
  conv: ConvSpec;
  /** InstanceNorm epsilon, when the block normalises. */
  normEpsilon: number | null;
  /** LeakyReLU slope, when the block has one (must be > 0: the backward pass reads signs of the output). */
  alpha: number | null;
  dropRate: number;
  /** Name of the block's last layer, whose output the block produces. */
  last: string;
  /** The layer whose output the block reads: the conv's input, or a folded ZeroPadding2D's. */
  source: string;
}

type Plan = Map<string, BlockSpec>;

interface ModelPlan {
  plan: Plan;
  /** Layers run inside a block: fusedApply skips them. */
  fusedAway: Set<string>;
  /** How many of the layers fusedApply runs read each layer's output. */
  readers: Map<string, number>;
}

const plans = new WeakMap<tfl.LayersModel, ModelPlan>();

function onlyConsumer(layer: tfl.layers.Layer): tfl.layers.Layer | null {
  const out = layer.outboundNodes;
  return out.length === 1 ? out[0].outboundLayer : null;
}

function convSpec(layer: tfl.layers.Layer): ConvSpec | null {
  const cls = layer.getClassName();
  if (cls !== 'Conv2D' && cls !== 'Conv2DTranspose') return null;
  const c = layer.getConfig() as {
    strides: number | [number, number];
    padding: string;
    dataFormat: string;
    dilationRate?: number | [number, number];
    useBias: boolean;
    activation: string;
  };
  // Conv2DTranspose's config has no dilationRate (tfjs-layers supports none there): 1.
  const d = c.dilationRate ?? 1;
  const dilation = Array.isArray(d) ? d : [d, d];
  if (c.dataFormat !== 'channelsLast' || dilation.some((d) => d !== 1) || c.activation !== 'linear')
    return null;
  if (c.padding !== 'same' && c.padding !== 'valid') return null;
  const strides = (Array.isArray(c.strides) ? c.strides : [c.strides, c.strides]) as [number, number];
  const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
  return {
    transpose: cls === 'Conv2DTranspose',
    strides,
    padding: c.padding,
    kernel: weights[0] as tf.Variable<tf.Rank.R4>,
    bias: c.useBias ? weights[1] : null,
  };
}

/** A ZeroPadding2D layer's [[top, bottom], [left, right]], when its output feeds one layer only. */
function foldablePad(layer: tfl.layers.Layer): [[number, number], [number, number]] | null {
  if (layer.getClassName() !== 'ZeroPadding2D' || layer.outboundNodes.length !== 1) return null;
  const c = layer.getConfig() as { padding: [[number, number], [number, number]]; dataFormat?: string };
  return c.dataFormat === 'channelsFirst' ? null : c.padding;
}

/** Finds each fusable chain, keyed by its conv layer's name. */
function planFor(model: tfl.LayersModel): ModelPlan {
  const cached = plans.get(model);
  if (cached) return cached;
  const plan: Plan = new Map();
  const fusedAway = new Set<string>();
  for (const layer of model.layers) {
    const conv = convSpec(layer);
    if (!conv) continue;
    const inbound = layer.inboundNodes[0].inboundLayers[0]!;
    const block: BlockSpec = {
      conv,
      normEpsilon: null,
      alpha: null,
      dropRate: 0,
      last: layer.name,
      source: inbound.name,
    };
    const pad = foldablePad(inbound);
    if (pad && !conv.transpose && conv.padding === 'valid') {
      // D's zero padding (patchgan.ts's torchConv) as the conv's own explicit pad: no padded copy of
      // the activation, and no slice of its gradient.
      conv.padding = [[0, 0], pad[0], pad[1], [0, 0]];
      block.source = inbound.inboundNodes[0].inboundLayers[0]!.name;
      fusedAway.add(inbound.name);
    }
    let tail = layer;
    let next = onlyConsumer(tail);
    if (next instanceof InstanceNorm && !next.affine) {
      block.normEpsilon = next.epsilon;
      fusedAway.add(next.name);
      tail = next;
      next = onlyConsumer(tail);
    }
    if (next?.getClassName() === 'LeakyReLU' && (next.getConfig().alpha as number) > 0) {
      block.alpha = next.getConfig().alpha as number;
      fusedAway.add(next.name);
      tail = next;
      next = onlyConsumer(tail);
      if (next?.getClassName() === 'Dropout' && !next.getConfig().noiseShape) {
        block.dropRate = next.getConfig().rate as number;
        fusedAway.add(next.name);
        tail = next;
      }
    }
    block.last = tail.name;
    plan.set(layer.name, block);
  }
  // How many of the layers fusedApply runs read each value: a block reads its source, any other
  // layer its inbound layers.
  const readers = new Map<string, number>();
  for (const layer of model.layers) {
    if (fusedAway.has(layer.name)) continue;
    const block = plan.get(layer.name);
    const sources = block ? [block.source] : (layer.inboundNodes[0]?.inboundLayers.map((l) => l.name) ?? []);
    for (const name of sources) readers.set(name, (readers.get(name) ?? 0) + 1);
  }
  const result = { plan, fusedAway, readers };
  plans.set(model, result);
  return result;
}

/** A 4-D kernel call with typed attrs (tfjs exports no op for the conv gradients, nor one taking our attr). */
function runKernel(name: string, inputs: tf.NamedTensorMap, attrs: object): tf.Tensor4D {
  return tf.engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

function backpropInput(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  attrs: tf.Conv2DBackpropInputAttrs,
): tf.Tensor4D {
  return runKernel(tf.Conv2DBackpropInput, { dy, filter }, attrs);
}

function backpropFilter(x: tf.Tensor4D, dy: tf.Tensor4D, attrs: tf.Conv2DBackpropFilterAttrs): tf.Tensor4D {
  return runKernel(tf.Conv2DBackpropFilter, { x, dy }, attrs);
}

/**
 * The conv's output. `constant`: the filter will not change before this model's next update (inference),
 * so the native backend may keep its filter in the layout its kernel reads (ConstantFilterAttrs)
 * instead of reordering it on every call.
 */
function convForward(x: tf.Tensor4D, c: ConvSpec, constant: boolean): tf.Tensor4D {
  const w = c.kernel;
  const common = {
    strides: c.strides,
    pad: c.padding,
    dataFormat: 'NHWC',
    constantFilter: constant,
  } as const;
  if (!c.transpose) {
    const attrs: tf.Conv2DAttrs & ConstantFilterAttrs = { ...common, dilations: [1, 1] };
    return runKernel(tf.Conv2D, { x, filter: w }, attrs);
  }
  const [n, h, wd] = x.shape;
  const [kh, kw, filters] = w.shape;
  if (typeof c.padding !== 'string') throw new Error('fusedApply: explicit padding on a transposed conv');
  const len = (size: number, k: number, s: number) => (c.padding === 'same' ? size * s : (size - 1) * s + k);
  const inputShape: [number, number, number, number] = [
    n,
    len(h, kh, c.strides[0]),
    len(wd, kw, c.strides[1]),
    filters,
  ];
  // conv2dTranspose(x) is the data gradient of the conv from its output shape, x as that gradient.
  const attrs: tf.Conv2DBackpropInputAttrs & ConstantFilterAttrs = { ...common, inputShape };
  return runKernel(tf.Conv2DBackpropInput, { dy: x, filter: w }, attrs);
}

/**
 * dx and dW of the conv for the gradient g of its output. A gradient nobody reads is zeros instead
 * (customGrad wants one per input): dW of D's convs in the G update, dx of G's first conv.
 */
function convBackward(
  x: tf.Tensor4D,
  g: tf.Tensor4D,
  c: ConvSpec,
  grads: BlockGrads,
): [tf.Tensor4D, tf.Tensor4D] {
  const attrs = { strides: c.strides, pad: c.padding, dataFormat: 'NHWC' } as const;
  const w = c.kernel;
  const skipped = (t: tf.Tensor4D) => tf.zerosLike(t);
  if (c.transpose) {
    // A transposed conv is the data gradient of a conv: its own gradients swap the roles.
    const dx = grads.input ? tf.conv2d(g, w, c.strides, c.padding) : skipped(x);
    const dw = grads.weights ? backpropFilter(g, x, { ...attrs, filterShape: w.shape }) : skipped(w);
    return [dx, dw];
  }
  const dx = grads.input ? backpropInput(g, w, { ...attrs, inputShape: x.shape }) : skipped(x);
  const dw = grads.weights ? backpropFilter(x, g, { ...attrs, filterShape: w.shape }) : skipped(w);
  return [dx, dw];
}

/**
 * Where dropout masks come from: unseeded (tfjs's default) unless a step runs inside
 * `withDropoutSeed`, which makes the n-th mask of that step a function of (seed, n) alone, so a
 * resumed run draws the masks the uninterrupted one would have.
 */
let maskSeed: { seed: number; drawn: number } | undefined;

export function withDropoutSeed<T>(seed: number, f: () => T): T {
  const outer = maskSeed;
  maskSeed = { seed, drawn: 0 };
  try {
    return f();
  } finally {
    maskSeed = outer;
  }
}

/** Inverted-dropout mask (0 or 1/keep), as tf.dropout draws it. */
function dropoutMask(shape: number[], rate: number): tf.Tensor4D {
  const seed = maskSeed ? (maskSeed.seed + 7919 * maskSeed.drawn++) % 2 ** 31 : undefined;
  return tf.tidy(
    () =>
      tf.div(
        tf.floor(tf.add(tf.randomUniform(shape, 0, 1, 'float32', seed), 1 - rate)),
        1 - rate,
      ) as tf.Tensor4D,
  );
}

/**
 * One fused block. Forward: z = conv(x) [+ b]; y = instnorm(z); h = leaky(y); out = h * mask.
 * Backward from the saved h (pre-dropout; the output itself when there is no dropout), 1/sigma and
 * the mask: y is recovered from h through the leaky slope, so z, y and every gradient in between
 * live only inside this function.
 */
function convBlock(x: tf.Tensor4D, b: BlockSpec, training: boolean, grads: BlockGrads): tf.Tensor4D {
  const { conv } = b;
  const useMask = training && b.dropRate > 0;
  // Instance norm + LeakyReLU as one native pass each way (src/backend/native-fused.ts) where it runs.
  const native = nativeFusedAvailable();
  const inputs: tf.Tensor[] = conv.bias ? [x, conv.kernel, conv.bias] : [x, conv.kernel];
  const op = tf.customGrad((...args: unknown[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor4D;
    const [h, r, m] = tf.tidy((): tf.Tensor[] => {
      let z = convForward(input, conv, !training);
      // Under an instance norm the bias cancels ((z + b) - mean(z + b) = z - mean(z)): not added.
      if (conv.bias && b.normEpsilon === null) z = tf.add(z, conv.bias);
      let rs: tf.Tensor = tf.scalar(1);
      if (native && b.normEpsilon !== null) {
        [z, rs] = instanceNormAct(z, b.normEpsilon, b.alpha);
        return useMask ? [z, rs, dropoutMask(z.shape, b.dropRate)] : [z, rs];
      }
      if (b.normEpsilon !== null) {
        const { mean, variance } = tf.moments(z, [1, 2], true);
        rs = tf.rsqrt(tf.add(variance, b.normEpsilon));
        z = tf.mul(tf.sub(z, mean), rs);
      }
      const act = b.alpha !== null ? tf.leakyRelu(z, b.alpha) : z;
      if (!useMask) return [act, rs];
      return [act, rs, dropoutMask(z.shape, b.dropRate)];
    }) as [tf.Tensor4D, tf.Tensor, tf.Tensor4D?];
    const out = m ? tf.mul(h, m) : h;
    save(m ? [input, h, r, m] : [input, h, r]);
    return {
      value: out as tf.Tensor4D,
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const result = tf.tidy(() => {
          const [xs, hs, rs, ms] = saved as tf.Tensor4D[];
          let g = dy as tf.Tensor4D;
          if (ms) g = tf.mul(g, ms);
          if (native) {
            if (b.normEpsilon !== null) g = instanceNormActGrad(g, hs, rs, b.alpha);
            else if (b.alpha !== null) g = leakyReluGrad(g, hs, b.alpha);
          } else {
            let y = hs;
            if (b.alpha !== null) {
              const positive = tf.greater(hs, 0);
              g = tf.where(positive, g, tf.mul(g, b.alpha)) as tf.Tensor4D;
              y = tf.where(positive, hs, tf.div(hs, b.alpha)) as tf.Tensor4D;
            }
            if (b.normEpsilon !== null) {
              const meanG = tf.mean(g, [1, 2], true);
              const meanGY = tf.mean(tf.mul(g, y), [1, 2], true);
              g = tf.mul(tf.sub(tf.sub(g, meanG), tf.mul(y, meanGY)), rs);
            }
          }
          const [dx, dw] = convBackward(xs, g, conv, grads);
          // Under a norm, dL/db is exactly 0: the norm's input gradient sums to 0 over each map.
          const biasGrad = grads.weights && b.normEpsilon === null;
          const db = conv.bias ? (biasGrad ? tf.sum(g, [0, 1, 2]) : tf.zerosLike(conv.bias)) : null;
          return db ? [dx, dw, db] : [dx, dw];
        });
        // Nothing reads this block's saved tensors again (they are its own clones): freed now, not
        // when the whole backward pass ends as tfjs would, so activations are released block by
        // block while the gradients build up (peak RSS at batch 16: 3.0-3.2 -> 2.7-2.9 GB).
        tf.dispose(saved);
        return result;
      },
    };
  });
  return op(...inputs) as tf.Tensor4D;
}

/**
 * Which gradients of a fused model a backward pass needs; the others are not computed (zeros stand in).
 * `weights`: of the model's conv kernels and biases (false: D's in the G update, where only the
 * gradient through D to the fake counts). `inputs`: of the model's inputs (false: G's data batch).
 */
export interface FusedGrads {
  weights?: boolean;
  inputs?: boolean;
}

/** What one block's backward computes: its weights' gradients, its input's. */
interface BlockGrads {
  weights: boolean;
  input: boolean;
}

/**
 * Runs `model` on `inputs` (in the order of model.inputs) as model.apply(inputs, {training}) would,
 * with the fusable chains fused. Layers outside a chain (concat, the tanh, a residual generator's
 * ResidualOutput add + clip) run through their own apply, under tfjs autodiff. Nothing here reads the
 * model's input shape: `--crop` trains a generator built at --size on smaller crops.
 */
export function fusedApply(
  model: tfl.LayersModel,
  inputs: tf.Tensor[],
  training: boolean,
  grads: FusedGrads = {},
): tf.Tensor {
  const { plan, fusedAway, readers } = planFor(model);
  const inputNames = new Set(model.inputLayers.map((l) => l.name));
  const outputName = model.outputLayers[0].name;
  const values = new Map<string, tf.Tensor>();
  model.inputLayers.forEach((l, i) => {
    values.set(l.name, inputs[i]);
  });
  // In inference, each intermediate is freed once its last reader has run, as an inference runtime's
  // memory plan would: the native backend's pool then hands its array to the next output of its
  // size while it is still in cache (a whole UNet's activations are ~100 MB at 256 px, far more than
  // the cache). Training keeps them all: the tape holds them until the backward pass.
  const unread = training ? null : new Map(readers);
  for (const layer of model.layers) {
    if (values.has(layer.name) || fusedAway.has(layer.name)) continue;
    const block = plan.get(layer.name);
    const sources = block ? [block.source] : layer.inboundNodes[0].inboundLayers.map((l) => l.name);
    const inbound = sources.map((name) => {
      const v = values.get(name);
      if (!v) throw new Error(`fusedApply: ${name} has not run before ${layer.name}`);
      return v;
    });
    const release = () => {
      if (!unread) return;
      for (const name of sources) {
        const left = unread.get(name)! - 1;
        unread.set(name, left);
        if (left === 0 && !inputNames.has(name) && name !== outputName) {
          values.get(name)!.dispose();
          values.delete(name);
        }
      }
    };
    if (block) {
      // dx of a conv that reads a model input is wanted only when the caller says so.
      const readsInput = inputNames.has(block.source);
      values.set(
        block.last,
        convBlock(inbound[0] as tf.Tensor4D, block, training, {
          weights: grads.weights ?? true,
          input: !readsInput || (grads.inputs ?? true),
        }),
      );
    } else if (training && layer.getClassName() === 'Dropout' && !layer.getConfig().noiseShape) {
      // A dropout outside a chain: the same (seeded) masks as the fused ones, not tfjs's unseeded draw.
      const x = inbound[0] as tf.Tensor4D;
      const mask = dropoutMask(x.shape, layer.getConfig().rate as number);
      values.set(layer.name, tf.mul(x, mask));
      mask.dispose();
    } else {
      values.set(
        layer.name,
        layer.apply(inbound.length === 1 ? inbound[0] : inbound, { training }) as tf.Tensor,
      );
    }
    release();
  }
  const out = values.get(outputName);
  if (!out) throw new Error(`fusedApply: ${model.name} produced no output`);
  return out;
}

/**
 * G's output for images `x`: G.predict(x), or G.apply(x, {training: true}) with `dropout`, through
 * the fused blocks (one native instance norm + activation pass each on the native backend). What
 * translate, evaluate, compare and the bench run; without a gradient tape nothing is kept for a
 * backward pass.
 */
export function generate(G: tfl.LayersModel, x: tf.Tensor4D, dropout = false): tf.Tensor4D {
  return fusedApply(G, [x], dropout) as tf.Tensor4D;
}
