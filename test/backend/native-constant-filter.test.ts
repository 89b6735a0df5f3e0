// Every conv here runs in oneDNN's blocked layout, whose filter is a reorder of tfjs's HWIO array: the
// case where a constant filter's reordered copy is kept. Read once, when the addon first runs a conv.
process.env['P2P_CONV_LAYOUT'] = '2';

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { releaseConstantFilters } from '../../src/backend/index.js';
import { loadAddon } from '../../src/backend/native-addon.js';
import { generate } from '../../src/models/fused.js';
import { DEFAULT_CONFIG } from '../../src/train/config.js';
import { createTrainState, disposeTrainState, trainStep } from '../../src/train/step.js';
import { nativeSkip, randomArray, relErr, setupNative } from './native-helpers.js';

// A G encoder level at 16 px: [n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, padTop, padLeft, dh, dw, mode].
const PARAMS = [1, 16, 16, 32, 8, 8, 64, 4, 4, 2, 2, 1, 1, 1, 1, 2];
const X = 16 * 16 * 32;
const Y = 8 * 8 * 64;
const W = 4 * 4 * 32 * 64;

describe('constant filters on the native backend', { skip: nativeSkip }, () => {
  before(async () => {
    await setupNative();
    await tf.setBackend('native');
  });

  test('a kept filter is reordered once, read until forgotten, and freed with its id', () => {
    const addon = loadAddon();
    const x = randomArray(X, 1);
    const dy = randomArray(Y, 2);
    const w = randomArray(W, 3);
    const run = (weights: Float32Array, id?: number) => {
      const y = new Float32Array(Y);
      const dx = new Float32Array(X);
      addon.convForward(PARAMS, x, weights, null, y, id);
      addon.convBackwardData(PARAMS, dy, weights, dx, id);
      return { y, dx };
    };
    const fresh = run(w);
    const before = addon.convKeptWeightBytes();
    const kept = run(w, 7);
    assert.deepEqual(kept, fresh, 'the kept copy is the same reorder');
    assert.ok(addon.convKeptWeightBytes() >= before + 2 * W * 4, 'a copy per pass is kept');

    // The contract: a kept filter is not read again. Changing it without forgetting its id keeps
    // the old results, which shows the copy is what the conv reads.
    const w2 = randomArray(W, 4);
    w.set(w2);
    assert.deepEqual(run(w, 7), fresh);

    addon.convForgetWeights(7);
    assert.equal(addon.convKeptWeightBytes(), before);
    const updated = run(w, 7);
    assert.deepEqual(updated, run(w2));
    assert.ok(relErr(updated.y, fresh.y) > 0.1);
    addon.convForgetWeights(7);
  });

  test('inference after a training step reads the weights Adam updated in place; release frees the copies', async () => {
    const addon = loadAddon();
    const state = createTrainState({ ...DEFAULT_CONFIG, size: 32, ngf: 8 });
    const [x, a, b] = [5, 6, 7].map((seed) =>
      tf.tensor4d(randomArray(2 * 32 * 32 * 3, seed), [2, 32, 32, 3]),
    );
    const before = addon.convKeptWeightBytes();
    tf.tidy(() => generate(state.G, x!)).dispose();
    assert.ok(addon.convKeptWeightBytes() > before, 'inference keeps the reordered filters');
    releaseConstantFilters(state.optG.variables);
    assert.equal(addon.convKeptWeightBytes(), before, 'releaseConstantFilters frees them');

    const y1 = tf.tidy(() => generate(state.G, x!));

    await trainStep(state, a!, b!);
    const y2 = tf.tidy(() => generate(state.G, x!));
    // tfjs-layers' own path: the same convs without the constant-filter attr, so reordered per call.
    const ref = tf.tidy(() => state.G.predict(x!) as tf.Tensor4D);
    const [v1, v2, vr] = [y1, y2, ref].map((t) => t.dataSync());
    assert.ok(relErr(v2!, vr!) < 1e-4, `after the step: ${relErr(v2!, vr!)} from tfjs-layers' output`);
    assert.ok(relErr(v1!, v2!) > 1e-3, 'the step changed the output');

    tf.dispose([x!, a!, b!, y1, y2, ref]);
    disposeTrainState(state);
    assert.equal(addon.convKeptWeightBytes(), before, 'disposing the model frees its kept filters');
  });
});
