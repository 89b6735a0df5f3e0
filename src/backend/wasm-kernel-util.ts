import {
  getKernel,
  type KernelBackend,
  type NamedAttrMap,
  type TensorInfo,
  util,
} from '@tensorflow/tfjs-core';

/**
 * The parts of tfjs-backend-wasm's BackendWasm these kernels touch. Declared here because the
 * package's own typings lean on @types/emscripten for the heap views.
 */
export interface WasmBackend extends KernelBackend {
  wasm: { HEAPF32: Float32Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number } | undefined };
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

/**
 * Runs another wasm kernel straight from the registry, bypassing the engine, so its output is
 * an untracked intermediate that the caller must free with `free`.
 */
export function callKernel(
  backend: WasmBackend,
  kernelName: string,
  inputs: Record<string, TensorInfo>,
  attrs: NamedAttrMap,
): TensorInfo {
  const kernel = getKernel(kernelName, 'wasm');
  if (kernel == null) throw new Error(`wasm kernel '${kernelName}' is not registered`);
  return kernel.kernelFunc({ inputs, attrs, backend }) as TensorInfo;
}

export function free(backend: WasmBackend, info: TensorInfo): void {
  backend.disposeData(info.dataId);
}

/**
 * Float offset of a tensor in HEAPF32. `>>> 2` rather than `>> 2`: the heap passes 2 GB in
 * training, where a signed shift turns the offset negative.
 */
export function heapIndex(backend: WasmBackend, info: TensorInfo): number {
  const data = backend.dataIdMap.get(info.dataId);
  if (data == null) throw new Error('tensor is not on the wasm backend');
  return data.memoryOffset >>> 2;
}

/**
 * The heap view must be fetched after the last allocation: malloc may grow the memory, which
 * detaches every earlier view.
 */
export function heap(backend: WasmBackend): Float32Array {
  return backend.wasm.HEAPF32;
}

export function zeros(backend: WasmBackend, shape: number[]): TensorInfo {
  const out = backend.makeOutput(shape, 'float32');
  const start = heapIndex(backend, out);
  heap(backend).fill(0, start, start + util.sizeFromShape(shape));
  return out;
}

/**
 * Copies rows [top, h - bottom) and columns [left, w - right) of an [n, h, w, c] tensor into a new
 * one. The stock Slice kernel first reads the whole input back into JS, which costs a full copy.
 */
export function crop4d(
  backend: WasmBackend,
  x: TensorInfo,
  top: number,
  bottom: number,
  left: number,
  right: number,
): TensorInfo {
  const [n, h, w, c] = x.shape;
  const oh = h - top - bottom;
  const ow = w - left - right;
  const out = backend.makeOutput([n, oh, ow, c], 'float32');
  const mem = heap(backend);
  const src = heapIndex(backend, x);
  let dst = heapIndex(backend, out);
  const rowLen = ow * c;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < oh; i++) {
      const from = src + ((b * h + i + top) * w + left) * c;
      mem.copyWithin(dst, from, from + rowLen);
      dst += rowLen;
    }
  }
  return out;
}
