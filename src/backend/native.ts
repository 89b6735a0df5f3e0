import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { type AdamKernel, registerAdamKernel, tfjsAdamKernel } from '../train/adam.js';
import { loadAddon, type NativeAddon } from './native-addon.js';
import { nativeKernels } from './native-kernels.js';

export const NATIVE_BACKEND = 'native';

/**
 * The cpu backend's storage and every kernel it has, with the hot ones (convolutions, element-wise
 * maths, reductions, concat/slice/pad) replaced by the addon's oneDNN and OpenMP code working on
 * the same Float32Arrays. Kernels the addon does not cover stay the cpu backend's JS.
 */
export class NativeBackend extends MathBackendCPU {
  constructor() {
    super();
    // The cpu backend's first write prints an advert for tfjs-node; this backend is the native one.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }
}

/** Whether the data behind `t` belongs to `t` alone, so writing it in place changes no other tensor. */
function ownsData(backend: MathBackendCPU, t: tf.TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32' || backend.refCount(t.dataId) !== 1) return null;
  const v = backend.data.get(t.dataId).values;
  // The cpu backend's Slice can hand out subarray views of another tensor's buffer.
  if (!(v instanceof Float32Array) || v.byteOffset !== 0 || v.byteLength !== v.buffer.byteLength) return null;
  return v;
}

function nativeAdam(addon: NativeAddon): AdamKernel {
  return (w, g, m, v, hp, t) => {
    const backend = tf.backend();
    if (!(backend instanceof NativeBackend)) return tfjsAdamKernel(w, g, m, v, hp, t);
    const wv = ownsData(backend, w);
    const mv = ownsData(backend, m);
    const vv = ownsData(backend, v);
    const gv = g.dtype === 'float32' ? backend.data.get(g.dataId).values : null;
    const n = w.size;
    if (
      !wv ||
      !mv ||
      !vv ||
      !(gv instanceof Float32Array) ||
      gv.length < n ||
      mv.length !== n ||
      vv.length !== n
    ) {
      return tfjsAdamKernel(w, g, m, v, hp, t);
    }
    addon.adam(wv, gv, mv, vv, n, hp.lr, hp.beta1, hp.beta2, hp.epsilon, t);
  };
}

let registered: Promise<void> | null = null;

/**
 * Registers the 'native' backend (and its fused Adam). Throws one line saying why where the addon
 * is missing or cannot load, so `auto` can fall back with that reason.
 */
export function registerNativeBackend(): Promise<void> {
  registered ??= (async () => {
    const addon = loadAddon();
    addon.info();
    const replaced = new Map(nativeKernels(addon).map((k) => [k.name, k.func]));
    const cpuKernels = new Map(tf.getKernelsForBackend('cpu').map((k) => [k.kernelName, k]));
    for (const k of cpuKernels.values()) {
      if (!replaced.has(k.kernelName)) tf.registerKernel({ ...k, backendName: NATIVE_BACKEND });
    }
    for (const [name, func] of replaced) {
      const cpu = cpuKernels.get(name);
      const fallback = cpu
        ? (cpu.kernelFunc as (a: unknown) => tf.TensorInfo | tf.TensorInfo[])
        : () => {
            throw new Error(`no fallback for ${name}`);
          };
      tf.registerKernel({
        kernelName: name,
        backendName: NATIVE_BACKEND,
        kernelFunc: ((args: Parameters<typeof func>[0]) => func(args, fallback)) as unknown as tf.KernelFunc,
      });
    }
    if (!tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend())) {
      throw new Error('tfjs refused to register the native backend');
    }
    registerAdamKernel(NATIVE_BACKEND, nativeAdam(addon));
  })();
  registered.catch(() => {
    registered = null;
  });
  return registered;
}

export { loadAddon };
