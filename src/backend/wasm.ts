import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropFilterConfig } from './wasm-conv-backprop-filter.js';
import { conv2DBackpropInputConfig } from './wasm-conv-backprop-input.js';

let kernelsInstalled = false;

interface RefCountingBackend {
  incRef(dataId: tf.DataId): void;
}

/**
 * Identity sharing its input's buffer, as the cpu backend's does. The stock WASM kernel copies, and
 * tfjs clones (through Identity) every tensor an op saves for its gradient, so on WASM the backward
 * pass held a second copy of most activations: 3.1 GB of heap at batch 4 for the 256 px model.
 * Sharing is safe because no kernel writes into its inputs.
 */
const sharingIdentity: tf.KernelConfig = {
  kernelName: 'Identity',
  backendName: 'wasm',
  kernelFunc: ({ inputs, backend }) => {
    const x = inputs.x as tf.TensorInfo;
    (backend as unknown as RefCountingBackend).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  },
};

/** Adds the training kernels tfjs 4.22's WASM backend lacks, runs slowly, or runs with copies. Idempotent. */
export function registerWasmTrainingKernels(): void {
  if (kernelsInstalled) return;
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') == null) tf.registerKernel(conv2DBackpropFilterConfig);
  const stockInput = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (stockInput != null) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel(conv2DBackpropInputConfig(stockInput));
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel(sharingIdentity);
  kernelsInstalled = true;
}

/**
 * Registers the tfjs WASM backend (XNNPACK) with the training kernels of wasm-*.ts.
 *
 * Single-threaded on purpose: tfjs-wasm 4.22 forces its multithread flag off under Node, forcing it
 * on fails (Emscripten spawns pthread workers from blob: URLs, Node's worker_threads rejects them),
 * and patched around, its C++ still caps threads at os.cpus()/2 (1 on a 2-core box); forced to 2
 * threads here a conv ran slower (103-126 ms vs 72-99 ms single-threaded).
 */
export async function registerWasmBackend(): Promise<void> {
  if (tf.findBackendFactory('wasm') == null)
    throw new Error('@tensorflow/tfjs-backend-wasm did not register');
  registerWasmTrainingKernels();
}
