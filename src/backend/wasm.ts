import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { conv2DBackpropFilterConfig } from './wasm-conv-backprop-filter.js';
import { conv2DBackpropInputConfig } from './wasm-conv-backprop-input.js';

let kernelsInstalled = false;

/** Adds the training kernels tfjs 4.22's WASM backend lacks or runs slowly. Idempotent. */
export function registerWasmTrainingKernels(): void {
  if (kernelsInstalled) return;
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm') == null) tf.registerKernel(conv2DBackpropFilterConfig);
  const stockInput = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (stockInput != null) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel(conv2DBackpropInputConfig(stockInput));
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
