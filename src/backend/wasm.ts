import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';

/** Registers the tfjs WASM backend (XNNPACK). Training kernels tfjs 4.22 lacks are added in wasm-kernels.ts. */
export async function registerWasmBackend(): Promise<void> {
  if (tf.findBackendFactory('wasm') == null) throw new Error('@tensorflow/tfjs-backend-wasm did not register');
}
