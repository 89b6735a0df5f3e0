import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from './native-addon.js';

type TensorInfo = tf.TensorInfo;
type Attrs = tf.NamedAttrMap;
type Args = { inputs: tf.NamedTensorInfoMap; backend: MathBackendCPU; attrs?: Attrs };
type Fallback = (args: Args) => TensorInfo | TensorInfo[];

/** Op codes of native/src/eltwise.h. */
const BINARY: Record<string, number> = {
  Add: 0,
  Sub: 1,
  Multiply: 2,
  RealDiv: 3,
  Maximum: 4,
  Minimum: 5,
  SquaredDifference: 6,
  Pow: 7,
  Greater: 32,
  GreaterEqual: 33,
  Less: 34,
  LessEqual: 35,
  Equal: 36,
  NotEqual: 37,
};
const UNARY: Record<string, number> = {
  Neg: 0,
  Square: 1,
  Sqrt: 2,
  Rsqrt: 3,
  Abs: 4,
  Exp: 5,
  Log: 6,
  Log1p: 7,
  Tanh: 8,
  Sigmoid: 9,
  Relu: 10,
  LeakyRelu: 11,
  Step: 12,
  Sign: 13,
  Reciprocal: 14,
  Softplus: 15,
  Elu: 16,
  Relu6: 17,
};
const FUSED_ACTIVATION: Record<string, string | null> = {
  linear: null,
  relu: 'Relu',
  relu6: 'Relu6',
  elu: 'Elu',
  leakyrelu: 'LeakyRelu',
  sigmoid: 'Sigmoid',
};

const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The tensor's own Float32Array (no copy), or null where it is not plain float32 data. */
function f32(backend: MathBackendCPU, t: TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : null;
}

/**
 * A kernel's output array: recycled by the native backend where it can (contents undefined, so
 * every kernel writes every element), else fresh.
 */
function alloc(backend: MathBackendCPU, n: number): Float32Array {
  const b = backend as MathBackendCPU & { alloc?: (n: number) => Float32Array };
  return b.alloc ? b.alloc(n) : new Float32Array(n);
}

function allocBytes(backend: MathBackendCPU, n: number): Uint8Array {
  const b = backend as MathBackendCPU & { allocBytes?: (n: number) => Uint8Array };
  return b.allocBytes ? b.allocBytes(n) : new Uint8Array(n);
}

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

export interface NativeKernel {
  name: string;
  func: (args: Args, fallback: Fallback) => TensorInfo | TensorInfo[];
}

export function nativeKernels(addon: NativeAddon): NativeKernel[] {
  const kernels: NativeKernel[] = [];

  const conv2d = (args: Args, fallback: Fallback, fused: boolean): TensorInfo => {
    const { backend } = args;
    const attrs = args.attrs as unknown as {
      strides: [number, number] | number;
      pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
      dataFormat: 'NHWC' | 'NCHW';
      dilations: [number, number] | number;
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
      activation?: string;
      leakyreluAlpha?: number;
    };
    const { bias, preluActivationWeights } = args.inputs;
    const x = args.inputs['x']!;
    const filter = args.inputs['filter']!;
    const xv = f32(backend, x);
    const wv = f32(backend, filter);
    const act = attrs.activation ?? 'linear';
    const actKernel = FUSED_ACTIVATION[act];
    let biasV: Float32Array | null = null;
    let biasBroadcast = false;
    if (bias) {
      biasV = f32(backend, bias);
      biasBroadcast = size(bias.shape) !== filter.shape[3] || bias.shape.length > 1;
    }
    if (
      !xv ||
      !wv ||
      (bias && !biasV) ||
      attrs.dataFormat === 'NCHW' ||
      preluActivationWeights ||
      actKernel === undefined ||
      x.shape.length !== 4
    ) {
      return fallback(args) as TensorInfo;
    }
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number],
      filter.shape as [number, number, number, number],
      attrs.strides,
      attrs.dilations,
      attrs.pad,
      attrs.dimRoundingMode,
      false,
      'channelsLast',
    );
    const y = alloc(backend, size(info.outShape));
    if (!tryConv(() => addon.convForward(convParams(info), xv, wv, biasBroadcast ? null : biasV, y))) {
      return fallback(args) as TensorInfo;
    }
    if (fused && biasV && biasBroadcast) {
      addon.binary(BINARY['Add']!, y, info.outShape, biasV, bias!.shape, y, info.outShape);
    }
    if (actKernel) {
      const alpha = actKernel === 'LeakyRelu' ? (attrs.leakyreluAlpha ?? 0.2) : 0;
      addon.unary(UNARY[actKernel]!, alpha, y, y, y.length);
    }
    return out(backend, info.outShape, y, 'float32');
  };
  kernels.push({ name: 'Conv2D', func: (a, fb) => conv2d(a, fb, false) });
  kernels.push({ name: 'FusedConv2D', func: (a, fb) => conv2d(a, fb, true) });

  kernels.push({
    name: 'Conv2DBackpropInput',
    func: (args, fallback) => {
      const { backend } = args;
      const { dy, filter } = args.inputs;
      const attrs = args.attrs as unknown as {
        inputShape: [number, number, number, number];
        strides: [number, number] | number;
        pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
        dataFormat: 'NHWC' | 'NCHW';
        dimRoundingMode?: 'floor' | 'round' | 'ceil';
      };
      const dyv = f32(backend, dy!);
      const wv = f32(backend, filter!);
      if (!dyv || !wv || attrs.dataFormat === 'NCHW') return fallback(args);
      const info = tf.backend_util.computeConv2DInfo(
        attrs.inputShape,
        filter!.shape as [number, number, number, number],
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
        false,
        'channelsLast',
      );
      const dx = alloc(backend, size(attrs.inputShape));
      if (!tryConv(() => addon.convBackwardData(convParams(info), dyv, wv, dx))) return fallback(args);
      return out(backend, attrs.inputShape, dx, 'float32');
    },
  });

  kernels.push({
    name: 'Conv2DBackpropFilter',
    func: (args, fallback) => {
      const { backend } = args;
      const { x, dy } = args.inputs;
      const attrs = args.attrs as unknown as {
        filterShape: [number, number, number, number];
        strides: [number, number] | number;
        pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
        dataFormat: 'NHWC' | 'NCHW';
        dimRoundingMode?: 'floor' | 'round' | 'ceil';
      };
      const xv = f32(backend, x!);
      const dyv = f32(backend, dy!);
      if (!xv || !dyv || attrs.dataFormat === 'NCHW') return fallback(args);
      const info = tf.backend_util.computeConv2DInfo(
        x!.shape as [number, number, number, number],
        attrs.filterShape,
        attrs.strides,
        1,
        attrs.pad,
        attrs.dimRoundingMode,
        false,
        'channelsLast',
      );
      const dw = alloc(backend, size(attrs.filterShape));
      if (!tryConv(() => addon.convBackwardWeights(convParams(info), xv, dyv, dw))) return fallback(args);
      return out(backend, attrs.filterShape, dw, 'float32');
    },
  });

  for (const [name, op] of Object.entries(BINARY)) {
    kernels.push({
      name,
      func: (args, fallback) => {
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
      },
    });
  }

  for (const [name, op] of Object.entries(UNARY)) {
    kernels.push({
      name,
      func: (args, fallback) => {
        const { backend } = args;
        const { x } = args.inputs;
        const xv = f32(backend, x!);
        if (!xv) return fallback(args);
        const alpha = (args.attrs?.['alpha'] as number | undefined) ?? 0;
        const o = alloc(backend, xv.length);
        addon.unary(op, alpha, xv, o, xv.length);
        return out(backend, x!.shape, o, 'float32');
      },
    });
  }

  kernels.push({
    name: 'Select',
    func: (args, fallback) => {
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
    },
  });

  kernels.push({
    name: 'Fill',
    func: (args, fallback) => {
      const { shape, value, dtype } = args.attrs as unknown as {
        shape: number[];
        value: number;
        dtype: string;
      };
      if ((dtype ?? 'float32') !== 'float32' || typeof value !== 'number') return fallback(args);
      const o = alloc(args.backend, size(shape));
      addon.fill(o, value, o.length);
      return out(args.backend, shape, o, 'float32');
    },
  });
  for (const [name, value] of [
    ['OnesLike', 1],
    ['ZerosLike', 0],
  ] as const) {
    kernels.push({
      name,
      func: (args, fallback) => {
        const { x } = args.inputs;
        if (x!.dtype !== 'float32') return fallback(args);
        const o = alloc(args.backend, size(x!.shape));
        addon.fill(o, value, o.length);
        return out(args.backend, x!.shape, o, 'float32');
      },
    });
  }

  kernels.push({
    name: 'AddN',
    func: (args, fallback) => {
      const { backend } = args;
      const xs = args.inputs as unknown as TensorInfo[];
      const vs = xs.map((t) => f32(backend, t));
      if (vs.some((v) => v == null)) return fallback(args);
      const o = alloc(backend, size(xs[0]!.shape));
      addon.addN(vs as Float32Array[], o, o.length);
      return out(backend, xs[0]!.shape, o, 'float32');
    },
  });

  for (const name of ['Sum', 'Mean']) {
    kernels.push({
      name,
      func: (args, fallback) => {
        const { backend } = args;
        const { x } = args.inputs;
        const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
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
        addon.reduceSum(xv, outer, r, inner, o, name === 'Mean');
        return out(backend, shown, o, 'float32');
      },
    });
  }

  kernels.push({
    name: 'Concat',
    func: (args, fallback) => {
      const { backend } = args;
      const xs = (args.inputs as unknown as TensorInfo[]).filter((t) => size(t.shape) > 0);
      const vs = xs.map((t) => f32(backend, t));
      if (xs.length === 0 || vs.some((v) => v == null)) return fallback(args);
      const first = xs[0]!.shape;
      const axis = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, first)[0]!;
      const shape = first.slice();
      shape[axis] = xs.reduce((s, t) => s + t.shape[axis]!, 0);
      const o = alloc(backend, size(shape));
      const begin = shape.map(() => 0);
      xs.forEach((t, i) => {
        addon.copyBox(
          vs[i]!,
          t.shape,
          t.shape.map(() => 0),
          o,
          shape,
          begin,
          t.shape,
        );
        begin[axis]! += t.shape[axis]!;
      });
      return out(backend, shape, o, 'float32');
    },
  });

  kernels.push({
    name: 'Slice',
    func: (args, fallback) => {
      const { backend } = args;
      const { x } = args.inputs;
      const xv = f32(backend, x!);
      if (!xv) return fallback(args);
      const { begin, size: sz } = args.attrs as unknown as {
        begin: number | number[];
        size: number | number[];
      };
      const [b, s] = tf.slice_util.parseSliceParams(x!, begin, sz) as [number[], number[]];
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
    },
  });

  kernels.push({
    name: 'SplitV',
    func: (args, fallback) => {
      const { backend } = args;
      const { x } = args.inputs;
      const xv = f32(backend, x!);
      if (!xv) return fallback(args);
      const { numOrSizeSplits, axis } = args.attrs as unknown as {
        numOrSizeSplits: number | number[];
        axis: number;
      };
      const ax = tf.util.parseAxisParam(axis, x!.shape)[0]!;
      const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, ax);
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
    },
  });

  kernels.push({
    name: 'PadV2',
    func: (args, fallback) => {
      const { backend } = args;
      const { x } = args.inputs;
      const xv = f32(backend, x!);
      if (!xv) return fallback(args);
      const { paddings, constantValue } = args.attrs as unknown as {
        paddings: Array<[number, number]>;
        constantValue: number;
      };
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
    },
  });

  return kernels;
}
