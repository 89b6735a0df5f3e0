import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { appendFile, mkdir, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { loadModel } from '../../src/models/io.js';
import { RUN_LOCK } from '../../src/run/layout.js';
import { lockTarget } from '../../src/run/lock.js';
import { resumedConfig, validateConfig } from '../../src/train/config.js';
import { train } from '../../src/train/loop.js';
import { CLI, readMetrics, TINY, tempDir, useWasm } from '../helpers.js';

before(useWasm);

const steps = async (out: string) => (await readMetrics(out)).map((l) => l.step);

describe('resume and faults', () => {
  let data: string;
  let root: string;
  before(async () => {
    root = await tempDir('p2p-resume-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 10, size: 32, seed: 3 });
  });
  const base = (out: string) =>
    // The tiny model: what is checked here does not depend on the generator's width.
    validateConfig({ data, out, ...TINY, batchSize: 4, epochs: 1, maxStepsPerEpoch: 2 });

  it('a non-finite loss stops the run before the update, and latest stays on finite weights', async () => {
    const out = join(root, 'nan');
    await train(base(out), false);
    const poisoned = { ...base(out), epochs: 2, lr: 1e30 };
    await assert.rejects(
      train({ ...poisoned, maxStepsPerEpoch: 2 }, true),
      /epoch 2, step \d+: the (generator|discriminator) (loss is (NaN|Infinity|-Infinity)|gradients of .* are not finite): stopped before updating the weights; no checkpoint was written from it and checkpoints\/latest still names epoch-0001/,
    );
    assert.equal(await readlink(join(out, 'checkpoints', 'latest')), 'epoch-0001');
    const G = await loadModel(join(out, 'checkpoints', 'epoch-0001', 'generator'));
    for (const [i, w] of G.getWeights().entries())
      assert.ok((w.dataSync() as Float32Array).every(Number.isFinite), `weight ${i}`);
    G.dispose();
  });

  it('a missing or copied-over latest is an error naming the checkpoints, and nothing is overwritten', async () => {
    const out = join(root, 'nolatest');
    await train(base(out), false);
    const meta = await readFile(join(out, 'checkpoints', 'epoch-0001', 'meta.json'), 'utf8');
    await rm(join(out, 'checkpoints', 'latest'));
    await mkdir(join(out, 'checkpoints', 'latest')); // what scp -r makes of the link
    await assert.rejects(
      train({ ...base(out), epochs: 2 }, true),
      /latest is missing or not a link .*checkpoints there: epoch-0001/,
    );
    assert.equal(await readFile(join(out, 'checkpoints', 'epoch-0001', 'meta.json'), 'utf8'), meta);
  });

  it('a trainer killed between renaming its first checkpoint into place and naming it latest: the next trainer resumes from it', async () => {
    const out = join(root, 'killed-before-latest');
    await train(base(out), false);
    await rm(join(out, 'checkpoints', 'latest'));
    // Without a sign that the trainer before died, a missing latest is still refused.
    await assert.rejects(train({ ...base(out), epochs: 2 }, true), /latest is missing or not a link/);
    // What the kill leaves: its lock, naming a process that no longer runs.
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    await symlink(
      lockTarget({ pid: dead, host: hostname(), since: '2026-12-06T12:00:00Z' }),
      join(out, RUN_LOCK),
    );
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    await train({ ...base(out), epochs: 2 }, true, { log });
    assert.ok(
      lines.includes(
        `${out}: the trainer before was killed after writing epoch-0001 and before naming it checkpoints/latest: resuming from it`,
      ),
      lines.join('\n'),
    );
    assert.equal(await readlink(join(out, 'checkpoints', 'latest')), 'epoch-0002');
    assert.deepEqual(await steps(out), [1, 2, 3, 4]);
  });

  it('resume cuts metrics.jsonl back to the checkpoint, so an interrupted epoch is logged once', async () => {
    const out = join(root, 'metrics');
    await train(base(out), false);
    // What a kill in the middle of epoch 2 leaves: a step past the checkpoint and a torn line.
    await appendFile(join(out, 'metrics.jsonl'), '{"epoch":2,"step":3,"g_gan":1}\n{"epoch":2,"st');
    await train({ ...base(out), epochs: 2 }, true);
    assert.deepEqual(await steps(out), [1, 2, 3, 4]);
  });

  it('resume keeps the run config: model options cannot change, schedule options are recorded', async () => {
    const saved = base('/tmp/x');
    assert.throws(
      () => resumedConfig(saved, { size: 64, netD: 'patch70' }),
      /--resume cannot change what defines the model or the data: --size 64 \(the run has 32\), --netD patch70 \(the run has patch16\)/,
    );
    const { config, changed } = resumedConfig(saved, { epochs: 5, lr: 1e-4 });
    assert.equal(config.epochs, 5);
    assert.equal(config.batchSize, 4, 'not given: the run keeps its own');
    assert.deepEqual(changed, { epochs: { from: 1, to: 5 }, lr: { from: 2e-4, to: 1e-4 } });

    const out = join(root, 'history');
    await train(base(out), false);
    await train({ ...base(out), epochs: 2, lr: 1e-4 }, true);
    const run = JSON.parse(await readFile(join(out, 'config.json'), 'utf8'));
    assert.equal(run.resumes.length, 1);
    assert.equal(run.resumes[0].epoch, 2);
    assert.deepEqual(run.resumes[0].changed.lr, { from: 2e-4, to: 1e-4 });
  });

  it('the new model and data options are fixed on resume; --max-minutes may change; older runs get defaults', () => {
    const saved = base('/tmp/x');
    assert.throws(
      () =>
        resumedConfig(saved, {
          ngf: 32,
          depth: 3,
          ndf: 16,
          dropout: false,
          residual: true,
          crop: 32,
          degradeOnTheFly: true,
        }),
      /--resume cannot change what defines the model or the data: --ngf 32 \(the run has 8\), --depth 3 \(the run has 4\), --ndf 16 \(the run has 8\), --no-dropout \(the run has --dropout\), --residual \(the run has --no-residual\), --crop 32 \(the run has 0\), --degrade-on-the-fly \(the run has --no-degrade-on-the-fly\)/,
    );
    for (const given of [{ residual: true }, { crop: 32 }, { degradeOnTheFly: true }]) {
      assert.throws(() => resumedConfig(saved, given), /--resume cannot change/);
    }
    const { config, changed } = resumedConfig(saved, { maxMinutes: 1.5 });
    assert.equal(config.maxMinutes, 1.5);
    assert.deepEqual(changed, { 'max-minutes': { from: 0, to: 1.5 } });
    // A config.json from before these options: they had their defaults, so typing those is no change.
    const {
      ngf: _n,
      ndf: _w,
      depth: _d,
      dropout: _o,
      residual: _r,
      crop: _c,
      degradeOnTheFly: _f,
      ...old
    } = saved;
    const resumed = resumedConfig(old as typeof saved, { ngf: 64, ndf: 64, residual: false, epochs: 2 });
    assert.equal(resumed.config.ngf, 64);
    assert.equal(resumed.config.ndf, 64);
    assert.deepEqual(resumed.changed, { epochs: { from: 1, to: 2 } });
  });

  it('train --resume with a different --size is one clear line', async () => {
    const out = join(root, 'cli');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'config.json'), JSON.stringify({ config: base(out) }));
    const r = spawnSync(
      process.execPath,
      [CLI, 'train', '--data', data, '--out', out, '--resume', '--size', '64'],
      { encoding: 'utf8' },
    );
    assert.notEqual(r.status, 0);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error'));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0]!, /--resume cannot change .*--size 64 \(the run has 32\)/);
  });

  it('train --keep 1 leaves only the newest epoch checkpoint', async () => {
    const out = join(root, 'keep');
    await train({ ...base(out), epochs: 3, keep: 1 }, false);
    assert.deepEqual((await readdir(join(out, 'checkpoints'))).sort(), ['epoch-0003', 'latest']);
  });
});
