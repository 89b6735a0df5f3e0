import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type * as tf from '@tensorflow/tfjs-core';

/**
 * What the native backend's kernels share: their arguments typed with tfjs's own *Inputs and *Attrs,
 * the zero-copy view of a tensor's data, and output arrays from the backend's pool.
 */

/** A kernel's arguments as tfjs passes them, read as that kernel's inputs `I` and attrs `A`. */
export interface KernelArgs<I, A> {
  inputs: I;
  backend: MathBackendCPU;
  attrs: A;
}

type AnyArgs = KernelArgs<unknown, unknown>;

/** The cpu backend's kernel of the same name: where the addon does not take a problem. */
export type Fallback = (args: AnyArgs) => tf.TensorInfo | tf.TensorInfo[];

export interface NativeKernel {
  name: string;
  func: (args: AnyArgs, fallback: Fallback) => tf.TensorInfo | tf.TensorInfo[];
}

/**
 * One kernel, its function typed by the kernel's inputs and attrs. tfjs calls every kernel with a
 * NamedTensorInfoMap and a NamedAttrMap; this is the one place they become the kernel's own types
 * (tfjs-backend-cpu casts its typed kernel functions at registration the same way).
 */
export function nativeKernel<I, A>(
  name: string,
  func: (args: KernelArgs<I, A>, fallback: Fallback) => tf.TensorInfo | tf.TensorInfo[],
): NativeKernel {
  return { name, func: func as unknown as NativeKernel['func'] };
}

/** The tensor's own Float32Array (no copy), or null where it is not plain float32 data. */
export function f32(backend: MathBackendCPU, t: tf.TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array ? v : null;
}

/** f32 for a kernel of our own, which has no fallback: a tensor that is not float32 is an error. */
export function requireF32(backend: MathBackendCPU, t: tf.TensorInfo, kernel: string): Float32Array {
  const v = f32(backend, t);
  if (!v) throw new Error(`${kernel}: float32 data expected`);
  return v;
}

/**
 * A kernel's output array: recycled by the native backend where it can (contents undefined, so
 * every kernel writes every element), else fresh.
 */
export function alloc(backend: MathBackendCPU, n: number): Float32Array {
  const b = backend as MathBackendCPU & { alloc?: (n: number) => Float32Array };
  return b.alloc ? b.alloc(n) : new Float32Array(n);
}

/**
 * Our attr on Conv2D and Conv2DBackpropInput (src/models/fused.ts sets it in inference): the filter is
 * a model weight that no kernel will change before it is freed or updated through the backend's Adam,
 * so the native backend may keep its reordered copy across calls. Other backends ignore it.
 */
export interface ConstantFilterAttrs {
  constantFilter?: boolean;
}

/** The addon's weights id for a constant filter's data (0 where the backend keeps none). */
export function constantFilterId(
  backend: MathBackendCPU,
  filter: tf.TensorInfo,
  attrs: ConstantFilterAttrs,
): number {
  const b = backend as MathBackendCPU & { constantFilterId?: (dataId: tf.DataId) => number };
  return attrs.constantFilter && b.constantFilterId ? b.constantFilterId(filter.dataId) : 0;
}

export function allocBytes(backend: MathBackendCPU, n: number): Uint8Array {
  const b = backend as MathBackendCPU & { allocBytes?: (n: number) => Uint8Array };
  return b.allocBytes ? b.allocBytes(n) : new Uint8Array(n);
}
