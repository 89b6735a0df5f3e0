import {
  backend_util,
  type Conv2DBackpropInputAttrs,
  type Conv2DBackpropInputInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { callKernel, crop4d, free, heap, heapIndex, type WasmBackend, zeros } from './wasm-kernel-util.js';

/**
 * One output phase of a strided transposed conv along one axis, as a stride-1 correlation of dy
 * with `taps` filter taps. Taps whose window lies wholly in padding for every output (the 1x1 and
 * 2x2 maps of a UNet bottleneck) are already dropped.
 */
interface Phase {
  taps: number;
  /** Filter index of correlation tap m: kernelStart - stride * m (correlation flips the filter). */
  kernelStart: number;
  stride: number;
  /** First output row of the phase and how many rows (every stride-th) it owns. */
  first: number;
  count: number;
  /** Output row i, tap m read dy row i + m - padBefore. Negative pads mean dy rows never read. */
  padBefore: number;
  padAfter: number;
}

/**
 * Along one axis, dx[h] = sum_m dy[q - m] * w[r + s*m] with r = (h + pad) mod s and
 * q = (h + pad - r) / s. The rows sharing a residue r are one stride-1 correlation of dy with the
 * flipped taps r, r+s, ...: a transposed stride-s conv splits into s stride-1 convs per axis.
 * Phases that own no rows or whose taps all read padding are left out (their rows stay zero).
 */
function phases(size: number, dySize: number, filterSize: number, stride: number, pad: number): Phase[] {
  const out: Phase[] = [];
  for (let residue = 0; residue < stride && residue < filterSize; residue++) {
    const taps = Math.ceil((filterSize - residue) / stride);
    const first = (((residue - pad) % stride) + stride) % stride;
    if (first >= size) continue;
    const count = Math.ceil((size - first) / stride);
    const q0 = (first + pad - residue) / stride;
    const padBefore = taps - 1 - q0;
    // Tap m touches dy for some output i in [0, count) iff 0 <= i + m - padBefore < dySize.
    const lo = Math.max(0, padBefore - count + 1);
    const hi = Math.min(taps - 1, padBefore + dySize - 1);
    if (hi < lo) continue;
    const used = hi - lo + 1;
    out.push({
      taps: used,
      kernelStart: residue + stride * (taps - 1 - lo),
      stride,
      first,
      count,
      padBefore: padBefore - lo,
      padAfter: count + used - 1 - (padBefore - lo) - dySize,
    });
  }
  return out;
}

let stockKernelFunc: KernelFunc | undefined;

/**
 * Per-element costs, relative, of the two ways to run a phase, measured on this backend: an
 * XNNPACK conv operator is rebuilt for each new filter (tfjs transposes it, XNNPACK packs it),
 * which dominates when the filter is large and the map small; a GEMM with the gathered dy as its
 * packed operand costs in proportion to dy instead.
 */
const CONV_FILTER_COST = 3;
const GEMM_PACK_COST = 1.5;

export type PhaseStrategy = 'auto' | 'conv' | 'gemm';
let strategy: PhaseStrategy = 'auto';

/** Pins how phases run, so tests can check both ways on every shape; 'auto' picks by cost. */
export function setPhaseStrategy(s: PhaseStrategy): void {
  strategy = s;
}

/**
 * Conv2DBackpropInput (also the forward pass of conv2dTranspose) as stride-1 XNNPACK work, one
 * piece per stride phase, written interleaved into dx. The stock wasm kernel is a scalar loop and
 * took 70 % of a training step; it stays as the fallback for NCHW, which this path does not take.
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
  if (
    dy.shape[0] !== batchSize ||
    dy.shape[1] !== outHeight ||
    dy.shape[2] !== outWidth ||
    dy.shape[3] !== outChannels
  ) {
    throw new Error(`Conv2DBackpropInput: dy shape ${dy.shape} does not match conv output ${info.outShape}`);
  }
  const dxShape = [batchSize, inHeight, inWidth, inChannels];
  const rows = phases(inHeight, outHeight, filterHeight, strideHeight, info.padInfo.top);
  const cols = phases(inWidth, outWidth, filterWidth, strideWidth, info.padInfo.left);

  let filterT: TensorInfo | undefined;
  let dyT: TensorInfo | undefined;
  let dx: TensorInfo | undefined;
  try {
    for (const row of rows) {
      for (const col of cols) {
        const taps = row.taps * col.taps * outChannels;
        const pixels = batchSize * row.count * col.count;
        const convCost = CONV_FILTER_COST * taps * inChannels;
        const gemmCost = GEMM_PACK_COST * taps * pixels + pixels * inChannels;
        if (strategy === 'gemm' || (strategy === 'auto' && gemmCost < convCost)) {
          // [co, n, h, w]: gathering dy rows per (tap, co) is then contiguous runs.
          dyT ??= callKernel(backend, 'Transpose', { x: dy }, { perm: [3, 0, 1, 2] });
          dx ??= zeros(backend, dxShape);
          phaseGemm(backend, dyT, filter, dx, row, col);
          continue;
        }
        // [kh, kw, co, ci]: each tap's co x ci block is contiguous, so a phase filter is block
        // copies, already in the HWIO order (input = co, output = ci) the inner conv wants.
        filterT ??= callKernel(backend, 'Transpose', { x: filter }, { perm: [0, 1, 3, 2] });
        const part = phaseConv(backend, dy, filterT, inChannels, row, col);
        if (rows.length === 1 && cols.length === 1 && row.count === inHeight && col.count === inWidth) {
          // The only phase covers dx: it is dx.
          return part;
        }
        dx ??= zeros(backend, dxShape);
        scatter(backend, part, dx, row, col);
        free(backend, part);
      }
    }
  } catch (e) {
    if (dx != null) free(backend, dx);
    throw e;
  } finally {
    if (filterT != null) free(backend, filterT);
    if (dyT != null) free(backend, dyT);
  }
  // Rows of phases left out (all taps in padding) are zero.
  return dx ?? zeros(backend, dxShape);
}

/** The stride-1 conv of one (row, col) phase: [n, row.count, col.count, ci]. */
function phaseConv(
  backend: WasmBackend,
  dy: TensorInfo,
  filterT: TensorInfo,
  ci: number,
  row: Phase,
  col: Phase,
): TensorInfo {
  const [, , , co] = dy.shape;
  const block = co * ci;
  const cropTop = Math.max(0, -row.padBefore);
  const cropBottom = Math.max(0, -row.padAfter);
  const cropLeft = Math.max(0, -col.padBefore);
  const cropRight = Math.max(0, -col.padAfter);
  const cropped = cropTop + cropBottom + cropLeft + cropRight > 0;
  const input = cropped ? crop4d(backend, dy, cropTop, cropBottom, cropLeft, cropRight) : dy;

  const kw = filterT.shape[1];
  const phaseFilter = backend.makeOutput([row.taps, col.taps, co, ci], 'float32');
  const mem = heap(backend);
  const src = heapIndex(backend, filterT);
  let dst = heapIndex(backend, phaseFilter);
  for (let m = 0; m < row.taps; m++) {
    for (let n = 0; n < col.taps; n++) {
      const from = src + ((row.kernelStart - m * row.stride) * kw + col.kernelStart - n * col.stride) * block;
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

/**
 * One phase as dx^T[ci, pixel] = W'[ci, (tap, co)] @ D[(tap, co), pixel]. W' is block copies of the
 * filter's contiguous co runs, so the large filter is never transposed or packed; the operand
 * XNNPACK packs is the small gathered dy D.
 */
function phaseGemm(
  backend: WasmBackend,
  dyT: TensorInfo,
  filter: TensorInfo,
  dx: TensorInfo,
  row: Phase,
  col: Phase,
): void {
  const [co, n, dyH, dyW] = dyT.shape;
  const [, kw, ci] = filter.shape;
  const taps = row.taps * col.taps;
  const k = taps * co;
  const pixels = n * row.count * col.count;
  const a = backend.makeOutput([1, ci, k], 'float32');
  const d = zeros(backend, [1, k, pixels]);
  let mem = heap(backend);
  const w = heapIndex(backend, filter);
  const aStart = heapIndex(backend, a);
  for (let c = 0; c < ci; c++) {
    let dst = aStart + c * k;
    for (let m = 0; m < row.taps; m++) {
      for (let t = 0; t < col.taps; t++) {
        const from =
          w + (((row.kernelStart - m * row.stride) * kw + col.kernelStart - t * col.stride) * ci + c) * co;
        mem.copyWithin(dst, from, from + co);
        dst += co;
      }
    }
  }
  const src = heapIndex(backend, dyT);
  const dStart = heapIndex(backend, d);
  for (let m = 0; m < row.taps; m++) {
    for (let t = 0; t < col.taps; t++) {
      // Output column j reads dy column j + t - padBefore; clip to the columns inside dy.
      const shift = t - col.padBefore;
      const j0 = Math.max(0, -shift);
      const j1 = Math.min(col.count, dyW - shift);
      if (j1 <= j0) continue;
      for (let c = 0; c < co; c++) {
        const dRow = dStart + ((m * col.taps + t) * co + c) * pixels;
        for (let b = 0; b < n; b++) {
          for (let i = 0; i < row.count; i++) {
            const r = i + m - row.padBefore;
            if (r < 0 || r >= dyH) continue;
            const from = src + ((c * n + b) * dyH + r) * dyW + j0 + shift;
            mem.copyWithin(dRow + (b * row.count + i) * col.count + j0, from, from + j1 - j0);
          }
        }
      }
    }
  }
  const out = callKernel(backend, 'BatchMatMul', { a, b: d }, { transposeA: false, transposeB: false });
  free(backend, a);
  free(backend, d);
  mem = heap(backend);
  const o = heapIndex(backend, out);
  const [, h, wd] = dx.shape;
  const base = heapIndex(backend, dx);
  let p = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < row.count; i++) {
      for (let j = 0; j < col.count; j++, p++) {
        const dst = base + ((b * h + row.first + i * row.stride) * wd + col.first + j * col.stride) * ci;
        for (let c = 0; c < ci; c++) mem[dst + c] = mem[o + c * pixels + p];
      }
    }
  }
  free(backend, out);
}

/** Writes phase rows/cols into every stride-th row/col of dx, starting at the phase's first. */
function scatter(backend: WasmBackend, part: TensorInfo, dx: TensorInfo, row: Phase, col: Phase): void {
  const [n, h, w, c] = dx.shape;
  const mem = heap(backend);
  let src = heapIndex(backend, part);
  const base = heapIndex(backend, dx);
  const pixelStep = col.stride * c;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < row.count; i++) {
      let dst = base + ((b * h + row.first + i * row.stride) * w + col.first) * c;
      if (col.stride === 1) {
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
