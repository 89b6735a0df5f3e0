import assert from 'node:assert/strict';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { listCheckpoints, pruneCheckpoints, verifyCheckpoint } from '../../src/run/checkpoints.js';
import { loadCheckpoint, saveCheckpoint } from '../../src/train/checkpoint.js';
import { DEFAULT_CONFIG } from '../../src/train/config.js';
import { createTrainState, disposeTrainState, trainStep } from '../../src/train/step.js';
import { trainStateValues as everything, TINY, tempDir, useWasm } from '../helpers.js';

before(useWasm);

describe('checkpoint', () => {
  it('restores the weights and the optimizer moments exactly, into a differently initialised state', async () => {
    const config = { ...DEFAULT_CONFIG, ...TINY };
    const s = createTrainState(config);
    const a = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const b = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
    await trainStep(s, a, b);
    await trainStep(s, a, b);
    const saved = everything(s);
    const dir = await saveCheckpoint(await tempDir('p2p-ckpt-'), s, {
      epoch: 1,
      step: 2,
      time: new Date().toISOString(),
    });
    const other = createTrainState({ ...config, seed: 99 });
    const before = everything(other);
    assert.ok(
      before.some((x, i) => x.some((v, j) => v !== saved[i]![j])),
      'the fresh state differs',
    );
    const meta = await loadCheckpoint(dir, other);
    assert.equal(meta.step, 2);
    assert.equal(other.optG.step, 2);
    assert.equal(other.optD.step, 2);
    const restored = everything(other);
    assert.equal(restored.length, saved.length);
    for (const [i, x] of restored.entries()) assert.deepEqual(x, saved[i], `tensor ${i}`);
    // The moments are not all zero: the test compares real optimizer state.
    assert.ok(saved.slice(-4).some((x) => x.some((v) => v !== 0)));
    tf.dispose([a, b]);
    disposeTrainState(s);
    disposeTrainState(other);
  });

  it('names a file whose bytes changed after it was written (same size: the SHA-256 in meta.json tells)', async () => {
    const s = createTrainState({ ...DEFAULT_CONFIG, ...TINY });
    const dir = await saveCheckpoint(await tempDir('p2p-ckpt-'), s, {
      epoch: 1,
      step: 1,
      time: new Date().toISOString(),
    });
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8'));
    assert.ok(meta.files['generator/weights.bin'].sha256.match(/^[0-9a-f]{64}$/));
    assert.ok(meta.files['optimizer-d.bin'].bytes > 0);
    const weights = join(dir, 'discriminator', 'weights.bin');
    const buf = await readFile(weights);
    buf[100] = buf[100]! ^ 0xff;
    await writeFile(weights, buf);
    await assert.rejects(
      loadCheckpoint(dir, s),
      /discriminator\/weights.bin does not match its SHA-256 in meta.json/,
    );
    // The generator alone (what eval reads) is still whole.
    assert.equal((await verifyCheckpoint(dir, ['generator'])).step, 1);
    disposeTrainState(s);
  });

  it('--keep N removes older epoch checkpoints but the last N, the protected (best) and latest', async () => {
    const run = await tempDir('p2p-keep-');
    for (let e = 1; e <= 5; e++) await mkdir(join(run, 'checkpoints', `epoch-000${e}`), { recursive: true });
    await symlink('epoch-0005', join(run, 'checkpoints', 'latest'));
    const gone = await pruneCheckpoints(run, 2, [1]);
    assert.deepEqual(
      gone.map((d) => basename(d)),
      ['epoch-0002', 'epoch-0003'],
    );
    assert.deepEqual(
      (await listCheckpoints(run)).map((c) => c.epoch),
      [1, 4, 5],
    );
    assert.deepEqual(await pruneCheckpoints(run, 0), [], '0 keeps all');
  });
});
