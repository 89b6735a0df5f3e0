import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { loadModel, saveModel } from '../../src/models/io.js';
import { patchDiscriminator } from '../../src/models/patchgan.js';
import { unetGenerator } from '../../src/models/unet.js';
import { tempDir, useWasm } from '../helpers.js';

before(useWasm);

describe('saveModel / loadModel', () => {
  it('reloads the generator (with InstanceNorm) giving identical outputs', async () => {
    const dir = await tempDir('p2p-io-');
    const g = unetGenerator({ size: 64, ngf: 8, seed: 9 });
    await saveModel(g, dir);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
    assert.equal(json.format, 'layers-model');
    assert.deepEqual(json.weightsManifest[0].paths, ['weights.bin']);
    const g2 = await loadModel(dir);
    const x = tf.randomUniform([1, 64, 64, 3], -1, 1, 'float32', 4);
    const y1 = g.predict(x) as tf.Tensor;
    const y2 = g2.predict(x) as tf.Tensor;
    assert.deepEqual(y2.dataSync(), y1.dataSync());
    assert.ok(g2.layers.some((l) => l.getClassName() === 'InstanceNorm'));
    tf.dispose([x, y1, y2]);
    g.dispose();
    g2.dispose();
  });

  it('reloads a two-input discriminator', async () => {
    const dir = await tempDir('p2p-io-');
    const d = patchDiscriminator({ size: 32, kind: 'patch70' });
    await saveModel(d, dir);
    const d2 = await loadModel(dir);
    const x = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 4);
    const y1 = d.predict([x, x]) as tf.Tensor;
    const y2 = d2.predict([x, x]) as tf.Tensor;
    assert.deepEqual(y2.dataSync(), y1.dataSync());
    tf.dispose([x, y1, y2]);
  });

  it('fails with the path when the directory holds no model', async () => {
    const dir = await tempDir('p2p-io-');
    await assert.rejects(loadModel(dir), /cannot read .*model\.json/);
  });
});
