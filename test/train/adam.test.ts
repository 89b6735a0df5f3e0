import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { Adam } from '../../src/train/adam.js';
import { useWasm } from '../helpers.js';

before(useWasm);

const HP = { lr: 2e-4, beta1: 0.5, beta2: 0.999 };

describe('Adam', () => {
  it('follows PyTorch Adam maths (bias-corrected moments) over three steps', () => {
    const w0 = [0.5, -1.25, 2];
    const grads = [
      [0.1, -0.2, 0.3],
      [-0.4, 0.05, 0.3],
      [0.2, 0.2, -0.1],
    ];
    const w = tf.variable(tf.tensor1d(w0), true, 'w');
    const opt = new Adam([w], { lr: 0.01, beta1: 0.5, beta2: 0.999 });
    // Reference in float64, straight from Kingma & Ba / torch.optim.Adam.
    const ref = [...w0];
    const m = [0, 0, 0];
    const v = [0, 0, 0];
    grads.forEach((g, step) => {
      const t = step + 1;
      for (let i = 0; i < 3; i++) {
        m[i] = 0.5 * m[i] + 0.5 * g[i];
        v[i] = 0.999 * v[i] + 0.001 * g[i] ** 2;
        const mHat = m[i] / (1 - 0.5 ** t);
        const vHat = v[i] / (1 - 0.999 ** t);
        ref[i] -= (0.01 * mHat) / (Math.sqrt(vHat) + 1e-8);
      }
      opt.apply({ w: tf.tensor1d(g) });
    });
    const got = w.dataSync();
    for (const [i, r] of ref.entries()) assert.ok(Math.abs(got[i] - r) < 1e-6, `${got[i]} vs ${r}`);
    assert.equal(opt.step, 3);
  });

  it('disposes the gradients it applies', () => {
    const w = tf.variable(tf.zeros([4]), true, 'w2');
    const opt = new Adam([w], HP);
    const g = tf.ones([4]);
    opt.apply({ w2: g });
    assert.ok(g.isDisposed);
  });

  it('updates variable by variable: peak memory stays near one variable, not the whole model', async () => {
    const n = 16;
    const shape = [256, 256]; // 256 KiB each, 4 MiB in all
    const vars = Array.from({ length: n }, (_, i) => tf.variable(tf.randomNormal(shape), true, `big${i}`));
    const opt = new Adam(vars, HP);
    const grads: tf.NamedTensorMap = {};
    for (const x of vars) grads[x.name] = tf.randomNormal(shape);
    const oneVar = 256 * 256 * 4;
    const before = tf.memory().numBytes;
    const info = await tf.profile(() => opt.apply(grads));
    // One variable's temporaries (about a dozen of its size) on top of what existed; an update
    // that kept every variable's temporaries to the end would peak near 12 * n.
    assert.ok(
      info.peakBytes - before < n * oneVar,
      `peak over start: ${(info.peakBytes - before) / oneVar} vars`,
    );
    // Gradients were freed as they were applied.
    assert.ok(tf.memory().numBytes <= before - (n - 1) * oneVar);
    opt.dispose();
    tf.dispose(vars);
  });
});
