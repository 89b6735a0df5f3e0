import {
  backend_util,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { callKernel, crop4d, free, heap, heapIndex, type WasmBackend, zeros } from './wasm-kernel-util.js';

/** One output phase of a strided transposed conv along one axis. */
interface Phase {
  /** Filter taps of this phase: kernel index = residue + stride * m for m < taps. */
  taps: number;
  residue: number;
  stride: number;
  /** First output row of the phase and how many rows (every stride-th) it owns. */
  first: number;
  count: number;
  /** Explicit pads of the stride-1 conv over dy; negative means crop dy by that much. */
  padBefore: number;
  padAfter: number;
}

/**
 * Along one axis, dx[h] = sum_m dy[q - m] * w[r + s*m] with r = (h + pad) mod s and
 * q = (h + pad - r) / s. The rows sharing a residue r are one stride-1 correlation of dy with the
 * flipped taps r, r+s, ...: a transposed stride-s conv splits into s stride-1 convs per axis.
 */
function phases(size: number, dySize: number, filterSize: number, stride: number, pad: number): Phase[] {
  const out: Phase[] = [];
  for (let residue = 0; residue < stride; residue++) {
    const taps = residue < filterSize ? Math.ceil((filterSize - residue) / stride) : 0;
    const first = (((residue - pad) % stride) + stride) % stride;
    const count = first < size ? Math.ceil((size - first) / stride) : 0;
    const q0 = (first + pad - residue) / stride;
    out.push({
      taps,
      residue,
      stride,
      first,
      count,
      padBefore: taps - 1 - q0,
      padAfter: q0 + count - dySize,
    });
  }
  return out;
}

let stockKernelFunc: KernelFunc | undefined;

/**
 * Conv2DBackpropInput (also the forward pass of conv2dTranspose) as stride-1 XNNPACK convs, one
 * per stride phase, interleaved into dx. The stock wasm kernel is a scalar loop and took 70 % of a
 * training step; it stays as the fallback for layouts this path does not take (NCHW).
 */
function conv2DBackpropInput(args: {
  inputs: Conv2DBackpropInputInputs;
  backend: WasmBackend;
  attrs: Conv2DBackpropInputAttrs;
}): TensorInfo {
  const { backend, inputs, attrs } = args;
  const { dy, filter } = inputs as { dy: TensorInfo; filter: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  const format = backend_util.convertConv2DDataFormat(dataFormat);
  if (format !== 'channelsLast') {
    if (stockKernelFunc == null) throw new Error('Conv2DBackpropInput: NCHW needs the stock wasm kernel');
    return stockKernelFunc(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  }
  const info = backend_util.computeConv2DInfo(
    inputShape,
    filter.shape as [number, number, number, number],
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format,
  );
  const { batchSize, inHeight, inWidth, inChannels, outChannels, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth, outHeight, outWidth } = info;
  if (dy.shape[1] !== outHeight || dy.shape[2] !== outWidth || dy.shape[3] !== outChannels) {
    throw new Error(`Conv2DBackpropInput: dy shape ${dy.shape} does not match conv output ${info.outShape}`);
  }
  const rows = phases(inHeight, outHeight, filterHeight, strideHeight, info.padInfo.top);
  const cols = phases(inWidth, outWidth, filterWidth, strideWidth, info.padInfo.left);

  // [kh, kw, co, ci]: each tap's co x ci block is contiguous, so a phase filter is whole-block
  // copies, already in the HWIO order (input = co, output = ci) the inner conv wants.
  const filterT = callKernel(backend, 'Transpose', { x: filter }, { perm: [0, 1, 3, 2] });
  const block = outChannels * inChannels;
  const single = strideHeight === 1 && strideWidth === 1;
  const dx = single ? undefined : zeros(backend, [batchSize, inHeight, inWidth, inChannels]);
  let result: TensorInfo | undefined = dx;
  try {
    for (const row of rows) {
      for (const col of cols) {
        if (row.taps === 0 || col.taps === 0 || row.count === 0 || col.count === 0) continue;
        const part = phaseConv(backend, dy, filterT, block, row, col);
        if (part == null) continue;
        if (dx == null) {
          result = part;
          continue;
        }
        scatter(backend, part, dx, row, col, strideHeight, strideWidth);
        free(backend, part);
      }
    }
  } finally {
    free(backend, filterT);
  }
  // Stride 1 with every tap out of range: nothing was computed.
  return result ?? zeros(backend, [batchSize, inHeight, inWidth, inChannels]);
}

/** The stride-1 conv of one (row, col) phase: [n, row.count, col.count, ci], or null if all padding. */
function phaseConv(
  backend: WasmBackend,
  dy: TensorInfo,
  filterT: TensorInfo,
  block: number,
  row: Phase,
  col: Phase,
): TensorInfo | null {
  const [, dyH, dyW, co] = dy.shape;
  const ci = block / co;
  const cropTop = Math.max(0, -row.padBefore);
  const cropBottom = Math.max(0, -row.padAfter);
  const cropLeft = Math.max(0, -col.padBefore);
  const cropRight = Math.max(0, -col.padAfter);
  if (cropTop + cropBottom >= dyH || cropLeft + cropRight >= dyW) return null;
  const cropped = cropTop + cropBottom + cropLeft + cropRight > 0;
  const input = cropped ? crop4d(backend, dy, cropTop, cropBottom, cropLeft, cropRight) : dy;

  const kw = filterT.shape[1];
  const phaseFilter = backend.makeOutput([row.taps, col.taps, co, ci], 'float32');
  const mem = heap(backend);
  const src = heapIndex(backend, filterT);
  let dst = heapIndex(backend, phaseFilter);
  // Correlation needs the taps in reverse order.
  for (let m = row.taps - 1; m >= 0; m--) {
    for (let n = col.taps - 1; n >= 0; n--) {
      const from = src + ((row.residue + m * row.stride) * kw + col.residue + n * col.stride) * block;
      mem.copyWithin(dst, from, from + block);
      dst += block;
    }
  }
  const out = callKernel(
    backend,
    'Conv2D',
    { x: input, filter: phaseFilter },
    {
      strides: [1, 1],
      dilations: [1, 1],
      pad: [
        [0, 0],
        [Math.max(0, row.padBefore), Math.max(0, row.padAfter)],
        [Math.max(0, col.padBefore), Math.max(0, col.padAfter)],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  free(backend, phaseFilter);
  if (cropped) free(backend, input);
  return out;
}

/** Writes phase rows/cols into every stride-th row/col of dx, starting at the phase's first. */
function scatter(
  backend: WasmBackend,
  part: TensorInfo,
  dx: TensorInfo,
  row: Phase,
  col: Phase,
  strideHeight: number,
  strideWidth: number,
): void {
  const [n, h, w, c] = dx.shape;
  const mem = heap(backend);
  let src = heapIndex(backend, part);
  const base = heapIndex(backend, dx);
  const pixelStep = strideWidth * c;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < row.count; i++) {
      let dst = base + ((b * h + row.first + i * strideHeight) * w + col.first) * c;
      if (strideWidth === 1) {
        mem.copyWithin(dst, src, src + col.count * c);
        src += col.count * c;
        continue;
      }
      for (let j = 0; j < col.count; j++) {
        mem.copyWithin(dst, src, src + c);
        src += c;
        dst += pixelStep;
      }
    }
  }
}

export function conv2DBackpropInputConfig(stock: KernelConfig | undefined): KernelConfig {
  stockKernelFunc = stock?.kernelFunc;
  return {
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    // The stock kernel binds its wasm function in its setup; keep that working for the fallback.
    setupFunc: stock?.setupFunc,
    kernelFunc: conv2DBackpropInput as unknown as KernelFunc,
  };
}
