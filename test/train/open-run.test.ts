import assert from 'node:assert/strict';
import { existsSync, lstatSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { readMetrics } from '../../src/run/folder.js';
import { RUN_LOCK } from '../../src/run/layout.js';
import { parseLockTarget } from '../../src/run/lock.js';
import { validateConfig } from '../../src/train/config.js';
import { endEpoch, startSession, train, trainEpoch } from '../../src/train/loop.js';
import { openRun } from '../../src/train/open-run.js';
import { disposeTrainState } from '../../src/train/step.js';
import { TINY, tempDir, useWasm } from '../helpers.js';

const silent = { info: () => {}, warn: () => {} };
const isLocked = (out: string) => lstatSync(join(out, RUN_LOCK), { throwIfNoEntry: false }) !== undefined;

describe('train() and its parts', () => {
  let data: string;
  let root: string;
  before(async () => {
    await useWasm();
    root = await tempDir('p2p-open-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 6, size: 32, seed: 2 });
  });
  const config = (out: string) =>
    validateConfig({ data, out, ...TINY, batchSize: 2, epochs: 1, maxStepsPerEpoch: 2 });

  it('a library resume with another direction is refused in one line, the run unchanged and unlocked', async () => {
    const out = join(root, 'direction');
    await train(config(out), false);
    const before = await readFile(join(out, 'config.json'), 'utf8');
    await assert.rejects(train({ ...config(out), direction: 'BtoA', epochs: 2 }, true), (e: Error) => {
      assert.equal(
        e.message,
        '--resume cannot change what defines the model or the data: --direction BtoA (the run has AtoB); drop the flag or start a new run with another --out',
      );
      return true;
    });
    assert.equal(await readFile(join(out, 'config.json'), 'utf8'), before, 'config.json unchanged');
    assert.deepEqual(
      (await readMetrics(out)).map((r) => r.step),
      [1, 2],
    );
    assert.ok(!isLocked(out), 'the lock was released');
    // Options that do not define the model may change, as with `train --resume`.
    await train({ ...config(out), epochs: 2, lr: 1e-4 }, true);
    assert.equal(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).resumes[0].changed.lr.to, 1e-4);
  });

  it('the parts train an epoch as train() does: openRun locks and writes config.json, trainEpoch steps, endEpoch checkpoints', async () => {
    const out = join(root, 'parts');
    const run = await openRun(config(out), false, silent);
    try {
      assert.equal(parseLockTarget(await readlink(join(out, RUN_LOCK)))?.pid, process.pid);
      assert.ok(existsSync(join(out, 'config.json')));
      await assert.rejects(
        train(config(out), false),
        /is being trained by pid \d+ on host .*: wait for it, or stop it$/,
      );
      const s = (await startSession(run, {}, silent))!;
      try {
        const steps = await trainEpoch(s, 1);
        assert.deepEqual([steps.first, steps.step, steps.timeUp, steps.stopped], [0, 2, false, undefined]);
        const event = await endEpoch(s, 1, steps);
        assert.deepEqual([event.step, event.checkpoint], [2, join(out, 'checkpoints', 'epoch-0001')]);
        assert.ok(existsSync(join(out, 'samples', 'epoch-0001.png')));
      } finally {
        tf.dispose([s.sample.a, s.sample.b]);
      }
    } finally {
      disposeTrainState(run.state);
      await run.lock.release();
    }
    assert.deepEqual(
      (await readMetrics(out)).map((r) => [r.epoch, r.step]),
      [
        [1, 1],
        [1, 2],
      ],
    );
    assert.equal(await readlink(join(out, 'checkpoints', 'latest')), 'epoch-0001');
  });
});
