import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { epochEvaluator } from '../../src/eval/evaluate.js';
import { readEvalCsv } from '../../src/run/folder.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { resumedConfig, type TrainConfig, validateConfig } from '../../src/train/config.js';
import { type TimeLimitEvent, train } from '../../src/train/loop.js';
import { createTrainState } from '../../src/train/step.js';
import { readMetrics, TINY, tempDir, useWasm } from '../helpers.js';

before(useWasm);

describe('train loop', () => {
  let data: string;
  before(async () => {
    data = join(await tempDir('p2p-loop-'), 'data');
    await writeSyntheticDataset(data, { count: 10, size: 32, seed: 3 });
  });

  it('writes config, per-step metrics, a checkpoint and a sample grid per epoch, and resumes', async () => {
    const out = join(await tempDir('p2p-run-'), 'run');
    const config = validateConfig({ data, out, ...TINY, batchSize: 4, epochs: 2, maxStepsPerEpoch: 2 });
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
    const root = await tempDir('p2p-run-');
    const own = join(root, 'data');
    await writeSyntheticDataset(own, { count: 10, size: 32, seed: 3 });
    const config = validateConfig({
      data: own,
      out: join(root, 'run'),
      ...TINY,
      batchSize: 4,
      epochs: 1,
      maxStepsPerEpoch: 1,
    });
    await train(config, false);
    await writeSyntheticDataset(own, { count: 10, size: 32, seed: 4 });
    await assert.rejects(train({ ...config, epochs: 2 }, true), /has changed since the run in .* started/);
  });

  it('refuses a dataset of smaller images than --size, and a missing folder, with one-line reasons', async () => {
    const out = join(await tempDir('p2p-run-'), 'run');
    await assert.rejects(
      train(validateConfig({ data, out, size: 64 }), false),
      /holds 32 px images, smaller than --size 64/,
    );
    await assert.rejects(train(validateConfig({ data: join(data, 'nope'), out }), false), /does not exist/);
  });

  it('--crop: trains on 32 px crops of 64 px images, and evaluates and samples at --size 64', async () => {
    const root = await tempDir('p2p-crop-');
    const big = join(root, 'data');
    await writeSyntheticDataset(big, { count: 10, size: 64, seed: 3 });
    const config = validateConfig({
      data: big,
      out: join(root, 'run'),
      size: 64,
      crop: 32,
      ngf: 8,
      ndf: 8,
      residual: true,
      dropout: false,
      batchSize: 4,
      epochs: 1,
      maxStepsPerEpoch: 2,
      evalEvery: 1,
    });
    const [epoch] = await train(config, false, { evaluate: epochEvaluator(config) });
    assert.ok(epoch?.scores && Number.isFinite(epoch.scores.psnr), 'evaluated at 64 px');
    assert.equal((await readEvalCsv(config.out)).length, 1);
    const ckpt = join(config.out, 'checkpoints', 'epoch-0001');
    const inputShape = async (net: string) =>
      JSON.parse(await readFile(join(ckpt, net, 'model.json'), 'utf8')).modelTopology.config.layers[0].config
        .batch_input_shape;
    // G keeps the evaluation side (what eval, translate and export feed it); D is built at the crops.
    assert.deepEqual(await inputShape('generator'), [null, 64, 64, 3]);
    assert.deepEqual(await inputShape('discriminator'), [null, 32, 32, 3]);
    const grid = await sharp(join(config.out, 'samples', 'epoch-0001.png')).metadata();
    assert.deepEqual([grid.width, grid.height], [3 * 64, 2 * 64]);
    const saved = JSON.parse(await readFile(join(config.out, 'config.json'), 'utf8')).config;
    assert.equal(saved.crop, 32);
    assert.equal(saved.ngf, 8);
  });

  it('--max-minutes stops after the step that used the time up: checkpoint, evaluation, normal return', async () => {
    const out = join(await tempDir('p2p-minutes-'), 'run');
    // 0.002 minutes = 0.12 s: the first step's hook sleeps past it.
    const config = validateConfig({
      data,
      out,
      ...TINY,
      batchSize: 2,
      epochs: 2,
      maxStepsPerEpoch: 3,
    });
    const evaluated: unknown[] = [];
    const stops: TimeLimitEvent[] = [];
    const hooks = {
      evaluate: async (_: unknown, at: { epoch: number; step: number }) => {
        evaluated.push(at);
        return { psnr: 1, ssim: 0, mae: 0, seconds: 0 };
      },
      onTimeLimit: (e: TimeLimitEvent) => stops.push(e),
      onStep: () => {
        const until = performance.now() + 150;
        while (performance.now() < until);
      },
    };
    const epochs = await train({ ...config, maxMinutes: 0.002, evalEvery: 1 }, false, hooks);
    assert.deepEqual(epochs, [], 'stopped in the middle of epoch 1');
    assert.equal(await readlink(join(out, 'checkpoints', 'latest')), 'epoch-0001-step-00000001');
    assert.deepEqual(evaluated, [{ epoch: 1, step: 1 }]);
    assert.equal(stops.length, 1);
    assert.ok(stops[0]!.trainSeconds >= 0.12 && stops[0]!.scores?.psnr === 1);
    assert.equal((await readMetrics(out)).length, 1);

    // The same limit again: the run has used it, nothing is trained.
    assert.deepEqual(await train({ ...config, maxMinutes: 0.002 }, true), []);
    assert.equal((await readMetrics(out)).length, 1);
    // Resumed without a limit, it finishes where an uninterrupted run would.
    const rest = await train(config, true);
    assert.deepEqual(
      rest.map((e) => e.epoch),
      [1, 2],
    );
    assert.deepEqual(
      (await readMetrics(out)).map((l) => l.step),
      [1, 2, 3, 4, 5, 6],
    );

    // At an epoch's last step, the epoch's own checkpoint is the stop's.
    const out2 = join(await tempDir('p2p-minutes-'), 'run');
    const one = await train({ ...config, out: out2, maxStepsPerEpoch: 1, maxMinutes: 0.002 }, false, hooks);
    assert.deepEqual(
      one.map((e) => e.epoch),
      [1],
    );
    assert.equal(await readlink(join(out2, 'checkpoints', 'latest')), 'epoch-0001');
  });

  /** One tiny step with --degrade-on-the-fly (and `extra`) in a fresh folder: its config and log lines. */
  async function flyStep(extra: Partial<TrainConfig> = {}) {
    const out = join(await tempDir('p2p-fly-'), 'run');
    const config = validateConfig({
      data,
      out,
      ...TINY,
      batchSize: 4,
      epochs: 1,
      maxStepsPerEpoch: 1,
      degradeOnTheFly: true,
      ...extra,
    });
    const lines: string[] = [];
    const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
    await train(config, false, { log });
    return { out, config, lines };
  }

  it('a run killed before its first checkpoint starts over with each step logged once', async () => {
    const out = join(await tempDir('p2p-fresh-'), 'run');
    await mkdir(out);
    const stale = { epoch: 1, g_gan: 9, g_l1: 9, d_loss: 9, images_per_s: 1, lr: 2e-4 };
    await writeFile(
      join(out, 'metrics.jsonl'),
      [1, 2].map((step) => `${JSON.stringify({ ...stale, step })}\n`).join(''),
    );
    await train(validateConfig({ data, out, ...TINY, batchSize: 4, epochs: 1, maxStepsPerEpoch: 1 }), false);
    const rows = await readMetrics(out);
    assert.deepEqual(
      rows.map((r) => r.step),
      [1],
    );
    assert.notEqual(rows[0]!.g_l1, 9, "the row is the new run's");
  });

  it('--degrade-on-the-fly trains on a recorded degradation and refuses a dataset without one', async () => {
    const { out, config, lines } = await flyStep();
    assert.ok(lines.some((l) => /--degrade-on-the-fly: gaussian:25 re-drawn from B/.test(l)));
    const saved = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).config;
    assert.equal(saved.degradeOnTheFly, true);

    const bare = join(await tempDir('p2p-fly-'), 'bare');
    await cp(data, bare, { recursive: true });
    await rm(join(bare, 'dataset.json'));
    const out2 = join(await tempDir('p2p-fly-'), 'run');
    await assert.rejects(
      train({ ...config, data: bare, out: out2 }, false),
      /--degrade-on-the-fly needs a dataset .*: it has no dataset.json/,
    );
    assert.ok(!existsSync(join(out2, 'config.json')), 'refused before anything is written');
  });

  it('--train-degrade replaces the recorded degradation in what --degrade-on-the-fly draws, and is refused without it', async () => {
    const { out, lines } = await flyStep({ trainDegrade: 'gaussian:5-50' });
    assert.ok(
      lines.some((l) =>
        /--degrade-on-the-fly: gaussian:5-50 \(--train-degrade, instead of the dataset's gaussian:25\) re-drawn/.test(
          l,
        ),
      ),
      lines.join('\n'),
    );
    assert.equal(
      JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).config.trainDegrade,
      'gaussian:5-50',
    );
    assert.throws(
      () => validateConfig({ data, out, trainDegrade: 'gaussian:5-50' }),
      /--train-degrade gaussian:5-50 needs --degrade-on-the-fly/,
    );
    assert.throws(
      () => validateConfig({ data, out, degradeOnTheFly: true, trainDegrade: 'gauss:5' }),
      /--train-degrade: unknown degradation 'gauss'/,
    );
  });

  it('--scale-jitter is refused outside (0, 1] and without --degrade-on-the-fly, and cannot change on resume', async () => {
    const out = join(data, 'never-written');
    const ok = validateConfig({ data, out, degradeOnTheFly: true, scaleJitter: 0.5 });
    assert.equal(ok.scaleJitter, 0.5);
    assert.throws(
      () => validateConfig({ data, out, scaleJitter: 0.5 }),
      /options: --scale-jitter 0.5 needs --degrade-on-the-fly/,
    );
    for (const v of [0, 1.5]) {
      assert.throws(
        () => validateConfig({ data, out, degradeOnTheFly: true, scaleJitter: v }),
        new RegExp(`--scale-jitter must be in \\(0, 1\\] \\(got ${v}\\)`),
      );
    }
    assert.throws(
      () => resumedConfig(ok, { scaleJitter: 0.7 }),
      /--resume cannot change .*--scale-jitter 0.7 \(the run has 0.5\)/,
    );
  });
});
