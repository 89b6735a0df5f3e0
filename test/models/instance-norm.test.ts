import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { InstanceNorm, instanceNormalize } from '../../src/models/instance-norm.js';
import { relError, useWasm } from '../helpers.js';

before(useWasm);

describe('InstanceNorm', () => {
  it('normalises each sample and channel over H and W (eps 1e-5, biased variance)', () => {
    const [n, h, w, c] = [2, 5, 4, 3];
    const x = tf.randomNormal([n, h, w, c], 3, 2, 'float32', 11);
    const y = new InstanceNorm().apply(x) as tf.Tensor;
    const xs = x.dataSync();
    const ys = y.dataSync();
    for (let b = 0; b < n; b++) {
      for (let ch = 0; ch < c; ch++) {
        const idx = (i: number) => b * h * w * c + i * c + ch;
        let mean = 0;
        for (let i = 0; i < h * w; i++) mean += xs[idx(i)] / (h * w);
        let v = 0;
        for (let i = 0; i < h * w; i++) v += (xs[idx(i)] - mean) ** 2 / (h * w);
        for (let i = 0; i < h * w; i++) {
          const expected = (xs[idx(i)] - mean) / Math.sqrt(v + 1e-5);
          assert.ok(Math.abs(ys[idx(i)] - expected) < 1e-4, `b${b} c${ch} i${i}`);
        }
      }
    }
    tf.dispose([x, y]);
  });

  it('has no weights unless affine, then gamma ~ N(1, 0.02) and beta = 0', () => {
    const plain = new InstanceNorm();
    plain.apply(tfl.input({ shape: [4, 4, 8] }));
    assert.equal(plain.countParams(), 0);
    const affine = new InstanceNorm({ affine: true, seed: 5 });
    affine.apply(tfl.input({ shape: [4, 4, 64] }));
    const [gamma, beta] = affine.getWeights();
    assert.equal(gamma.size, 64);
    assert.ok(Math.abs(tf.mean(gamma).dataSync()[0] - 1) < 0.01);
    assert.equal(tf.max(tf.abs(beta)).dataSync()[0], 0);
  });

  it('round-trips through its config', () => {
    const layer = new InstanceNorm({ epsilon: 1e-3, affine: true, name: 'n1' });
    const cfg = layer.getConfig();
    assert.equal(cfg.epsilon, 1e-3);
    assert.equal(cfg.affine, true);
    const back = tf.serialization.SerializationMap.getMap().classNameMap.InstanceNorm;
    assert.ok(back, 'InstanceNorm is registered for deserialisation');
  });
});

describe('instanceNormalize gradient', () => {
  it('matches autodiff through tf.moments, including a 1x1 map', () => {
    for (const shape of [
      [2, 6, 5, 3],
      [2, 1, 1, 4],
    ] as const) {
      const x = tf.randomNormal([...shape], 0.5, 2, 'float32', 21);
      const w = tf.randomNormal([...shape], 0, 1, 'float32', 22);
      const viaMoments = (t: tf.Tensor) => {
        const { mean, variance } = tf.moments(t, [1, 2], true);
        return tf.sum(tf.mul(tf.div(tf.sub(t, mean), tf.sqrt(tf.add(variance, 1e-5))), w));
      };
      const ours = (t: tf.Tensor) => tf.sum(tf.mul(instanceNormalize(t as tf.Tensor4D, 1e-5), w));
      const gRef = tf.grad(viaMoments)(x);
      const gOurs = tf.grad(ours)(x);
      assert.ok(relError(gOurs, gRef) < 1e-4, `shape ${shape}`);
    }
  });
});
