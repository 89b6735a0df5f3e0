import * as tf from '@tensorflow/tfjs-core';
import { UserError } from '../util/log.js';

// The GPU path: tfjs's WebGPU backend over the browser's navigator.gpu, or in Node over Dawn (the
// optional npm package `webgpu`). We request the adapter and device ourselves, so that the adapter
// can be named and judged (hardware or software) before any tensor exists, and a missing one is a
// one-line error saying why.

/** The environment variable that allows a software adapter (SwiftShader, llvmpipe) on purpose. */
export const SOFTWARE_ENV = 'P2P_WEBGPU_SOFTWARE';

/** What the log's one line says of the adapter, and what memory planning reads. */
export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  description: string;
  /** A CPU implementation (SwiftShader, llvmpipe, a fallback adapter): correct, but no faster than the CPU. */
  software: boolean;
  /** The largest single buffer, and the largest one a kernel may bind: every tensor must fit both. */
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/** Why WebGPU cannot be used here, in one line. */
export class WebGpuUnavailable extends UserError {
  override name = 'WebGpuUnavailable';
}

/** What the adapter's line in the log says: vendor, architecture, description and the buffer limits. */
export function describeAdapter(a: WebGpuAdapter): string {
  const mib = (x: number) => `${Math.round(x / 2 ** 20)} MiB`;
  const name = [a.vendor, a.architecture, a.description].filter(Boolean).join(' / ') || 'unnamed adapter';
  return `${name}${a.software ? ' (software)' : ''}; max buffer ${mib(a.maxBufferSize)}, max binding ${mib(a.maxStorageBufferBindingSize)}`;
}

const SOFTWARE_NAMES = /swiftshader|llvmpipe|lavapipe|softpipe|software|microsoft basic render/i;

function summarise(adapter: GPUAdapter): WebGpuAdapter {
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    description: info.description || info.device,
    software:
      Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) || SOFTWARE_NAMES.test(text),
    maxBufferSize: adapter.limits.maxBufferSize,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
  };
}

const isNode = () => typeof process !== 'undefined' && Boolean(process.versions?.node);

/** navigator.gpu, or in Node Dawn's, with its globals (GPUBufferUsage, ...) installed as a page has them. */
async function gpuEntry(): Promise<GPU> {
  if (!isNode()) {
    const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
    if (!gpu) throw new WebGpuUnavailable('this browser has no WebGPU (navigator.gpu is missing)');
    return gpu;
  }
  let dawn: { create: (flags: string[]) => GPU; globals: object };
  try {
    // A variable specifier: the browser bundle never tries to resolve the Node-only package.
    const name = 'webgpu';
    dawn = (await import(name)) as typeof dawn;
  } catch (e) {
    throw new WebGpuUnavailable(
      `the optional package 'webgpu' (Dawn for Node) is not installed (${(e as Error).message.split('\n')[0]}): add it with npm install webgpu@0.6.2`,
    );
  }
  Object.assign(globalThis, dawn.globals);
  // SwiftShader's Vulkan driver probes for a Wayland display and prints "error: XDG_RUNTIME_DIR is
  // invalid or not set" where none is set (a server, CI): a line that reads like ours but is not.
  process.env.XDG_RUNTIME_DIR ??= process.env.TMPDIR || '/tmp';
  return dawn.create([]);
}

/** On Linux, whether the Vulkan loader that Dawn opens is there at all (the usual reason for no adapter). */
function vulkanLoaderMissing(): boolean {
  if (!isNode() || process.platform !== 'linux') return false;
  try {
    // dlopen succeeds and then finds no Node module in it: the library exists.
    process.dlopen({ exports: {} } as NodeJS.Module, 'libvulkan.so.1');
    return false;
  } catch (e) {
    return /cannot open shared object file/.test((e as Error).message);
  }
}

function noAdapterReason(): string {
  if (!isNode()) return 'this browser offers no WebGPU adapter (WebGPU is off, or the GPU is blocklisted)';
  if (vulkanLoaderMissing()) {
    return 'Dawn found no GPU adapter: the Vulkan loader libvulkan.so.1 is missing (apt-get install libvulkan1, plus your GPU driver)';
  }
  const icd = isNode() ? process.env.VK_ICD_FILENAMES : undefined;
  return `Dawn found no GPU adapter: no Vulkan driver here offers one it accepts${icd ? ` (VK_ICD_FILENAMES=${icd})` : ''}; install your GPU's Vulkan driver (NVIDIA's driver ships one), or for a software adapter on purpose set VK_ICD_FILENAMES to SwiftShader's ICD (Debian's chromium: /usr/lib/chromium/vk_swiftshader_icd.json) and ${SOFTWARE_ENV}=1`;
}

/** Whether P2P_WEBGPU_SOFTWARE=1 allows a software adapter (Node; a page decides for itself). */
export function softwareAllowed(): boolean {
  return isNode() ? process.env[SOFTWARE_ENV] === '1' : false;
}

/** The adapter a run would get, without creating a device, or the reason there is none. */
async function probeAdapter(): Promise<{ gpu: GPU; adapter: GPUAdapter } | { reason: string }> {
  let gpu: GPU;
  try {
    gpu = await gpuEntry();
  } catch (e) {
    return { reason: (e as Error).message };
  }
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { reason: noAdapterReason() };
  return { gpu, adapter };
}

let active: { adapter: WebGpuAdapter; device: GPUDevice } | undefined;
/** The first device error not yet reported (out of memory, validation, device lost). */
let deviceError: string | undefined;

/** The adapter of the registered webgpu backend, if there is one. */
export function activeAdapter(): WebGpuAdapter | undefined {
  return active?.adapter;
}

const lostMessage = (info: GPUDeviceLostInfo) =>
  `the WebGPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''})`;

/**
 * Resolves with a one-line reason when the registered device is lost (a driver reset, a GPU
 * removed, a tab in the background too long); undefined when no WebGPU device is registered. The
 * train page uses it to say so while it waits between steps, not only at the next step's read.
 */
export function deviceLost(): Promise<string> | undefined {
  return active?.device.lost.then(lostMessage);
}

/** Destroys the registered device, as a driver reset would: how the page's tests lose it on purpose. */
export function destroyDevice(): void {
  active?.device.destroy();
}

/**
 * Throws (once) the device's first error since the last call: an out-of-memory or a lost device does
 * not fail the call that caused it (WebGPU reports errors asynchronously), so the step checks here
 * after its read, before it updates any weight.
 */
export function throwDeviceError(): void {
  if (deviceError === undefined || tf.getBackend() !== 'webgpu') return;
  const e = deviceError;
  deviceError = undefined;
  throw new WebGpuUnavailable(e);
}

/**
 * Registers tfjs's WebGPU backend as 'webgpu' on the adapter found here. A software adapter is
 * refused unless `allowSoftware` (P2P_WEBGPU_SOFTWARE=1 for the CLI): it trains, but slower than
 * the CPU backends. Returns the adapter's summary for the log.
 */
export async function registerWebGpuBackend(allowSoftware = softwareAllowed()): Promise<WebGpuAdapter> {
  if (active) return active.adapter;
  const found = await probeAdapter();
  if ('reason' in found) throw new WebGpuUnavailable(found.reason);
  const summary = summarise(found.adapter);
  if (summary.software && !allowSoftware) {
    throw new WebGpuUnavailable(
      `the only WebGPU adapter is a software one (${describeAdapter(summary)}), no faster than the CPU: ${isNode() ? `set ${SOFTWARE_ENV}=1` : 'ask for backend=webgpu'} to use it on purpose`,
    );
  }
  const limits = found.adapter.limits;
  const features = (['timestamp-query'] as GPUFeatureName[]).filter((f) => found.adapter.features.has(f));
  // tfjs asks for the adapter's own limits on these; so do we (the defaults cap a buffer at 256 MiB).
  const device = await found.adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: {
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
    },
  });
  device.addEventListener('uncapturederror', (ev) => {
    const err = (ev as GPUUncapturedErrorEvent).error;
    const oom = err.constructor?.name === 'GPUOutOfMemoryError' || /out of memory/i.test(err.message);
    deviceError ??= oom
      ? `the GPU ran out of memory (${err.message.split('\n')[0]}): lower --micro-batch or --batch-size`
      : `WebGPU error: ${err.message.split('\n')[0]}`;
  });
  void device.lost.then((info) => {
    if (active?.device === device) deviceError ??= lostMessage(info);
  });
  // The backend's constructor checks navigator.gpu; in Node there is none, so it gets Dawn's. Not set
  // before the package's import: its import would register a second 'webgpu' backend of its own.
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  const g = globalThis as { navigator?: { gpu?: GPU } };
  g.navigator ??= {};
  const nav = g.navigator;
  if (!nav.gpu) Object.defineProperty(nav, 'gpu', { value: found.gpu, configurable: true });
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, found.adapter.info));
  active = { adapter: summary, device };
  return summary;
}
