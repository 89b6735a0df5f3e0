import assert from 'node:assert/strict';
import type { StepLosses } from '../../src/train/step.js';

/** One step's losses and its gradients, per update (G's, then D's), in variable order. */
export interface StepRecord {
  losses: StepLosses;
  grads: Float32Array[][];
}

/** The L2 norm of `x`, and of `x - y`. */
function norms(x: Float32Array, y: Float32Array): { norm: number; diff: number } {
  let n = 0;
  let d = 0;
  for (let i = 0; i < x.length; i++) {
    n += x[i]! ** 2;
    d += (x[i]! - y[i]!) ** 2;
  }
  return { norm: Math.sqrt(n), diff: Math.sqrt(d) };
}

/**
 * The same step on two backends: each loss within 1e-3 of the reference's (relative), each gradient
 * within 1e-2 of the reference gradient's L2 norm.
 */
export function assertSameStep(got: StepRecord, ref: StepRecord, what = 'got'): void {
  for (const k of ['gGan', 'gL1', 'd'] as const) {
    const [l, c] = [got.losses[k], ref.losses[k]];
    if (Number.isNaN(c)) assert.ok(Number.isNaN(l), `${k} not computed on either`);
    else assert.ok(Math.abs(l - c) <= 1e-3 * Math.abs(c), `${k}: ${what} ${l}, reference ${c}`);
  }
  assert.equal(got.grads.length, ref.grads.length, 'updates');
  got.grads.forEach((update, u) => {
    assert.equal(update.length, ref.grads[u]!.length, `update ${u}: variables`);
    update.forEach((g, i) => {
      const r = ref.grads[u]![i]!;
      assert.equal(g.length, r.length);
      const { norm, diff } = norms(r, g);
      // A gradient that the norm cancels (a conv bias before InstanceNorm) is rounding noise on both.
      if (norm < 1e-6)
        assert.ok(diff < 1e-5, `update ${u} gradient ${i}: ${diff} where the reference's is ~0`);
      else assert.ok(diff <= 1e-2 * norm, `update ${u} gradient ${i}: |diff| ${diff} vs |reference| ${norm}`);
    });
  });
}
