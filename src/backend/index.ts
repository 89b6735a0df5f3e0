import { readdir } from 'node:fs/promises';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { BACKENDS, type BackendChoice, setLateErrorCheck } from './choices.js';
import type { WebGpuAdapter } from './webgpu.js';

export { BACKENDS, type BackendChoice, throwBackendError } from './choices.js';

export interface BackendResult {
  /** The tfjs backend now active. */
  name: 'native' | 'webgpu' | 'wasm' | 'cpu';
  /** Why `auto` did not get its first choice, when it did not. */
  fallbackReason?: string;
  /** The GPU adapter, when the backend is webgpu. */
  adapter?: WebGpuAdapter;
}

async function tryNative(): Promise<void> {
  const { registerNativeBackend } = await import('./native.js');
  await registerNativeBackend();
}

async function tryWasm(): Promise<void> {
  const { registerWasmBackend } = await import('./wasm.js');
  await registerWasmBackend();
}

/**
 * Whether `auto` should try WebGPU here: never where no GPU device node exists (Linux without
 * /dev/dri or /dev/nvidia*), which spares every CPU-only start Dawn's Vulkan probe and its warnings.
 */
async function mayHaveGpu(): Promise<boolean> {
  if (process.platform !== 'linux') return true;
  const names = async (dir: string) => readdir(dir).catch(() => [] as string[]);
  const dri = await names('/dev/dri');
  const dev = await names('/dev');
  return dri.some((n) => n.startsWith('renderD')) || dev.some((n) => /^nvidia\d+$/.test(n));
}

/** A hardware WebGPU adapter for `auto`, or undefined: never a software one, never an error. */
async function hardwareGpu(): Promise<WebGpuAdapter | undefined> {
  if (!(await mayHaveGpu())) return undefined;
  const { registerWebGpuBackend } = await import('./webgpu.js');
  try {
    return await registerWebGpuBackend(false);
  } catch {
    return undefined;
  }
}

/**
 * Chooses the tfjs backend once, at start. `auto` takes WebGPU where Dawn (or the browser) finds a
 * hardware adapter, else the native oneDNN backend, falling back to WASM (with the reason) where the
 * addon cannot load; an explicit choice that fails is an error.
 */
export async function setupBackend(choice: BackendChoice): Promise<BackendResult> {
  // Silences tfjs's console advert for tfjs-node, which cannot be installed here anyway.
  tf.env().set('PROD', true);
  if (!BACKENDS.includes(choice)) {
    throw new Error(`unknown backend '${choice}': use one of ${BACKENDS.join(', ')}`);
  }
  let fallbackReason: string | undefined;
  let name: BackendResult['name'];
  let adapter: WebGpuAdapter | undefined;
  if (choice === 'auto') {
    adapter = await hardwareGpu();
    if (adapter) {
      name = 'webgpu';
    } else {
      try {
        await tryNative();
        name = 'native';
      } catch (e) {
        fallbackReason = `native backend unavailable (${(e as Error).message}); using wasm`;
        await tryWasm();
        name = 'wasm';
      }
    }
  } else if (choice === 'native') {
    await tryNative();
    name = 'native';
  } else if (choice === 'webgpu') {
    const { registerWebGpuBackend } = await import('./webgpu.js');
    adapter = await registerWebGpuBackend();
    name = 'webgpu';
  } else if (choice === 'wasm') {
    await tryWasm();
    name = 'wasm';
  } else {
    name = 'cpu';
  }
  setLateErrorCheck(name === 'webgpu' ? (await import('./webgpu.js')).throwDeviceError : undefined);
  if (!(await tf.setBackend(name))) throw new Error(`backend '${name}' failed to initialise`);
  await tf.ready();
  return { name, fallbackReason, adapter };
}

/**
 * Drops what the active backend keeps of these weights as constant filters: the native backend's
 * reordered copies, made when inference marks a model's filters constant (ConstantFilterAttrs in
 * native-kernel.ts). Their next update would drop them too; a training run frees them as soon as its
 * per-epoch sample and evaluation are done. Other backends keep nothing.
 */
export function releaseConstantFilters(weights: tf.Tensor[]): void {
  const b = tf.backend() as { forgetConstant?: (dataId: tf.DataId) => void };
  for (const w of weights) b.forgetConstant?.(w.dataId);
}
