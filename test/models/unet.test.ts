import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { unetDepth, unetGenerator } from '../../src/models/unet.js';
import { useWasm } from '../helpers.js';

before(useWasm);

describe('unetGenerator', () => {
  it('has the reference parameter count at 256 (54,404,099, as PyTorch counts GeneratorUNet)', () => {
    const g = unetGenerator({ size: 256 });
    assert.equal(g.countParams(), 54_404_099);
    assert.deepEqual(g.outputs[0].shape, [null, 256, 256, 3]);
    // 8 down levels: the bottleneck is 1x1x512.
    assert.deepEqual(g.getLayer('down8_act').outputShape, [null, 1, 1, 512]);
    assert.deepEqual(g.getLayer('up7_cat').outputShape, [null, 128, 128, 128]);
    g.dispose();
  });

  it('follows the image size with log2(size) levels: 64 px has 6', () => {
    const g = unetGenerator({ size: 64 });
    assert.equal(unetDepth(64), 6);
    assert.deepEqual(g.getLayer('down6_act').outputShape, [null, 1, 1, 512]);
    assert.throws(() => g.getLayer('down7_conv'));
    // Same blocks as at 256 minus two inner 512-channel levels (4,194,304 weights each way).
    assert.equal(g.countParams(), 54_404_099 - 2 * 512 * 512 * 16 - 2 * 1024 * 512 * 16);
    g.dispose();
  });

  it('marks norm, slopes and dropout as the reference does', () => {
    const g = unetGenerator({ size: 256 });
    const names = g.layers.map((l) => l.name);
    assert.ok(!names.includes('down1_norm') && !names.includes('down8_norm'));
    assert.ok(names.includes('down2_norm') && names.includes('up1_norm'));
    for (let i = 1; i <= 8; i++) assert.equal(names.includes(`down${i}_drop`), i >= 4, `down${i}`);
    for (let i = 1; i <= 7; i++) assert.equal(names.includes(`up${i}_drop`), i <= 4, `up${i}`);
    assert.equal((g.getLayer('down3_act').getConfig() as { alpha: number }).alpha, 0.2);
    assert.equal((g.getLayer('up3_act').getConfig() as { alpha: number }).alpha, 0.01);
    assert.equal((g.getLayer('down1_conv').getConfig() as { useBias: boolean }).useBias, false);
    assert.equal((g.getLayer('up8_deconv').getConfig() as { useBias: boolean }).useBias, true);
    g.dispose();
  });

  it('outputs tanh values in [-1, 1] of the input shape, and is reproducible from its seed', () => {
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 7);
    const g1 = unetGenerator({ size: 32, seed: 3 });
    const g2 = unetGenerator({ size: 32, seed: 3 });
    const y1 = g1.predict(x) as tf.Tensor;
    const y2 = g2.predict(x) as tf.Tensor;
    assert.deepEqual(y1.shape, [2, 32, 32, 3]);
    assert.ok(tf.max(tf.abs(y1)).dataSync()[0] <= 1);
    assert.deepEqual(y1.dataSync(), y2.dataSync());
    tf.dispose([x, y1, y2]);
    g1.dispose();
    g2.dispose();
  });

  it('initialises conv weights from N(0, 0.02)', () => {
    const g = unetGenerator({ size: 32 });
    const w = g.getLayer('down3_conv').getWeights()[0];
    const { mean, variance } = tf.moments(w);
    assert.ok(Math.abs(mean.dataSync()[0]) < 1e-3);
    assert.ok(Math.abs(Math.sqrt(variance.dataSync()[0]) - 0.02) < 1e-3);
    tf.dispose([mean, variance]);
    g.dispose();
  });

  it('rejects sizes that are not a power of two >= 32 with a clear message', () => {
    for (const size of [16, 100, 0]) {
      assert.throws(() => unetDepth(size), /image size .* power of two from 32/);
    }
  });
});
