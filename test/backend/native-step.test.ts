import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { DEFAULT_CONFIG } from '../../src/train/config.js';
import { createTrainState, disposeTrainState, trainStep } from '../../src/train/step.js';
import { CPU_REF, registerCpuReference } from './cpu-reference.js';
import { nativeSkip, randomArray, relErr, rng, setupNative } from './native-helpers.js';

const SIZE = 64;
const LR = DEFAULT_CONFIG.lr;
const REF = CPU_REF;
type Shape4 = [number, number, number, number];

/**
 * One full pix2pix step (G update, D update, both fused-Adam on native) of a 64 px model on native
 * and on the cpu reference, from the same weights, data and dropout masks. ngf 16 (channels 16 to
 * 128, all in oneDNN's 16-channel blocks like the reference's): every kernel of the step at a
 * sixteenth of the reference's cpu time (the 256 px layer shapes are native-conv.test.ts's).
 */
async function stepOn(backend: string, a: Float32Array, b: Float32Array, batch: number) {
  await tf.setBackend(backend);
  const realRandom = Math.random;
  // Dropout draws its masks from Math.random-seeded generators: the same stream on both backends.
  Math.random = rng(42);
  try {
    const before = tf.memory().numTensors;
    const state = createTrainState({ ...DEFAULT_CONFIG, size: SIZE, ngf: 16 });
    const at = tf.tensor4d(a, [batch, SIZE, SIZE, 3]);
    const bt = tf.tensor4d(b, [batch, SIZE, SIZE, 3]);
    const losses = [await trainStep(state, at, bt)];
    const weights = [...state.G.trainableWeights, ...state.D.trainableWeights].map((w) => ({
      shape: w.shape,
      values: (w.read() as tf.Tensor).dataSync().slice(),
    }));
    const fake = tf.tidy(() => (state.G.apply(at, { training: false }) as tf.Tensor).dataSync().slice());
    tf.dispose([at, bt]);
    disposeTrainState(state);
    return { losses, weights, fake, leaked: tf.memory().numTensors - before };
  } finally {
    Math.random = realRandom;
  }
}

describe('native training step vs cpu (64 px)', { skip: nativeSkip }, () => {
  before(async () => {
    await setupNative();
    registerCpuReference();
  });

  test("the reference step's Conv2DBackpropFilter agrees with the cpu backend's", async () => {
    const cases: Array<[Shape4, Shape4, number, 'same' | 'valid']> = [
      [[2, 9, 9, 5], [4, 4, 5, 7], 2, 'same'],
      [[1, 10, 10, 6], [3, 3, 6, 4], 2, 'valid'],
      [[2, 4, 4, 8], [3, 3, 8, 1], 1, 'same'],
    ];
    for (const [xs, fs, stride, pad] of cases) {
      const outs: Float32Array[] = [];
      for (const backend of ['cpu', REF]) {
        await tf.setBackend(backend);
        const info = tf.backend_util.computeConv2DInfo(xs, fs, stride, 1, pad);
        const x = tf.tensor4d(randomArray(xs[0] * xs[1] * xs[2] * xs[3], 1), xs);
        const dy = tf.tensor4d(
          randomArray(
            info.outShape.reduce((p, q) => p * q),
            2,
          ),
          info.outShape as Shape4,
        );
        const dw = tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x, dy },
            { strides: stride, pad, dataFormat: 'NHWC', filterShape: fs },
          ) as tf.Tensor;
        outs.push(dw.dataSync() as Float32Array);
        tf.dispose([x, dy, dw]);
      }
      assert.ok(relErr(outs[0]!, outs[1]!) < 1e-5, `${xs} ${fs}: ${relErr(outs[0]!, outs[1]!)}`);
    }
  });

  test('one step: same losses, same weight updates, no leaked tensors', async () => {
    const batch = 2;
    const a = randomArray(batch * SIZE * SIZE * 3, 5);
    const b = randomArray(batch * SIZE * SIZE * 3, 6);
    const cpu = await stepOn(REF, a, b, batch);
    const nat = await stepOn('native', a, b, batch);
    assert.equal(nat.leaked, cpu.leaked, 'native leaves no more tensors than cpu');

    for (const [i, l] of nat.losses.entries()) {
      for (const k of ['gGan', 'gL1', 'd'] as const) {
        const ref = cpu.losses[i]![k];
        assert.ok(
          Math.abs(l[k] - ref) <= 1e-4 * Math.max(1, Math.abs(ref)),
          `step ${i + 1} ${k}: ${l[k]} vs ${ref}`,
        );
      }
    }
    // Adam's first step moves each weight by lr in the sign of its gradient: an element whose
    // gradient is ~0 may take either sign on either backend (2 lr apart), but no more, and nearly
    // all must agree far more closely.
    let within = 0;
    let total = 0;
    for (const [i, w] of nat.weights.entries()) {
      const ref = cpu.weights[i]!;
      assert.deepEqual(w.shape, ref.shape);
      for (let j = 0; j < w.values.length; j++) {
        const d = Math.abs(w.values[j]! - ref.values[j]!);
        assert.ok(d <= 2.2 * LR, `weight ${i} [${j}] differs by ${d}`);
        if (d <= 0.01 * LR) within++;
        total++;
      }
    }
    assert.ok(
      within / total > 0.999,
      `only ${((100 * within) / total).toFixed(3)}% of weights agree within lr/100`,
    );
    const e = relErr(cpu.fake, nat.fake);
    assert.ok(e < 1e-3, `generator output after the steps: relative error ${e}`);
  });
});
