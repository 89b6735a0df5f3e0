import type * as tf from '@tensorflow/tfjs-core';
import { setupBackend } from '../src/backend/index.js';

/** The portable backend that every machine has; the native one has its own tests. */
export async function useWasm(): Promise<void> {
  await setupBackend('wasm');
}

/** Max |x - y| / max |y|: one number for "same tensor up to float rounding". */
export function relError(x: tf.Tensor, y: tf.Tensor): number {
  const a = x.dataSync();
  const b = y.dataSync();
  if (a.length !== b.length) throw new Error(`sizes differ: ${a.length} vs ${b.length}`);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return err / (scale || 1);
}

/** Copies of every weight's values, to compare before and after an update. */
export function snapshot(vars: tf.Variable[]): Float32Array[] {
  return vars.map((v) => Float32Array.from(v.dataSync() as Float32Array));
}

export function changedCount(before: Float32Array[], vars: tf.Variable[]): number {
  return vars.filter((v, i) => {
    const now = v.dataSync();
    return now.some((x, j) => x !== before[i][j]);
  }).length;
}
