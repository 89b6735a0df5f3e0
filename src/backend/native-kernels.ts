import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from './native-addon.js';
import {
  alloc,
  allocBytes,
  type ConstantFilterAttrs,
  constantFilterId,
  type Fallback,
  f32,
  type KernelArgs,
  type NativeKernel,
  nativeKernel,
} from './native-kernel.js';

type TensorInfo = tf.TensorInfo;
type Kernel<I, A> = (args: KernelArgs<I, A>, fallback: Fallback) => TensorInfo | TensorInfo[];

/** Op codes of native/src/eltwise.h. */
const BINARY: Record<string, number> = {
  [tf.Add]: 0,
  [tf.Sub]: 1,
  [tf.Multiply]: 2,
  [tf.RealDiv]: 3,
  [tf.Maximum]: 4,
  [tf.Minimum]: 5,
  [tf.SquaredDifference]: 6,
  [tf.Pow]: 7,
  [tf.Greater]: 32,
  [tf.GreaterEqual]: 33,
  [tf.Less]: 34,
  [tf.LessEqual]: 35,
  [tf.Equal]: 36,
  [tf.NotEqual]: 37,
};
const UNARY: Record<string, number> = {
  [tf.Neg]: 0,
  [tf.Square]: 1,
  [tf.Sqrt]: 2,
  [tf.Rsqrt]: 3,
  [tf.Abs]: 4,
  [tf.Exp]: 5,
  [tf.Log]: 6,
  [tf.Log1p]: 7,
  [tf.Tanh]: 8,
  [tf.Sigmoid]: 9,
  [tf.Relu]: 10,
  [tf.LeakyRelu]: 11,
  [tf.Step]: 12,
  [tf.Sign]: 13,
  [tf.Reciprocal]: 14,
  [tf.Softplus]: 15,
  [tf.Elu]: 16,
  [tf.Relu6]: 17,
};
/** FusedConv2D's activations, as the unary kernel that applies each (linear: none). */
const FUSED_ACTIVATION: Record<string, string | null> = {
  linear: null,
  relu: tf.Relu,
  relu6: tf.Relu6,
  elu: tf.Elu,
  leakyrelu: tf.LeakyRelu,
  sigmoid: tf.Sigmoid,
};

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function out(
  backend: MathBackendCPU,
  shape: number[],
  values: Float32Array | Uint8Array,
  dtype: tf.DataType,
) {
  return backend.makeTensorInfo(shape, dtype, values);
}

/** Where oneDNN may choose layouts; 0 = per-layer choice in native/src/conv.cc. */
let layoutMode = 0;
export function setConvLayoutMode(mode: number): void {
  layoutMode = mode;
}

type Shape4 = [number, number, number, number];

/** tfjs's own description of the conv (NHWC): output size and pads as its cpu loops compute them. */
function convInfo(
  xShape: number[],
  filterShape: number[],
  attrs: Pick<tf.Conv2DAttrs, 'strides' | 'pad' | 'dimRoundingMode'>,
  dilations: tf.Conv2DAttrs['dilations'] = 1,
): tf.backend_util.Conv2DInfo {
  const { strides, pad, dimRoundingMode } = attrs;
  return tf.backend_util.computeConv2DInfo(
    xShape as Shape4,
    filterShape as Shape4,
    strides,
    dilations,
    pad,
    dimRoundingMode,
    false,
    'channelsLast',
  );
}

function convParams(info: tf.backend_util.Conv2DInfo): number[] {
  return [
    info.batchSize,
    info.inHeight,
    info.inWidth,
    info.inChannels,
    info.outHeight,
    info.outWidth,
    info.outChannels,
    info.filterHeight,
    info.filterWidth,
    info.strideHeight,
    info.strideWidth,
    info.padInfo.top,
    info.padInfo.left,
    info.dilationHeight,
    info.dilationWidth,
    layoutMode,
  ];
}

/**
 * Runs a oneDNN call; false where oneDNN has no implementation for the problem (some exotic
 * padding), so the kernel falls back to the cpu backend's loops instead of failing the model.
 */
function tryConv(call: () => void): boolean {
  try {
    call();
    return true;
  } catch (e) {
    if (/^oneDNN/.test((e as Error).message)) return false;
    throw e;
  }
}

type ConvAttrs = tf.Conv2DAttrs &
  Partial<Pick<tf.FusedConv2DAttrs, 'activation' | 'leakyreluAlpha'>> &
  ConstantFilterAttrs;

/** Conv2D, and FusedConv2D's bias and activation after it. */
const conv2d =
  (addon: NativeAddon): Kernel<tf.FusedConv2DInputs, ConvAttrs> =>
  (args, fallback) => {
    const { inputs, backend, attrs } = args;
    const { x, filter, bias, preluActivationWeights } = inputs;
    const xv = f32(backend, x);
    const wv = f32(backend, filter);
    const actKernel = FUSED_ACTIVATION[attrs.activation ?? 'linear'];
    const biasV = bias ? f32(backend, bias) : null;
    // A bias of other than [oc] elements is added by broadcasting after the conv.
    const biasBroadcast = !!bias && (size(bias.shape) !== filter.shape[3] || bias.shape.length > 1);
    if (
      !xv ||
      !wv ||
      (bias && !biasV) ||
      attrs.dataFormat === 'NCHW' ||
      preluActivationWeights ||
      actKernel === undefined ||
      x.shape.length !== 4
    ) {
      return fallback(args);
    }
    const info = convInfo(x.shape, filter.shape, attrs, attrs.dilations);
    const y = alloc(backend, size(info.outShape));
    const id = constantFilterId(backend, filter, attrs);
    if (!tryConv(() => addon.convForward(convParams(info), xv, wv, biasBroadcast ? null : biasV, y, id))) {
      return fallback(args);
    }
    if (biasV && biasBroadcast) {
      addon.binary(BINARY[tf.Add]!, y, info.outShape, biasV, bias!.shape, y, info.outShape);
    }
    if (actKernel) {
      const alpha = actKernel === tf.LeakyRelu ? (attrs.leakyreluAlpha ?? 0.2) : 0;
      addon.unary(UNARY[actKernel]!, alpha, y, y, y.length);
    }
    return out(backend, info.outShape, y, 'float32');
  };

const conv2dBackpropInput =
  (
    addon: NativeAddon,
  ): Kernel<tf.Conv2DBackpropInputInputs, tf.Conv2DBackpropInputAttrs & ConstantFilterAttrs> =>
  (args, fallback) => {
    const { inputs, backend, attrs } = args;
    const dyv = f32(backend, inputs.dy!);
    const wv = f32(backend, inputs.filter!);
    if (!dyv || !wv || attrs.dataFormat === 'NCHW') return fallback(args);
    const info = convInfo(attrs.inputShape, inputs.filter!.shape, attrs);
    const dx = alloc(backend, size(attrs.inputShape));
    const id = constantFilterId(backend, inputs.filter!, attrs);
    if (!tryConv(() => addon.convBackwardData(convParams(info), dyv, wv, dx, id))) return fallback(args);
    return out(backend, attrs.inputShape, dx, 'float32');
  };

const conv2dBackpropFilter =
  (addon: NativeAddon): Kernel<tf.Conv2DBackpropFilterInputs, tf.Conv2DBackpropFilterAttrs> =>
  (args, fallback) => {
    const { inputs, backend, attrs } = args;
    const xv = f32(backend, inputs.x!);
    const dyv = f32(backend, inputs.dy!);
    if (!xv || !dyv || attrs.dataFormat === 'NCHW') return fallback(args);
    const info = convInfo(inputs.x!.shape, attrs.filterShape, attrs);
    const dw = alloc(backend, size(attrs.filterShape));
    if (!tryConv(() => addon.convBackwardWeights(convParams(info), xv, dyv, dw))) return fallback(args);
    return out(backend, attrs.filterShape, dw, 'float32');
  };

/** Element-wise a op b with broadcasting; comparisons (op codes from 32) give bool. */
const binary =
  (addon: NativeAddon, op: number): Kernel<tf.BinaryInputs, unknown> =>
  (args, fallback) => {
    const { backend } = args;
    const { a, b } = args.inputs;
    const av = f32(backend, a!);
    const bv = f32(backend, b!);
    if (!av || !bv) return fallback(args);
    const shape = tf.backend_util.assertAndGetBroadcastShape(a!.shape, b!.shape);
    const n = size(shape);
    const logical = op >= 32;
    const o = logical ? allocBytes(backend, n) : alloc(backend, n);
    addon.binary(op, av, a!.shape, bv, b!.shape, o, shape);
    return out(backend, shape, o, logical ? 'bool' : 'float32');
  };

/** Element-wise op(x); alpha is LeakyRelu's and Step's attr (0 for the others). */
const unary =
  (addon: NativeAddon, op: number): Kernel<tf.UnaryInputs, Partial<tf.LeakyReluAttrs> | undefined> =>
  (args, fallback) => {
    const { backend } = args;
    const { x } = args.inputs;
    const xv = f32(backend, x!);
    if (!xv) return fallback(args);
    const o = alloc(backend, xv.length);
    addon.unary(op, args.attrs?.alpha ?? 0, xv, o, xv.length);
    return out(backend, x!.shape, o, 'float32');
  };

const select =
  (addon: NativeAddon): Kernel<tf.SelectInputs, unknown> =>
  (args, fallback) => {
    const { backend } = args;
    const { condition, t, e } = args.inputs;
    const cv = backend.data.get(condition!.dataId).values;
    const tv = f32(backend, t!);
    const ev = f32(backend, e!);
    const n = size(t!.shape);
    if (!(cv instanceof Uint8Array) || !tv || !ev || cv.length !== n || ev.length !== n)
      return fallback(args);
    const o = alloc(backend, n);
    addon.select(cv, tv, ev, o, n);
    return out(backend, t!.shape, o, 'float32');
  };

const fill =
  (addon: NativeAddon): Kernel<unknown, tf.FillAttrs> =>
  (args, fallback) => {
    const { shape, value, dtype } = args.attrs;
    if ((dtype ?? 'float32') !== 'float32' || typeof value !== 'number') return fallback(args);
    const o = alloc(args.backend, size(shape));
    addon.fill(o, value, o.length);
    return out(args.backend, shape, o, 'float32');
  };

/** OnesLike and ZerosLike. */
const constantLike =
  (addon: NativeAddon, value: number): Kernel<tf.ZerosLikeInputs, unknown> =>
  (args, fallback) => {
    const { x } = args.inputs;
    if (x!.dtype !== 'float32') return fallback(args);
    const o = alloc(args.backend, size(x!.shape));
    addon.fill(o, value, o.length);
    return out(args.backend, x!.shape, o, 'float32');
  };

const addN =
  (addon: NativeAddon): Kernel<tf.AddNInputs, unknown> =>
  (args, fallback) => {
    const { backend, inputs: xs } = args;
    const vs = xs.map((t) => f32(backend, t));
    if (vs.some((v) => v == null)) return fallback(args);
    const o = alloc(backend, size(xs[0]!.shape));
    addon.addN(vs as Float32Array[], o, o.length);
    return out(backend, xs[0]!.shape, o, 'float32');
  };

/** Sum and Mean (mean: true) over axes that are one block once size-1 dims are ignored. */
const reduceSum =
  (addon: NativeAddon, mean: boolean): Kernel<tf.SumInputs, tf.SumAttrs> =>
  (args, fallback) => {
    const { backend } = args;
    const { x } = args.inputs;
    const { axis, keepDims } = args.attrs;
    const xv = f32(backend, x!);
    if (!xv) return fallback(args);
    const shape = x!.shape;
    const axes = [...new Set(tf.util.parseAxisParam(axis, shape))].sort((p, q) => p - q);
    // Reduced axes must be one block once size-1 dims are ignored: [outer, r, inner].
    const real = axes.filter((ax) => shape[ax] !== 1);
    const first = real.length ? real[0]! : 0;
    const last = real.length ? real[real.length - 1]! : -1;
    for (let d = first; d <= last; d++) {
      if (shape[d] !== 1 && !axes.includes(d)) return fallback(args);
    }
    const outer = size(shape.slice(0, first));
    const r = real.length ? size(shape.slice(first, last + 1)) : 1;
    const inner = size(shape.slice(last + 1));
    const [outShape] = tf.backend_util.computeOutAndReduceShapes(shape, axes);
    const shown = keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
    const o = alloc(backend, outer * inner);
    addon.reduceSum(xv, outer, r, inner, o, mean);
    return out(backend, shown, o, 'float32');
  };

const concat =
  (addon: NativeAddon): Kernel<tf.ConcatInputs, tf.ConcatAttrs> =>
  (args, fallback) => {
    const { backend } = args;
    const xs = args.inputs.filter((t) => size(t.shape) > 0);
    if (xs.length === 0) return fallback(args);
    const vs: Float32Array[] = [];
    for (const t of xs) {
      const v = f32(backend, t);
      if (!v) return fallback(args);
      vs.push(v);
    }
    const first = xs[0]!.shape;
    const axis = tf.util.parseAxisParam(args.attrs.axis, first)[0]!;
    const shape = first.slice();
    shape[axis] = xs.reduce((s, t) => s + t.shape[axis]!, 0);
    const o = alloc(backend, size(shape));
    // Row r of the output is row r of each input in turn, rows running over the dims before the axis.
    const rows = size(shape.slice(0, axis));
    addon.concatRows(
      vs,
      xs.map((t) => size(t.shape.slice(axis))),
      rows,
      o,
    );
    return out(backend, shape, o, 'float32');
  };

const slice =
  (addon: NativeAddon): Kernel<tf.SliceInputs, tf.SliceAttrs> =>
  (args, fallback) => {
    const { backend } = args;
    const { x } = args.inputs;
    const xv = f32(backend, x!);
    if (!xv) return fallback(args);
    const [b, s] = tf.slice_util.parseSliceParams(x!, args.attrs.begin, args.attrs.size) as [
      number[],
      number[],
    ];
    const o = alloc(backend, size(s));
    addon.copyBox(
      xv,
      x!.shape,
      b,
      o,
      s,
      s.map(() => 0),
      s,
    );
    return out(backend, s, o, 'float32');
  };

const splitV =
  (addon: NativeAddon): Kernel<tf.SplitVInputs, tf.SplitVAttrs> =>
  (args, fallback) => {
    const { backend } = args;
    const { x } = args.inputs;
    const xv = f32(backend, x!);
    if (!xv) return fallback(args);
    const ax = tf.util.parseAxisParam(args.attrs.axis, x!.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, args.attrs.numOrSizeSplits, ax);
    const begin = x!.shape.map(() => 0);
    return sizes.map((s) => {
      const shape = x!.shape.slice();
      shape[ax] = s;
      const o = alloc(backend, size(shape));
      addon.copyBox(
        xv,
        x!.shape,
        begin,
        o,
        shape,
        shape.map(() => 0),
        shape,
      );
      begin[ax]! += s;
      return out(backend, shape, o, 'float32');
    });
  };

const padV2 =
  (addon: NativeAddon): Kernel<tf.PadV2Inputs, tf.PadV2Attrs> =>
  (args, fallback) => {
    const { backend } = args;
    const { x } = args.inputs;
    const xv = f32(backend, x!);
    if (!xv) return fallback(args);
    const { paddings, constantValue } = args.attrs;
    const shape = x!.shape.map((d, i) => d + paddings[i]![0] + paddings[i]![1]);
    const o = alloc(backend, size(shape));
    addon.fill(o, constantValue, o.length);
    addon.copyBox(
      xv,
      x!.shape,
      x!.shape.map(() => 0),
      o,
      shape,
      paddings.map((p) => p[0]),
      x!.shape,
    );
    return out(backend, shape, o, 'float32');
  };

/** The kernels the addon replaces, each falling back to the cpu backend's for what it does not take. */
export function nativeKernels(addon: NativeAddon): NativeKernel[] {
  return [
    nativeKernel(tf.Conv2D, conv2d(addon)),
    nativeKernel(tf.FusedConv2D, conv2d(addon)),
    nativeKernel(tf.Conv2DBackpropInput, conv2dBackpropInput(addon)),
    nativeKernel(tf.Conv2DBackpropFilter, conv2dBackpropFilter(addon)),
    ...Object.entries(BINARY).map(([name, op]) => nativeKernel(name, binary(addon, op))),
    ...Object.entries(UNARY).map(([name, op]) => nativeKernel(name, unary(addon, op))),
    nativeKernel(tf.Select, select(addon)),
    nativeKernel(tf.Fill, fill(addon)),
    nativeKernel(tf.OnesLike, constantLike(addon, 1)),
    nativeKernel(tf.ZerosLike, constantLike(addon, 0)),
    nativeKernel(tf.AddN, addN(addon)),
    nativeKernel(tf.Sum, reduceSum(addon, false)),
    nativeKernel(tf.Mean, reduceSum(addon, true)),
    nativeKernel(tf.Concat, concat(addon)),
    nativeKernel(tf.Slice, slice(addon)),
    nativeKernel(tf.SplitV, splitV(addon)),
    nativeKernel(tf.PadV2, padV2(addon)),
  ];
}
