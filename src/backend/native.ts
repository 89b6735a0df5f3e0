import { totalmem } from 'node:os';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { type AdamKernel, registerAdamKernel, tfjsAdamKernel } from './adam-kernel.js';
import { useLayoutCache } from './layout-cache.js';
import { loadAddon, type NativeAddon } from './native-addon.js';
import { fusedKernels } from './native-fused.js';
import type { Fallback } from './native-kernel.js';
import { nativeKernels } from './native-kernels.js';

export const NATIVE_BACKEND = 'native';

/**
 * The cpu backend's storage and every kernel it has, with the hot ones (convolutions, element-wise
 * maths, reductions, concat/slice/pad) replaced by the addon's oneDNN and OpenMP code working on
 * the same Float32Arrays. Kernels the addon does not cover stay the cpu backend's JS.
 */
type Pooled = Float32Array | Uint8Array;

interface Owned {
  base: Pooled;
  /** Data ids whose values are this buffer or a view of it. */
  holders: number;
  /** Handed out by readSync/read: someone outside may still hold it, so it is never reused. */
  escaped: boolean;
}

const poolKey = (type: string, n: number) => `${type}:${n}`;

/**
 * Capacity class of an n-element request: n rounded up to 1/8 of its power of two (at most 12.5%
 * spare), so that the many slightly different shapes of a step (concats, pads, batch sizes) share
 * arrays; kernels get a view of the first n elements.
 */
export function capacityFor(n: number): number {
  if (n <= 1024) return n;
  const step = 2 ** (Math.floor(Math.log2(n)) - 3);
  return Math.ceil(n / step) * step;
}

/**
 * Bytes of freed kernel outputs kept for reuse; beyond it they are left to the GC. A training step
 * frees and reallocates the same arrays every time, so the pool stops growing after the first
 * step; what it holds the GC would mostly still hold too (RSS at batch 16: 5.1 GB with a 1.5 GB cap,
 * 5.3 GB with 4 GB), while arrays it cannot hold come back as fresh pages at ~10 us each
 * (batch 16: 541 -> 250 ms per image with the larger cap). A quarter of RAM, P2P_POOL_MB overrides.
 */
const POOL_CAP_BYTES = process.env['P2P_POOL_MB']
  ? Number(process.env['P2P_POOL_MB']) * 2 ** 20
  : Math.min(totalmem() / 4, 8 * 2 ** 30);

/** Arrays from this size up get huge-page advice before their first touch (see adviseHugePages). */
const HUGE_ADVICE_BYTES = 4 * 2 ** 20;

export class NativeBackend extends MathBackendCPU {
  /**
   * Freed output arrays by length. A fresh Float32Array is zero pages the kernel faults in one by
   * one, and V8 frees it only at its next GC; a training step allocates the same shapes over and
   * over, so kernel outputs recycle the arrays tfjs has disposed (only arrays this backend made,
   * never read out to JS, with no data id or view left on them).
   */
  private readonly pool = new Map<string, Pooled[]>();
  private poolBytes = 0;
  private readonly owned = new WeakMap<ArrayBufferLike, Owned>();
  /** Buffers not made here that readSync handed out (a checkpoint may still be writing them). */
  private readonly readOut = new WeakSet<ArrayBufferLike>();
  /** The addon's weights ids of constant filters (ConstantFilterAttrs), by data id. */
  private readonly constantIds = new Map<tf.DataId, number>();
  private nextConstantId = 1;

  constructor(private readonly addon: NativeAddon) {
    super();
    // The cpu backend's first write prints an advert for tfjs-node; this backend is the native one.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** An uninitialised float32 array of `n` elements for a kernel output: every element must be written. */
  alloc(n: number): Float32Array {
    return this.take(Float32Array, n);
  }

  /** The same for bool outputs (tfjs keeps bools as bytes). */
  allocBytes(n: number): Uint8Array {
    return this.take(Uint8Array, n);
  }

  private take<T extends Pooled>(ctor: { new (n: number): T; name: string }, n: number): T {
    const cap = capacityFor(n);
    let base = this.pool.get(poolKey(ctor.name, cap))?.pop() as T | undefined;
    if (base) {
      this.poolBytes -= base.byteLength;
    } else {
      base = new ctor(cap);
      this.adviseHuge(base);
      // Small arrays come from V8's heap cheaply; only big ones are worth tracking.
      if (base.byteLength >= 4096) this.owned.set(base.buffer, { base, holders: 0, escaped: false });
    }
    return (cap === n ? base : base.subarray(0, n)) as T;
  }

  /**
   * Whether a kernel may write `values` in place: no other data id holds its buffer (the cpu
   * backend's Slice and our size classes both make views), and it was never read out to JS.
   */
  exclusive(values: Float32Array): boolean {
    const rec = this.owned.get(values.buffer);
    if (rec) return rec.holders === 1 && !rec.escaped;
    return (
      !this.readOut.has(values.buffer) &&
      values.byteOffset === 0 &&
      values.byteLength === values.buffer.byteLength
    );
  }

  /**
   * The weights id under which the addon keeps `dataId`'s reordered copy: the same id until the data
   * is freed or written in place (only nativeAdam does), when `forgetConstant` drops the copies.
   */
  constantFilterId(dataId: tf.DataId): number {
    let id = this.constantIds.get(dataId);
    if (id === undefined) {
      id = this.nextConstantId++;
      this.constantIds.set(dataId, id);
    }
    return id;
  }

  forgetConstant(dataId: tf.DataId): void {
    const id = this.constantIds.get(dataId);
    if (id === undefined) return;
    this.constantIds.delete(dataId);
    this.addon.convForgetWeights(id);
  }

  /** Drops every pooled array (they go to the GC). */
  trimPool(): void {
    this.pool.clear();
    this.poolBytes = 0;
  }

  private hold(values: unknown): void {
    if (!(values instanceof Float32Array || values instanceof Uint8Array)) return;
    const rec = this.owned.get(values.buffer);
    if (rec) rec.holders++;
  }

  /**
   * A fresh array's pages are faulted in 4 KiB at a time on its first write: the first step writes
   * ~1 GB of fresh pages (Adam's moments, the gradients, the activations). With 2 MiB pages there
   * are 512 times fewer faults (the kernel still zeroes every page): Adam's first update at batch 1
   * went from ~500 to ~370 ms (median of 3 runs each), later steps unchanged.
   */
  private adviseHuge(values: unknown): void {
    if (values instanceof Float32Array && values.byteLength >= HUGE_ADVICE_BYTES) {
      this.addon.adviseHugePages(values, values.length);
    }
  }

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    // tf.zeros and friends hand over arrays nobody has written yet (Adam's moments are 436 MB).
    this.adviseHuge(values);
    const id = super.write(values, shape, dtype);
    this.hold(values);
    return id;
  }

  override move(
    dataId: tf.DataId,
    values: tf.backend_util.BackendValues,
    shape: number[],
    dtype: tf.DataType,
    refCount: number,
  ): void {
    super.move(dataId, values, shape, dtype, refCount);
    this.hold(values);
  }

  override readSync(dataId: tf.DataId): tf.backend_util.BackendValues {
    const v = super.readSync(dataId);
    if (v instanceof Float32Array || v instanceof Uint8Array) {
      const rec = this.owned.get(v.buffer);
      if (rec) rec.escaped = true;
      else this.readOut.add(v.buffer);
    }
    return v;
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const done = super.disposeData(dataId, force);
    if (!this.data.has(dataId)) this.forgetConstant(dataId);
    if ((values instanceof Float32Array || values instanceof Uint8Array) && !this.data.has(dataId)) {
      const rec = this.owned.get(values.buffer);
      if (
        rec &&
        --rec.holders === 0 &&
        !rec.escaped &&
        this.poolBytes + rec.base.byteLength <= POOL_CAP_BYTES
      ) {
        const key = poolKey(rec.base.constructor.name, rec.base.length);
        const list = this.pool.get(key);
        if (list) list.push(rec.base);
        else this.pool.set(key, [rec.base]);
        this.poolBytes += rec.base.byteLength;
      }
    }
    return done;
  }
}

/** Whether the data behind `t` belongs to `t` alone, so writing it in place changes no other tensor. */
function ownsData(backend: NativeBackend, t: tf.TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32' || backend.refCount(t.dataId) !== 1) return null;
  const v = backend.data.get(t.dataId).values;
  return v instanceof Float32Array && backend.exclusive(v) ? v : null;
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
    // w changes in place: a reordered copy kept of it (a constant filter in inference) is stale now.
    backend.forgetConstant(w.dataId);
    addon.adam(wv, gv, mv, vv, n, hp.lr, hp.beta1, hp.beta2, hp.epsilon, t);
  };
}

/**
 * Per-kernel wall time, when P2P_NATIVE_PROFILE is set at registration (`shapes`: per kernel and
 * output shape). Unlike tf.profile, which reads every output back (defeating the output pool), it
 * only adds a clock read around each call.
 */
const kernelTimes = new Map<string, { ms: number; calls: number }>();
const profiling = () => !!process.env['P2P_NATIVE_PROFILE'];

function timed(name: string, f: tf.KernelFunc): tf.KernelFunc {
  if (!profiling()) return f;
  const byShape = process.env['P2P_NATIVE_PROFILE'] === 'shapes';
  return (args) => {
    const t = performance.now();
    const r = f(args);
    const key = byShape ? `${name} ${JSON.stringify((Array.isArray(r) ? r[0] : r)?.shape)}` : name;
    const e = kernelTimes.get(key) ?? { ms: 0, calls: 0 };
    e.ms += performance.now() - t;
    e.calls++;
    kernelTimes.set(key, e);
    return r;
  };
}

/** Kernel times accumulated since the last reset (empty unless P2P_NATIVE_PROFILE was set). */
export function nativeKernelTimes(reset = false): Array<{ kernel: string; ms: number; calls: number }> {
  const out = [...kernelTimes.entries()].map(([kernel, e]) => ({ kernel, ...e })).sort((a, b) => b.ms - a.ms);
  if (reset) kernelTimes.clear();
  return out;
}

let registered: Promise<void> | null = null;

/**
 * Registers the 'native' backend (and its fused Adam). Throws one line saying why where the addon
 * is missing or cannot load, so `auto` can fall back with that reason.
 */
export function registerNativeBackend(): Promise<void> {
  registered ??= (async () => {
    const addon = loadAddon();
    // The first call into the addon (a broken build fails here, in one line), and what the layout
    // cache is keyed by.
    useLayoutCache(addon, addon.info());
    // The addon's kernels, and kernels of our own (no cpu counterpart: src/models/fused.ts calls
    // them on this backend, so their fallback is never needed).
    const ours = [...nativeKernels(addon), ...fusedKernels(addon)];
    const replaced = new Set(ours.map((k) => k.name));
    const cpuKernels = new Map(tf.getKernelsForBackend('cpu').map((k) => [k.kernelName, k]));
    for (const k of cpuKernels.values()) {
      if (!replaced.has(k.kernelName)) {
        tf.registerKernel({
          ...k,
          backendName: NATIVE_BACKEND,
          kernelFunc: timed(k.kernelName, k.kernelFunc),
        });
      }
    }
    for (const { name, func } of ours) {
      const cpu = cpuKernels.get(name);
      const fallback: Fallback = cpu
        ? (cpu.kernelFunc as unknown as Fallback)
        : () => {
            throw new Error(`no fallback for ${name}`);
          };
      tf.registerKernel({
        kernelName: name,
        backendName: NATIVE_BACKEND,
        kernelFunc: timed(name, ((args: Parameters<typeof func>[0]) =>
          func(args, fallback)) as unknown as tf.KernelFunc),
      });
    }
    if (!tf.registerBackend(NATIVE_BACKEND, () => new NativeBackend(addon))) {
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
