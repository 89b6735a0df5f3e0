import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone registers no gradients; tfjs-layers, which the app uses, registers them.
import '@tensorflow/tfjs-layers';
import { registerNativeBackend } from '../../src/backend/native.js';
import { addonPath } from '../../src/backend/native-addon.js';
import { relErr, rng } from '../helpers.js';

export { relErr, rng };

/**
 * Whether the native tests can run. Without the addon they are skipped with the reason, except
 * under CI, which builds the addon: there a missing addon fails.
 */
export const nativeSkip: string | false = (() => {
  if (addonPath() != null) return false;
  if (process.env['CI']) {
    test('native addon is built (CI builds it with npm run build:native)', () => {
      assert.fail('native/build/Release/pix2pix_native.node is missing');
    });
    return false;
  }
  return 'native addon not built (npm run build:native)';
})();

export async function setupNative(): Promise<void> {
  tf.env().set('PROD', true);
  await registerNativeBackend();
}

export function randomArray(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

export const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/**
 * Runs `build` on the cpu backend and on native, with the same inputs, and returns both results'
 * values and dtypes. `build` must create its tensors itself (from fixed arrays) and return outputs.
 */
export async function onBoth(
  build: () => tf.Tensor | tf.Tensor[],
): Promise<{ cpu: tf.TypedArray[]; native: tf.TypedArray[]; dtypes: string[]; shapes: number[][] }> {
  const run = async (backend: string) => {
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    const outs = tf.tidy(() => {
      const o = build();
      return Array.isArray(o) ? o : [o];
    });
    const vals = outs.map((t) => t.dataSync().slice());
    const meta = outs.map((t) => ({ dtype: t.dtype as string, shape: t.shape }));
    tf.dispose(outs);
    assert.equal(tf.memory().numTensors, before, `${backend}: tensors leaked`);
    return { vals, meta };
  };
  const c = await run('cpu');
  const n = await run('native');
  for (let i = 0; i < c.meta.length; i++) {
    assert.deepEqual(n.meta[i]!.shape, c.meta[i]!.shape, `output ${i} shape`);
    assert.equal(n.meta[i]!.dtype, c.meta[i]!.dtype, `output ${i} dtype`);
  }
  return {
    cpu: c.vals,
    native: n.vals,
    dtypes: c.meta.map((m) => m.dtype),
    shapes: c.meta.map((m) => m.shape),
  };
}

/** Asserts every output of `build` agrees between cpu and native within `tol` (relErr). */
export async function assertSame(
  build: () => tf.Tensor | tf.Tensor[],
  tol: number,
  what = '',
): Promise<number> {
  const r = await onBoth(build);
  let worst = 0;
  r.cpu.forEach((c, i) => {
    const e = relErr(c, r.native[i]!);
    worst = Math.max(worst, e);
    assert.ok(e <= tol, `${what} output ${i}: relative error ${e.toExponential(2)} > ${tol}`);
  });
  return worst;
}
