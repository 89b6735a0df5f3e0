import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { validateConfig } from '../../src/train/config.js';
import { train } from '../../src/train/loop.js';
import { createTrainState } from '../../src/train/step.js';
import { readMetrics, useWasm } from '../helpers.js';

before(useWasm);

describe('train loop', () => {
  let data: string;
  before(async () => {
    data = join(await mkdtemp(join(tmpdir(), 'p2p-loop-')), 'data');
    await writeSyntheticDataset(data, { count: 10, size: 32, seed: 3 });
  });

  it('writes config, per-step metrics, a checkpoint and a sample grid per epoch, and resumes', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'p2p-run-')), 'run');
    const config = validateConfig({ data, out, size: 32, batchSize: 4, epochs: 2, maxStepsPerEpoch: 2 });
    const steps: number[] = [];
    const epochs = await train(config, false, { onStep: (e) => steps.push(e.globalStep) });
    assert.deepEqual(steps, [1, 2, 3, 4]);
    assert.equal(epochs.length, 2);

    const saved = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    assert.equal(saved.config.batchSize, 4);
    // --micro-batch not given: the value train chose (the whole batch fits at 32 px) is recorded.
    assert.equal(config.microBatch, 0);
    assert.equal(saved.config.microBatch, 4);
    assert.match(saved.dataset.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(saved.backend, 'wasm');
    const lines = await readMetrics(out);
    assert.equal(lines.length, 4);
    for (const l of lines)
      for (const k of ['g_gan', 'g_l1', 'd_loss', 'images_per_s']) assert.ok(Number.isFinite(l[k]), k);

    const ckpt = join(out, 'checkpoints');
    assert.equal(await readlink(join(ckpt, 'latest')), 'epoch-0002');
    assert.ok(existsSync(join(ckpt, 'epoch-0001', 'generator', 'model.json')));
    // Only the latest checkpoint keeps the optimizer moments.
    assert.ok(!existsSync(join(ckpt, 'epoch-0001', 'optimizer-g.bin')));
    assert.ok(existsSync(join(ckpt, 'epoch-0002', 'optimizer-g.bin')));
    const grid = await sharp(join(out, 'samples', 'epoch-0002.png')).metadata();
    // Two test pairs (8:2 of 10) as rows; input | target | output as columns.
    assert.deepEqual([grid.width, grid.height], [3 * 32, 2 * 32]);

    // A checkpoint restores the weights and the optimizer step exactly.
    const s = createTrainState({ ...config, seed: 99 });
    const meta = await loadCheckpoint(join(ckpt, 'epoch-0002'), s);
    assert.equal(meta.step, 4);
    assert.equal(s.optG.step, 4);

    await assert.rejects(train(config, false), /already holds a training run: add --resume/);
    const more = await train({ ...config, epochs: 3 }, true);
    assert.deepEqual(
      more.map((e) => e.epoch),
      [3],
    );
    const last = JSON.parse(await readFile(join(ckpt, 'epoch-0003', 'meta.json'), 'utf8'));
    assert.equal(last.step, 6);
    assert.equal(last.images, 6 * 4);
    assert.ok(last.trainSeconds > 0);
  });

  it('refuses to resume a run on a dataset whose files changed since it started', async () => {
    const root = await mkdtemp(join(tmpdir(), 'p2p-run-'));
    const own = join(root, 'data');
    await writeSyntheticDataset(own, { count: 10, size: 32, seed: 3 });
    const config = validateConfig({
      data: own,
      out: join(root, 'run'),
      size: 32,
      batchSize: 4,
      epochs: 1,
      maxStepsPerEpoch: 1,
    });
    await train(config, false);
    await writeSyntheticDataset(own, { count: 10, size: 32, seed: 4 });
    await assert.rejects(train({ ...config, epochs: 2 }, true), /has changed since the run in .* started/);
  });

  it('refuses a dataset of smaller images than --size, and a missing folder, with one-line reasons', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'p2p-run-')), 'run');
    await assert.rejects(
      train(validateConfig({ data, out, size: 64 }), false),
      /holds 32 px images, smaller than --size 64/,
    );
    await assert.rejects(train(validateConfig({ data: join(data, 'nope'), out }), false), /does not exist/);
  });
});
