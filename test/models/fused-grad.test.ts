import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { fusedApply } from '../../src/models/fused.js';
import { patchDiscriminator } from '../../src/models/patchgan.js';
import { unetGenerator } from '../../src/models/unet.js';
import { relErr, useWasm } from '../helpers.js';

before(useWasm);

/**
 * Gradients of sum(model(inputs) * R) for every trainable variable, through `run`: the fused blocks
 * with their hand-written gradients, or the plain layers with tfjs autodiff.
 */
function grads(model: tfl.LayersModel, run: () => tf.Tensor, r: tf.Tensor): Float32Array[] {
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.mul(run(), r)) as tf.Scalar, vars);
  const out = vars.map((v) => Float32Array.from(grads[v.name]!.dataSync() as Float32Array));
  tf.dispose([value, ...Object.values(grads)]);
  return out;
}

function compare(model: tfl.LayersModel, inputs: tf.Tensor[]): void {
  const shape = (model.apply(inputs, { training: false }) as tf.Tensor).shape;
  const r = tf.randomNormal(shape, 0, 1, 'float32', 7);
  const fused = grads(model, () => fusedApply(model, inputs, false), r);
  const plain = grads(model, () => model.apply(inputs, { training: false }) as tf.Tensor, r);
  assert.equal(fused.length, plain.length);
  const maxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const scale = Math.max(...plain.map(maxAbs));
  for (const [i, g] of fused.entries()) {
    const name = model.trainableWeights[i]!.originalName;
    if (maxAbs(plain[i]!) < 1e-5 * scale) {
      // A bias right before instance norm: the norm removes it, so its true gradient is 0 and both
      // sides hold rounding noise only.
      assert.ok(maxAbs(g) < 1e-5 * scale, `${name}: zero gradient expected, got ${maxAbs(g)}`);
      continue;
    }
    const err = relErr(plain[i]!, g);
    assert.ok(err < 2e-3, `${name}: relative error ${err}`);
  }
  r.dispose();
}

describe('fused blocks: hand-written gradients against tfjs autodiff (dropout off)', () => {
  for (const size of [32, 64]) {
    // ngf 8: every block kind of the reference (the 8ngf cap, the 1x1 bottleneck) at an eighth of
    // its width; the gradients' formulas do not depend on the width.
    it(`generator at ${size} px, ngf 8 (convs, transposed convs, the 1x1 bottleneck)`, () => {
      const G = unetGenerator({ size, ngf: 8, norm: 'instance', seed: 3 });
      const x = tf.randomUniform([2, size, size, 3], -1, 1, 'float32', 1);
      compare(G, [x]);
      tf.dispose(x);
      G.dispose();
    });
  }

  it('residual generator with ngf 16, depth 4 and no dropout at 32 px (the ResidualOutput clip)', () => {
    const G = unetGenerator({ size: 32, ngf: 16, depth: 4, dropout: false, residual: true, seed: 5 });
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 4);
    compare(G, [x]);
    tf.dispose(x);
    G.dispose();
  });

  it('full-resolution residual generator (stride-1 3x3 head and output convs) at 32 px, ngf 8', () => {
    const G = unetGenerator({
      size: 32,
      ngf: 8,
      depth: 4,
      residual: true,
      residualBlur: 3,
      fullRes: true,
      seed: 7,
    });
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 6);
    compare(G, [x]);
    tf.dispose(x);
    G.dispose();
  });

  it('a generator built at 64 px on 32 px crops (--crop): the same weights at another side', () => {
    const G = unetGenerator({ size: 64, ngf: 8, depth: 5, residual: true, seed: 6 });
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 5);
    const y = fusedApply(G, [x], false);
    assert.deepEqual(y.shape, [2, 32, 32, 3]);
    y.dispose();
    compare(G, [x]);
    tf.dispose(x);
    G.dispose();
  });

  for (const kind of ['patch16', 'patch70'] as const) {
    it(`discriminator ${kind} at 64 px`, () => {
      const D = patchDiscriminator({ size: 64, kind, norm: 'instance', seed: 4 });
      const x = tf.randomUniform([2, 64, 64, 3], -1, 1, 'float32', 2);
      const c = tf.randomUniform([2, 64, 64, 3], -1, 1, 'float32', 3);
      compare(D, [x, c]);
      tf.dispose([x, c]);
      D.dispose();
    });
  }
});

describe('fused blocks: gradients nobody reads are skipped, the others unchanged', () => {
  it("D with weights: false gives the same gradient to its input (G's fake) as the full backward pass", () => {
    const D = patchDiscriminator({ size: 32, kind: 'patch16', norm: 'instance', seed: 8 });
    const fake = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 9);
    const cond = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 10);
    const inputGrad = (weights: boolean) =>
      tf.tidy(() =>
        tf.grad((f: tf.Tensor) => tf.sum(tf.square(fusedApply(D, [f, cond], true, { weights }))))(fake),
      );
    const full = inputGrad(true);
    const skipped = inputGrad(false);
    assert.ok((full.dataSync() as Float32Array).some((v) => v !== 0));
    assert.deepEqual(skipped.dataSync(), full.dataSync());
    tf.dispose([fake, cond, full, skipped]);
    D.dispose();
  });

  it('G with inputs: false gives the same weight gradients as the full backward pass', () => {
    const G = unetGenerator({
      size: 32,
      ngf: 8,
      depth: 4,
      dropout: false,
      residual: true,
      residualBlur: 1,
      seed: 11,
    });
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 12);
    const r = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 13);
    const full = grads(G, () => fusedApply(G, [x], true), r);
    const skipped = grads(G, () => fusedApply(G, [x], true, { inputs: false }), r);
    assert.equal(skipped.length, full.length);
    skipped.forEach((g, i) => {
      assert.deepEqual(g, full[i], G.trainableWeights[i]!.originalName);
    });
    tf.dispose([x, r]);
    G.dispose();
  });
});
