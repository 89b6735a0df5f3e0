import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { patchDiscriminator } from '../../src/models/patchgan.js';
import { useWasm } from '../helpers.js';

before(useWasm);

describe('patchDiscriminator', () => {
  it('patch16 maps 256 px to a 16x16 patch map with the reference parameter count', () => {
    const d = patchDiscriminator({ size: 256, kind: 'patch16' });
    assert.deepEqual(d.outputs[0].shape, [null, 16, 16, 1]);
    // 3x3 convs with bias: 6->64->128->256->512, then 512->1.
    const count =
      [6 * 64, 64 * 128, 128 * 256, 256 * 512, 512].reduce((n, io) => n + io * 9, 0) +
      64 +
      128 +
      256 +
      512 +
      1;
    assert.equal(d.countParams(), count);
    d.dispose();
  });

  it('ndf sets the stage widths (ndf, 2ndf, 4ndf, 8ndf; the reference is 64), the map unchanged', () => {
    const d = patchDiscriminator({ size: 256, kind: 'patch16', ndf: 8 });
    assert.deepEqual(d.outputs[0].shape, [null, 16, 16, 1]);
    const widths = ['stage1', 'stage2', 'stage3', 'stage4'].map(
      (s) => (d.getLayer(`${s}_conv`).outputShape as number[])[3],
    );
    assert.deepEqual(widths, [8, 16, 32, 64]);
    const count =
      [6 * 8, 8 * 16, 16 * 32, 32 * 64, 64].reduce((n, io) => n + io * 9, 0) + 8 + 16 + 32 + 64 + 1;
    assert.equal(d.countParams(), count);
    d.dispose();
    assert.throws(() => patchDiscriminator({ size: 32, ndf: 0 }), /--ndf must be an integer >= 1 \(got 0\)/);
  });

  it("patch70 maps 256 px to the paper's 30x30 map", () => {
    const d = patchDiscriminator({ size: 256, kind: 'patch70' });
    assert.deepEqual(d.outputs[0].shape, [null, 30, 30, 1]);
    assert.equal(d.countParams(), 2_767_809);
    d.dispose();
  });

  it('scales with the image: 64 px gives 4x4 (patch16) and 6x6 (patch70)', () => {
    const x = tf.randomUniform([2, 64, 64, 3], -1, 1);
    for (const [kind, side] of [
      ['patch16', 4],
      ['patch70', 6],
    ] as const) {
      const d = patchDiscriminator({ size: 64, kind });
      const y = d.predict([x, x]) as tf.Tensor;
      assert.deepEqual(y.shape, [2, side, side, 1]);
      y.dispose();
      d.dispose();
    }
    x.dispose();
  });

  it('pads 3x3 stride-2 convs symmetrically, as PyTorch padding=1 does', () => {
    // A 4x4 input with a single 1 at (0,0): with pad 1 on top/left the first output cell's
    // kernel tap (1,1) sees it; tfjs 'same' would pad bottom/right only and put it at tap (0,0).
    const d = patchDiscriminator({ size: 32, kind: 'patch16', norm: 'none' });
    const names = d.layers.map((l) => l.name);
    assert.ok(names.includes('stage1_pad'));
    assert.equal((d.getLayer('stage1_conv').getConfig() as { padding: string }).padding, 'valid');
    assert.equal((d.getLayer('patch_conv').getConfig() as { padding: string }).padding, 'same');
    d.dispose();
  });

  it('judges the image with its condition: changing only the condition changes the output', () => {
    const d = patchDiscriminator({ size: 32 });
    const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 1);
    const c1 = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 2);
    const c2 = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 3);
    const y1 = d.predict([x, c1]) as tf.Tensor;
    const y2 = d.predict([x, c2]) as tf.Tensor;
    assert.ok(tf.max(tf.abs(tf.sub(y1, y2))).dataSync()[0] > 1e-4);
    tf.dispose([x, c1, c2, y1, y2]);
    d.dispose();
  });
});
