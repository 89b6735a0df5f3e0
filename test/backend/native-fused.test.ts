import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import {
  instanceNormAct,
  instanceNormActGrad,
  leakyReluGrad,
  nativeFusedAvailable,
} from '../../src/backend/native-fused.js';
import { nativeSkip, randomArray, relErr, setupNative } from './native-helpers.js';

const TOL = 1e-5;

/** The same maths in tfjs ops (as src/models/fused.ts writes it), run on the cpu backend. */
function reference(zv: Float32Array, gv: Float32Array, shape: number[], eps: number, alpha: number | null) {
  return tf.tidy(() => {
    const z = tf.tensor4d(zv, shape as [number, number, number, number]);
    const gIn = tf.tensor4d(gv, shape as [number, number, number, number]);
    const { mean, variance } = tf.moments(z, [1, 2], true);
    const rs = tf.rsqrt(tf.add(variance, eps));
    const y0 = tf.mul(tf.sub(z, mean), rs);
    const h = alpha !== null ? tf.leakyRelu(y0, alpha) : y0;
    let g: tf.Tensor = gIn;
    let y: tf.Tensor = h;
    if (alpha !== null) {
      const positive = tf.greater(h, 0);
      g = tf.where(positive, g, tf.mul(g, alpha));
      y = tf.where(positive, h, tf.div(h, alpha));
    }
    const meanG = tf.mean(g, [1, 2], true);
    const meanGY = tf.mean(tf.mul(g, y), [1, 2], true);
    const dz = tf.mul(tf.sub(tf.sub(g, meanG), tf.mul(y, meanGY)), rs);
    return [h, rs, dz].map((t) => t.dataSync().slice());
  });
}

describe('native fused instance norm + LeakyReLU', { skip: nativeSkip }, () => {
  before(setupNative);

  test('forward and backward match the tfjs formulation at the models shapes', async () => {
    const cases: Array<[number[], number | null]> = [
      [[1, 64, 64, 64], 0.2],
      [[2, 16, 16, 256], 0.01],
      [[3, 2, 2, 512], 0.2],
      [[2, 16, 16, 24], null],
      [[16, 4, 4, 512], 0.2],
    ];
    for (const [i, [shape, alpha]] of cases.entries()) {
      const n = shape.reduce((a, b) => a * b);
      // An offset and scale per case, so the mean and variance are not trivially 0 and 1.
      const zv = randomArray(n, 10 + i, 3).map((v) => v + 0.5 * i);
      const gv = randomArray(n, 20 + i);
      await tf.setBackend('cpu');
      const [hRef, rsRef, dzRef] = reference(zv, gv, shape, 1e-5, alpha);
      await tf.setBackend('native');
      assert.ok(nativeFusedAvailable());
      const before = tf.memory().numTensors;
      const [h, rs, dz] = tf.tidy(() => {
        const z = tf.tensor4d(zv, shape as [number, number, number, number]);
        const g = tf.tensor4d(gv, shape as [number, number, number, number]);
        const [ho, rso] = instanceNormAct(z, 1e-5, alpha);
        assert.deepEqual(rso.shape, [shape[0], 1, 1, shape[3]]);
        const dzo = instanceNormActGrad(g, ho, rso, alpha);
        return [ho, rso, dzo].map((t) => t.dataSync().slice());
      });
      assert.equal(tf.memory().numTensors, before, 'tensors leaked');
      for (const [what, r, o] of [
        ['h', hRef, h],
        ['rs', rsRef, rs],
        ['dz', dzRef, dz],
      ] as const) {
        const e = relErr(r!, o!);
        assert.ok(e < TOL, `${shape} alpha ${alpha} ${what}: relative error ${e.toExponential(2)}`);
      }
    }
  });

  test('a map whose mean is far from 0 keeps its variance and its normalised values (double reference)', async () => {
    const [n, hw, c] = [2, 256, 8];
    // Values 1e4 + 0.1 u: float32 spaces 1e4 by 1e-3, so a mean stored as a float is off by up to 5e-4.
    const zv = randomArray(n * hw * c, 31, 0.1).map((v) => v + 1e4);
    const alpha = 0.2;
    const hRef = new Float64Array(zv.length);
    const rsRef = new Float64Array(n * c);
    for (let s = 0; s < n; s++) {
      for (let j = 0; j < c; j++) {
        const at = (p: number) => zv[(s * hw + p) * c + j]!;
        let m = 0;
        for (let p = 0; p < hw; p++) m += at(p) / hw;
        let v = 0;
        for (let p = 0; p < hw; p++) v += (at(p) - m) ** 2 / hw;
        const r = 1 / Math.sqrt(v + 1e-5);
        rsRef[s * c + j] = r;
        for (let p = 0; p < hw; p++) {
          const y = (at(p) - m) * r;
          hRef[(s * hw + p) * c + j] = y > 0 ? y : alpha * y;
        }
      }
    }
    await tf.setBackend('native');
    const [h, rs] = tf.tidy(() =>
      instanceNormAct(tf.tensor4d(zv, [n, 16, 16, c]), 1e-5, alpha).map((t) => t.dataSync().slice()),
    );
    assert.ok(relErr(rsRef, rs!) < 1e-5, `rs: ${relErr(rsRef, rs!)}`);
    assert.ok(relErr(hRef, h!) < 1e-4, `h: ${relErr(hRef, h!)}`);
  });

  test('is unavailable on other backends, and rejects mismatched shapes', async () => {
    await tf.setBackend('cpu');
    assert.equal(nativeFusedAvailable(), false);
    await tf.setBackend('native');
    const h = tf.zeros([1, 4, 4, 8]) as tf.Tensor4D;
    const rs = tf.ones([1, 1, 1, 4]) as tf.Tensor4D;
    assert.throws(() => instanceNormActGrad(h, h, rs, 0.2), /do not match/);
    assert.throws(() => leakyReluGrad(h, rs, 0.2), /do not match/);
    tf.dispose([h, rs]);
  });

  test("LeakyReLU's gradient from its output matches tfjs's where(h > 0, g, alpha g)", async () => {
    const shape: [number, number, number, number] = [2, 33, 17, 64];
    const n = shape.reduce((a, b) => a * b);
    const xv = randomArray(n, 31, 2);
    const gv = randomArray(n, 32);
    const run = () =>
      tf.tidy(() => {
        const h = tf.leakyRelu(tf.tensor4d(xv, shape), 0.2) as tf.Tensor4D;
        const g = tf.tensor4d(gv, shape);
        const dz =
          tf.getBackend() === 'native'
            ? leakyReluGrad(g, h, 0.2)
            : tf.where(tf.greater(h, 0), g, tf.mul(g, 0.2));
        return dz.dataSync().slice();
      });
    await tf.setBackend('cpu');
    const ref = run();
    await tf.setBackend('native');
    const got = run();
    assert.ok(
      ref.some((v, i) => v !== gv[i]),
      'some inputs are negative',
    );
    assert.deepEqual(got, ref);
  });
});
