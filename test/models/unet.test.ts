import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { loadModel, saveModel } from '../../src/models/io.js';
import { gaussianBlur, gaussianTaps } from '../../src/models/residual.js';
import { resolveUnetDepth, unetDepth, unetGenerator } from '../../src/models/unet.js';
import { tempDir, useWasm } from '../helpers.js';

before(useWasm);

describe('unetGenerator', () => {
  // The 256 px reference (54M weights, seconds to initialise) is built once for the tests that read it.
  let ref: tfl.LayersModel;
  before(() => {
    ref = unetGenerator({ size: 256 });
  });
  after(() => ref.dispose());

  it('has the reference parameter count at 256 (54,404,099, as PyTorch counts GeneratorUNet)', () => {
    const g = ref;
    assert.equal(g.countParams(), 54_404_099);
    assert.deepEqual(g.outputs[0].shape, [null, 256, 256, 3]);
    // 8 down levels: the bottleneck is 1x1x512.
    assert.deepEqual(g.getLayer('down8_act').outputShape, [null, 1, 1, 512]);
    assert.deepEqual(g.getLayer('up7_cat').outputShape, [null, 128, 128, 128]);
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
    const g = ref;
    const names = g.layers.map((l) => l.name);
    assert.ok(!names.includes('down1_norm') && !names.includes('down8_norm'));
    assert.ok(names.includes('down2_norm') && names.includes('up1_norm'));
    for (let i = 1; i <= 8; i++) assert.equal(names.includes(`down${i}_drop`), i >= 4, `down${i}`);
    for (let i = 1; i <= 7; i++) assert.equal(names.includes(`up${i}_drop`), i <= 4, `up${i}`);
    assert.equal((g.getLayer('down3_act').getConfig() as { alpha: number }).alpha, 0.2);
    assert.equal((g.getLayer('up3_act').getConfig() as { alpha: number }).alpha, 0.01);
    assert.equal((g.getLayer('down1_conv').getConfig() as { useBias: boolean }).useBias, false);
    assert.equal((g.getLayer('up8_deconv').getConfig() as { useBias: boolean }).useBias, true);
  });

  it('outputs tanh values in [-1, 1] of the input shape, and is reproducible from its seed', () => {
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 7);
    const g1 = unetGenerator({ size: 32, ngf: 8, seed: 3 });
    const g2 = unetGenerator({ size: 32, ngf: 8, seed: 3 });
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
    // ngf 16: down3 still holds 32k weights, so the sample's std is 0.02 within 1e-4.
    const g = unetGenerator({ size: 32, ngf: 16 });
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

  it('default options are the reference, weight for weight (checksum recorded before --ngf/--depth existed)', () => {
    const g = unetGenerator({ size: 32, seed: 1 });
    const same = unetGenerator({ size: 32, seed: 1, ngf: 64, depth: 5, dropout: true, residual: false });
    const sum = (m: tfl.LayersModel) => {
      const h = createHash('sha256');
      for (const w of m.getWeights()) h.update(new Uint8Array((w.dataSync() as Float32Array).slice().buffer));
      return h.digest('hex');
    };
    assert.equal(g.countParams(), 16_655_363);
    assert.equal(sum(g), '2a1505d8f0d7d9e7703dcd27a38220c40b0ee71d4ad93aa17dfd847238f945f1');
    assert.equal(sum(same), sum(g));
    assert.deepEqual(JSON.stringify(same.toJSON(null, false)), JSON.stringify(g.toJSON(null, false)));
    g.dispose();
    same.dispose();
  });
});

/** Parameters of a UNet with instance norm, counted by hand: 4x4 kernels, no bias but the last layer's. */
function analyticParams(ngf: number, depth: number): number {
  const c = (i: number) => Math.min(ngf * 2 ** (i - 1), 8 * ngf);
  let n = 0;
  for (let i = 1; i <= depth; i++) n += 16 * (i === 1 ? 3 : c(i - 1)) * c(i);
  for (let i = depth - 1; i >= 1; i--) n += 16 * (i === depth - 1 ? c(depth) : 2 * c(i + 1)) * c(i);
  // The last transposed conv reads up(depth-1) ++ down1, or down1 alone when depth is 1.
  return n + 16 * (depth === 1 ? 1 : 2) * c(1) * 3 + 3;
}

describe('unetGenerator options: --ngf, --depth, --no-dropout, --residual, --full-res', () => {
  it('ngf and depth set the widths and the levels: shapes and the analytic parameter count', () => {
    assert.equal(analyticParams(64, 8), 54_404_099);
    for (const [size, ngf, depth] of [
      [64, 16, 4],
      [64, 8, 6],
      [32, 32, 3],
      [32, 8, 1],
    ] as const) {
      const g = unetGenerator({ size, ngf, depth });
      const what = `size ${size} ngf ${ngf} depth ${depth}`;
      assert.equal(g.countParams(), analyticParams(ngf, depth), what);
      const side = size / 2 ** depth;
      const inner = Math.min(ngf * 2 ** (depth - 1), 8 * ngf);
      assert.deepEqual(g.getLayer(`down${depth}_act`).outputShape, [null, side, side, inner], what);
      assert.throws(() => g.getLayer(`down${depth + 1}_conv`));
      assert.deepEqual(g.getLayer('down1_conv').outputShape, [null, size / 2, size / 2, ngf], what);
      assert.deepEqual(g.outputs[0]!.shape, [null, size, size, 3]);
      const names = g.layers.map((l) => l.name);
      // The innermost level has no norm, as at full depth; the others keep theirs.
      assert.ok(!names.includes(`down${depth}_norm`) && !names.includes('down1_norm'), what);
      if (depth > 2) assert.ok(names.includes(`down${depth - 1}_norm`), what);
      g.dispose();
    }
    const full = unetGenerator({ size: 32, ngf: 8, depth: 0 });
    assert.equal(full.countParams(), analyticParams(8, 5));
    full.dispose();
  });

  it('fullRes: a stride-1 3x3 level at the full side before down1 and after the last up level; the analytic parameter count', () => {
    for (const [ngf, depth] of [
      [8, 5],
      [16, 3],
      [8, 1],
    ] as const) {
      const g = unetGenerator({ size: 32, ngf, depth, fullRes: true });
      const what = `ngf ${ngf} depth ${depth}`;
      const c1 = ngf;
      const skip = depth === 1 ? 1 : 2;
      // The plain UNet, with down1 reading ngf channels instead of 3, the last transposed conv giving
      // ngf channels (no bias) instead of 3, and the two 3x3 convs (head without bias, output with).
      const want =
        analyticParams(ngf, depth) +
        16 * (ngf - 3) * c1 +
        16 * skip * c1 * (ngf - 3) -
        3 +
        9 * 3 * ngf +
        9 * 2 * ngf * 3 +
        3;
      assert.equal(g.countParams(), want, what);
      assert.deepEqual(g.getLayer('full_act').outputShape, [null, 32, 32, ngf], what);
      assert.deepEqual(g.getLayer(`up${depth}_cat`).outputShape, [null, 32, 32, 2 * ngf], what);
      assert.deepEqual(g.getLayer('full_out').outputShape, [null, 32, 32, 3], what);
      assert.equal((g.getLayer('full_out').getConfig() as { strides: number[] }).strides[0], 1);
      // down1 reads the head, not the image.
      assert.equal(g.getLayer('down1_conv').inboundNodes[0]!.inboundLayers[0]!.name, 'full_act');
      g.dispose();
    }
  });

  it('dropout sits on the 8ngf-channel levels, and --no-dropout leaves no Dropout layer', () => {
    const g = unetGenerator({ size: 64, ngf: 16 });
    const drops = g.layers.filter((l) => l.getClassName() === 'Dropout').map((l) => l.name);
    assert.deepEqual(drops, ['down4_drop', 'down5_drop', 'down6_drop', 'up1_drop', 'up2_drop']);
    g.dispose();
    const none = unetGenerator({ size: 64, ngf: 16, dropout: false });
    assert.equal(none.layers.filter((l) => l.getClassName() === 'Dropout').length, 0);
    assert.equal(none.countParams(), analyticParams(16, 6));
    none.dispose();
  });

  it('rejects a depth the image cannot take with a one-line reason', () => {
    assert.equal(resolveUnetDepth(64, 0), 6);
    assert.equal(resolveUnetDepth(64, 3), 3);
    for (const depth of [7, -1, 2.5]) {
      assert.throws(() => resolveUnetDepth(64, depth), /--depth .* does not fit 64 px images: use 1 to 6/);
    }
  });

  it('residual: output = clip(input + r, -1, 1) with r the last transposed conv, no tanh', () => {
    const g = unetGenerator({ size: 32, ngf: 8, depth: 4, dropout: false, residual: true, seed: 2 });
    const out = g.getLayer('output');
    assert.equal(out.getClassName(), 'ResidualOutput');
    assert.ok(!g.layers.some((l) => l.getClassName() === 'Activation'));
    const r = tfl.model({ inputs: g.inputs, outputs: g.getLayer('up4_deconv').output as tfl.SymbolicTensor });
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 5);
    const y = g.predict(x) as tf.Tensor;
    const want = tf.clipByValue(tf.add(x, r.predict(x) as tf.Tensor), -1, 1);
    assert.deepEqual(y.dataSync(), want.dataSync());
    // Some outputs are clipped, so the clip is exercised.
    assert.ok((y.dataSync() as Float32Array).some((v) => v === 1 || v === -1));
    // A zero last layer makes G the identity.
    g.getLayer('up4_deconv').setWeights(
      g
        .getLayer('up4_deconv')
        .getWeights()
        .map((w) => tf.zerosLike(w)),
    );
    const id = g.predict(x) as tf.Tensor;
    assert.deepEqual(id.dataSync(), x.dataSync());
    tf.dispose([x, y, want, id]);
    g.dispose();
  });

  it('a saved and reloaded residual generator gives identical outputs', async () => {
    const dir = await tempDir('p2p-residual-');
    const g = unetGenerator({ size: 32, ngf: 8, residual: true, seed: 4 });
    await saveModel(g, dir);
    const json = await readFile(join(dir, 'model.json'), 'utf8');
    assert.match(json, /"class_name":"ResidualOutput","config":\{[^}]*"min":-1,"max":1/);
    const g2 = await loadModel(dir);
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 6);
    const y1 = g.predict(x) as tf.Tensor;
    const y2 = g2.predict(x) as tf.Tensor;
    assert.deepEqual(y2.dataSync(), y1.dataSync());
    tf.dispose([x, y1, y2]);
    g.dispose();
    g2.dispose();
  });

  it('--residual-blur: output = clip(blur(input) + r, -1, 1), the blur a mirrored-border Gaussian (checked against a plain loop)', () => {
    const sigma = 1.5;
    const taps = gaussianTaps(sigma);
    assert.equal(taps.length, 2 * Math.ceil(3 * sigma) + 1);
    assert.ok(Math.abs(taps.reduce((a, b) => a + b, 0) - 1) < 1e-6);
    // Reference: the separable Gaussian with reflected indices (-1 -> 1, n -> n - 2), in double.
    const [h, w, c] = [12, 10, 2];
    const x = tf.randomUniform([1, h, w, c], -1, 1, 'float32', 9) as tf.Tensor4D;
    const xs = x.dataSync();
    const r = (taps.length - 1) / 2;
    const reflect = (i: number, n: number) => (i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
    const want = new Float64Array(h * w * c);
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++)
        for (let ch = 0; ch < c; ch++) {
          let sum = 0;
          for (let i = -r; i <= r; i++)
            for (let j = -r; j <= r; j++)
              sum += taps[i + r]! * taps[j + r]! * xs[(reflect(y + i, h) * w + reflect(xx + j, w)) * c + ch]!;
          want[(y * w + xx) * c + ch] = sum;
        }
    const got = gaussianBlur(x, sigma).dataSync();
    assert.ok(
      got.every((v, i) => Math.abs(v - want[i]!) < 1e-5),
      'blur differs from the reference',
    );
    // A flat image stays flat up to its borders (a zero pad would darken them).
    const flat = gaussianBlur(tf.fill([1, 16, 16, 3], 0.7) as tf.Tensor4D, 3).dataSync();
    assert.ok(flat.every((v) => Math.abs(v - 0.7) < 1e-5));

    const g = unetGenerator({
      size: 32,
      ngf: 8,
      depth: 4,
      dropout: false,
      residual: true,
      residualBlur: 2,
      seed: 2,
    });
    const rOut = tfl.model({
      inputs: g.inputs,
      outputs: g.getLayer('up4_deconv').output as tfl.SymbolicTensor,
    });
    const x32 = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
    const y = g.predict(x32) as tf.Tensor;
    const wantY = tf.clipByValue(tf.add(gaussianBlur(x32, 2), rOut.predict(x32) as tf.Tensor), -1, 1);
    assert.deepEqual(y.dataSync(), wantY.dataSync());
    assert.equal(
      g.countParams(),
      unetGenerator({ size: 32, ngf: 8, depth: 4, dropout: false, residual: true, seed: 2 }).countParams(),
    );
    tf.dispose([x, x32, y, wantY]);
    g.dispose();
  });
});
