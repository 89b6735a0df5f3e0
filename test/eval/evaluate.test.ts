import assert from 'node:assert/strict';
import { readFile, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { epochEvaluator, evaluateRun, parseEpochList } from '../../src/eval/evaluate.js';
import { bestByPsnr, formatEvalCsv, parseEvalCsv } from '../../src/run/records.js';
import { validateConfig } from '../../src/train/config.js';
import { train } from '../../src/train/loop.js';
import { TINY, tempDir, useWasm } from '../helpers.js';

before(useWasm);

async function tinyRun(evalEvery: number) {
  const root = await tempDir('p2p-eval-');
  const data = join(root, 'data');
  await writeSyntheticDataset(data, { count: 12, size: 32, seed: 5 });
  const out = join(root, 'run');
  const config = validateConfig({
    data,
    out,
    ...TINY,
    batchSize: 4,
    epochs: 3,
    maxStepsPerEpoch: 1,
    evalEvery,
  });
  const events = await train(config, false, { evaluate: epochEvaluator(config) });
  return { root, data, out, config, events };
}

describe('eval', () => {
  let run: Awaited<ReturnType<typeof tinyRun>>;
  before(async () => {
    run = await tinyRun(1);
  });

  it('train --eval-every 1 scores every epoch into eval.csv, its time apart from training', async () => {
    const rows = parseEvalCsv(await readFile(join(run.out, 'eval.csv'), 'utf8'));
    assert.deepEqual(
      rows.map((r) => r.epoch),
      [1, 2, 3],
    );
    for (const [i, e] of run.events.entries()) {
      assert.ok(e.scores, `epoch ${e.epoch} scored`);
      assert.equal(rows[i]!.step, e.step);
      assert.ok(Number.isFinite(e.scores.psnr) && e.scores.psnr > 0 && e.scores.psnr < 60);
      assert.ok(e.scores.ssim > -1 && e.scores.ssim <= 1);
      assert.ok(e.scores.mae > 0 && e.scores.mae < 255);
      assert.ok(e.scores.seconds > 0);
    }
  });

  it('evaluating the saved checkpoints gives the scores computed during training (dropout off)', async () => {
    const during = parseEvalCsv(await readFile(join(run.out, 'eval.csv'), 'utf8'));
    const result = await evaluateRun(run.out);
    assert.equal(result.rows.length, 3);
    for (const [i, r] of result.rows.entries()) {
      const d = during[i]!;
      assert.equal(r.epoch, d.epoch);
      assert.ok(Math.abs(r.psnr - d.psnr) < 1e-3, `epoch ${r.epoch}: ${r.psnr} vs ${d.psnr}`);
      assert.ok(Math.abs(r.ssim - d.ssim) < 1e-5);
      assert.ok(Math.abs(r.mae - d.mae) < 1e-3);
    }
    assert.equal(result.best?.epoch, bestByPsnr(result.rows)?.epoch);
    assert.ok(result.rows.every((r) => r.psnr <= result.best!.psnr));
  });

  it('--epochs picks checkpoints; an epoch without one is a clear error', async () => {
    const result = await evaluateRun(run.out, { epochs: [2] });
    assert.deepEqual(
      result.rows.map((r) => r.epoch),
      [2],
    );
    await assert.rejects(
      evaluateRun(run.out, { epochs: [2, 9] }),
      /no checkpoint for epoch 9 \(it has 1, 2, 3\)/,
    );
    assert.deepEqual(parseEpochList('3,1,3'), [1, 3]);
    assert.equal(parseEpochList('all'), 'all');
    assert.throws(() => parseEpochList('1,x'), /--epochs must be/);
  });

  it('names and skips a damaged checkpoint, evaluating the others', async () => {
    const other = await tinyRun(0);
    await truncate(join(other.out, 'checkpoints', 'epoch-0002', 'generator', 'weights.bin'), 100);
    const warnings: string[] = [];
    const result = await evaluateRun(other.out, { log: { info: () => {}, warn: (m) => warnings.push(m) } });
    assert.deepEqual(
      result.rows.map((r) => r.epoch),
      [1, 3],
    );
    assert.equal(result.skipped.length, 1);
    assert.match(result.skipped[0]!.dir, /epoch-0002$/);
    assert.ok(warnings.some((w) => w.includes('epoch-0002') && w.includes('skipped')));
  });

  it('refuses a run folder that is missing, not a run, or holds no checkpoints, and a changed dataset', async () => {
    await assert.rejects(evaluateRun('/no/such/run'), /run folder \/no\/such\/run does not exist/);
    await assert.rejects(evaluateRun(run.data), /not a training run \(no config.json\)/);
    const empty = join(run.root, 'empty-run');
    await train(
      validateConfig({ data: run.data, out: empty, ...TINY, epochs: 1, maxStepsPerEpoch: 1 }),
      false,
    );
    await rm(join(empty, 'checkpoints'), { recursive: true });
    await assert.rejects(evaluateRun(empty), /holds no checkpoints/);
    // Same names, other content: the dataset made again with another seed.
    const data2 = join(run.root, 'data');
    await writeSyntheticDataset(data2, { count: 12, size: 32, seed: 6 });
    await assert.rejects(evaluateRun(run.out), /has changed since the run .* started/);
    const anyway = await evaluateRun(run.out, { epochs: [1], data: data2 });
    assert.equal(anyway.rows.length, 1);
  });

  it('--data scores an evaluation-only dataset (test pairs only, as prepare --split 0 makes) into eval-on-<its name>.csv, the run’s eval.csv untouched', async () => {
    const only = join(run.root, 'test-only');
    await writeSyntheticDataset(only, { count: 4, size: 32, seed: 7, split: 0 });
    const own = await readFile(join(run.out, 'eval.csv'), 'utf8');
    const r = await evaluateRun(run.out, { epochs: [1], data: only });
    assert.equal(r.rows.length, 1);
    assert.ok(Number.isFinite(r.rows[0]!.psnr) && r.rows[0]!.psnr > 0);
    assert.equal(r.csv, join(run.out, 'eval-on-test-only.csv'));
    assert.deepEqual(
      parseEvalCsv(await readFile(r.csv, 'utf8'), r.csv).map((x) => [x.epoch, x.psnr.toFixed(3)]),
      [[1, r.rows[0]!.psnr.toFixed(3)]],
    );
    assert.equal(await readFile(join(run.out, 'eval.csv'), 'utf8'), own);
    // Training on it is refused, naming what is missing.
    await assert.rejects(
      train(validateConfig({ data: only, out: join(run.root, 'never'), ...TINY, epochs: 1 }), false),
      /has no training pairs \(train\/A, train\/B\)/,
    );
  });

  it('eval.csv round-trips, with inf for identical images', () => {
    const rows = [
      { epoch: 2, step: 8, psnr: Number.POSITIVE_INFINITY, ssim: 1, mae: 0, seconds: 0.5 },
      { epoch: 1, step: 4, psnr: 21.5, ssim: 0.61234, mae: 12.25, seconds: 1.25 },
    ];
    const text = formatEvalCsv(rows);
    assert.match(text, /^epoch,step,psnr,ssim,mae,seconds\n1,4,21.5000,/);
    assert.match(text, /\n2,8,inf,1.000000,0.0000,0.50\n$/);
    const back = parseEvalCsv(text);
    assert.equal(back[1]!.psnr, Number.POSITIVE_INFINITY);
    assert.equal(back[0]!.ssim, 0.61234);
    assert.throws(() => parseEvalCsv('epoch,step\n1,2\n'), /does not start with/);
  });
});
