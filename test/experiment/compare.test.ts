import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { compareRuns, parseGridEpochs, parseVary, planRuns } from '../../src/experiment/compare.js';
import { parseEvalCsv } from '../../src/run/records.js';
import { type TrainConfig, validateConfig } from '../../src/train/config.js';
import { train } from '../../src/train/loop.js';
import { TINY, tempDir, useWasm } from '../helpers.js';

before(useWasm);

describe('compare --vary', () => {
  it('parses option=values with the option table, and rejects unknown options and bad values', () => {
    const [v] = parseVary(['batch-size=32,64']);
    assert.equal(v!.option.key, 'batchSize');
    assert.deepEqual(v!.values, [32, 64]);
    assert.deepEqual(parseVary(['gan-mode=vanilla,lsgan'])[0]!.values, ['vanilla', 'lsgan']);
    assert.deepEqual(parseVary(['augment=true,false'])[0]!.values, [true, false]);
    assert.throws(() => parseVary(['batchsize=32,64']), /unknown training option 'batchsize'.*batch-size/);
    assert.throws(() => parseVary(['batch-size=32,x']), /'x' is not a valid value/);
    assert.throws(() => parseVary(['batch-size']), /not option=value1,value2/);
    assert.throws(() => parseVary(['data=a,b']), /unknown training option 'data'/);
    assert.throws(() => parseVary([]), /at least one --vary/);
    assert.throws(() => parseGridEpochs('first,middle'), /'middle' is not first, best, last/);
  });

  it('several --vary make a grid of runs', () => {
    const plans = planRuns(parseVary(['batch-size=32,64', 'lr=0.0002,0.001']));
    assert.deepEqual(
      plans.map((p) => p.name),
      [
        'batch-size=32, lr=0.0002',
        'batch-size=32, lr=0.001',
        'batch-size=64, lr=0.0002',
        'batch-size=64, lr=0.001',
      ],
    );
    assert.equal(plans[3]!.folder, 'batch-size=64_lr=0.001');
    assert.deepEqual(plans[1]!.overrides, { batchSize: 32, lr: 0.001 });
  });

  describe('end to end on a tiny dataset', () => {
    let data: string;
    let out: string;
    let base: TrainConfig;
    const trained: string[] = [];
    const trainRun = async (c: TrainConfig, resume: boolean) => {
      trained.push(`${c.out}:${resume}`);
      await train(c, resume, {
        evaluate: (await import('../../src/eval/evaluate.js')).epochEvaluator(c),
      });
    };
    before(async () => {
      const root = await tempDir('p2p-compare-');
      data = join(root, 'data');
      // 64 train pairs, so batch 64 is one whole batch (the reference document's batch sizes).
      await writeSyntheticDataset(data, { count: 80, size: 32, seed: 2 });
      out = join(root, 'cmp');
      base = validateConfig({ data, out, ...TINY, epochs: 2, maxStepsPerEpoch: 1, backend: 'wasm' });
    });

    it('trains one run per value, scores every epoch, and writes the report with grids', async () => {
      const result = await compareRuns({
        base,
        vary: parseVary(['batch-size=32,64']),
        command: 'pix2pix compare --vary batch-size=32,64',
        trainRun,
      });
      assert.equal(trained.length, 2);
      assert.deepEqual(
        result.runs.map((r) => r.name),
        ['batch-size=32', 'batch-size=64'],
      );
      for (const r of result.runs) {
        const dir = join(out, r.dir);
        const saved = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
        assert.equal(saved.config.batchSize, r.values['batch-size']);
        const rows = parseEvalCsv(await readFile(join(dir, 'eval.csv'), 'utf8'));
        assert.deepEqual(
          rows.map((x) => x.epoch),
          [1, 2],
        );
        assert.deepEqual(
          r.evals.map((x) => x.psnr),
          rows.map((x) => x.psnr),
        );
        assert.ok(r.best && rows.every((x) => x.psnr <= r.best!.psnr));
        assert.equal(r.steps.length, 2);
        assert.ok(r.trainSeconds > 0 && r.imagesPerSec > 0);
      }
      const html = await readFile(result.html, 'utf8');
      assert.ok(!html.includes('<script'));
      assert.ok(html.includes('batch-size=32') && html.includes('batch-size=64'));
      assert.match(html, /22\.2/);
      const md = await readFile(result.md, 'utf8');
      const grids = [...md.matchAll(/\]\((grids\/[^)]+\.png)\)/g)].map((m) => m[1]!);
      assert.ok(grids.length >= 1 && grids.includes('grids/first.png'), md);
      // first, best and last each have a grid (merged where they are the same epochs).
      for (const word of ['First', 'best', 'last']) assert.match(md, new RegExp(`### .*${word}`, 'i'), word);
      // 4 test pairs as rows; input | ground truth | one column per run.
      const meta = await sharp(join(out, grids.at(-1)!)).metadata();
      // 32 px tiles are shown 5x (nearest neighbour) so that a tile is at least 160 px.
      assert.equal(meta.width, 32 * 4 * 5);
      assert.equal(meta.height, 32 * 4 * 5);
    });

    it('a second compare resumes: finished runs are not trained again, a longer schedule continues them', async () => {
      trained.length = 0;
      await compareRuns({ base, vary: parseVary(['batch-size=32,64']), command: 'again', trainRun });
      assert.deepEqual(trained, []);
      const longer = { ...base, epochs: 3 };
      const result = await compareRuns({
        base: longer,
        vary: parseVary(['batch-size=32']),
        command: 'x',
        trainRun,
      });
      assert.deepEqual(trained, [`${join(out, 'batch-size=32')}:true`]);
      assert.deepEqual(
        result.runs[0]!.evals.map((r) => r.epoch),
        [1, 2, 3],
      );
      assert.ok(existsSync(join(out, 'batch-size=32', 'checkpoints', 'epoch-0003')));
    });

    it('refuses to reuse a run folder trained with other options', async () => {
      await assert.rejects(
        compareRuns({
          base: { ...base, lr: 1e-3 },
          vary: parseVary(['batch-size=32']),
          command: 'x',
          trainRun,
        }),
        /batch-size=32 holds a run with other options: --lr 0.0002 \(asked: 0.001\)/,
      );
    });
  });
});
