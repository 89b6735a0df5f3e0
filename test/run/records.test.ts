import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { latestCheckpoint, listCheckpointFolders, listCheckpoints } from '../../src/run/checkpoints.js';
import {
  mergeEvalCsv,
  readEvalCsv,
  readMetrics,
  readSavedRun,
  truncateMetrics,
} from '../../src/run/folder.js';
import {
  checkpointDirName,
  checkpointName,
  isMidEpochCheckpoint,
  midEpochName,
  parseCheckpointName,
  parseSampleName,
  sampleName,
} from '../../src/run/layout.js';
import {
  type EvalRow,
  formatEvalCsv,
  type MetricsRow,
  metricsLine,
  parseEvalCsv,
  parseMetrics,
} from '../../src/run/records.js';
import { tempDir } from '../helpers.js';

const row = (step: number): MetricsRow => ({
  epoch: 1,
  step,
  g_gan: 0.5,
  g_l1: 0.25,
  d_loss: 0.7,
  images_per_s: 12.5,
  lr: 3.8461538461538436e-5,
});

describe('src/run: the run folder format', () => {
  it('imports no tfjs anywhere, and its names and records nothing of Node (the train page bundles them)', async () => {
    /** The project files `file` imports, followed through them; a package or node: import as written. */
    const importsOf = async (file: string, seen = new Set<string>()): Promise<Set<string>> => {
      for (const [, spec] of (await readFile(file, 'utf8')).matchAll(
        /^(?:import|export)[^;]*? from '([^']+)'/gms,
      )) {
        const target = spec!.startsWith('.') ? join(dirname(file), spec!.replace(/\.js$/, '.ts')) : spec!;
        if (seen.has(target)) continue;
        seen.add(target);
        if (spec!.startsWith('.')) await importsOf(target, seen);
      }
      return seen;
    };
    for (const f of await readdir('src/run')) {
      const all = [...(await importsOf(join('src/run', f)))];
      assert.deepEqual(
        all.filter((i) => i.startsWith('@tensorflow/')),
        [],
        `${f} imports tfjs`,
      );
      if (f === 'layout.ts' || f === 'records.ts') {
        assert.deepEqual(
          all.filter((i) => !i.startsWith('src/run/') && !i.startsWith('src/util/')),
          [],
          `${f} imports beyond src/run and src/util`,
        );
      }
    }
    assert.ok((await importsOf('src/run/records.ts')).has('src/util/format.ts'), 'the walk follows imports');
  });

  it('checkpoint and sample names round-trip; anything else is no checkpoint', () => {
    assert.equal(checkpointName(7), 'epoch-0007');
    assert.equal(midEpochName({ epoch: 2, step: 3 }), 'epoch-0002-step-00000003');
    assert.equal(checkpointDirName({ epoch: 2, step: 3, batchInEpoch: 1 }), 'epoch-0002-step-00000003');
    assert.equal(checkpointDirName({ epoch: 2, step: 3 }), 'epoch-0002');
    assert.deepEqual(parseCheckpointName('epoch-0007'), { epoch: 7 });
    assert.deepEqual(parseCheckpointName('epoch-12345'), { epoch: 12345 });
    assert.deepEqual(parseCheckpointName('epoch-0002-step-00000003'), { epoch: 2, step: 3 });
    for (const other of ['.epoch-0002.tmp', 'epoch-7', 'latest', 'epoch-0002-step-', 'xepoch-0002'])
      assert.equal(parseCheckpointName(other), undefined, other);
    assert.ok(isMidEpochCheckpoint('/runs/a/checkpoints/epoch-0002-step-00000003'));
    assert.ok(!isMidEpochCheckpoint('/runs/a/checkpoints/epoch-0002'));
    assert.equal(parseSampleName(sampleName(12)), 12);
    assert.equal(parseSampleName('epoch-0012.png.tmp'), undefined);
  });

  it('metrics.jsonl: rows written by metricsLine read back; a torn or foreign line is skipped; truncation keeps the bytes of the kept lines', async () => {
    const text = `${metricsLine(row(1))}${metricsLine(row(2))}\nnot json\n${metricsLine(row(3))}{"epoch":1,"st`;
    assert.deepEqual(parseMetrics(text), [row(1), row(2), row(3)]);
    const dir = await tempDir('p2p-records-');
    await writeFile(join(dir, 'metrics.jsonl'), text);
    assert.deepEqual(await readMetrics(dir), [row(1), row(2), row(3)]);
    await truncateMetrics(dir, 2);
    assert.equal(
      await readFile(join(dir, 'metrics.jsonl'), 'utf8'),
      metricsLine(row(1)) + metricsLine(row(2)),
    );
    assert.deepEqual(await readMetrics(join(dir, 'none')), []);
  });

  it('eval.csv: infinite and NaN scores round-trip; a malformed line is one error naming the file and line', async () => {
    const rows: EvalRow[] = [
      { epoch: 2, step: 8, psnr: Number.POSITIVE_INFINITY, ssim: 1, mae: 0, seconds: 1.5 },
      { epoch: 1, step: 4, psnr: Number.NaN, ssim: 0.5, mae: 3.25, seconds: 2 },
    ];
    const back = parseEvalCsv(formatEvalCsv(rows));
    assert.deepEqual(
      back.map((r) => r.epoch),
      [1, 2],
    );
    assert.ok(Number.isNaN(back[0]!.psnr));
    assert.equal(back[1]!.psnr, Number.POSITIVE_INFINITY);
    assert.throws(() => parseEvalCsv('epoch,step,psnr,ssim,mae,seconds\n1,2,x,4,5,6\n', 'r/eval.csv'), {
      message: 'r/eval.csv line 2 is not "epoch,step,psnr,ssim,mae,seconds": 1,2,x,4,5,6',
    });
    const dir = await tempDir('p2p-records-');
    await mergeEvalCsv(dir, [rows[0]!]);
    await mergeEvalCsv(dir, [{ ...rows[0]!, psnr: 30 }, rows[1]!]);
    assert.deepEqual(
      (await readEvalCsv(dir)).map((r) => [r.epoch, r.psnr]),
      [
        [1, Number.NaN],
        [2, 30],
      ],
    );
    assert.deepEqual(await readEvalCsv(dir, true), [], 'eval-dropout.csv is another file');
  });

  it('config.json: none is undefined, broken JSON is one error naming the file', async () => {
    const dir = await tempDir('p2p-records-');
    assert.equal(await readSavedRun(dir), undefined);
    await writeFile(join(dir, 'config.json'), '{"config": {');
    await assert.rejects(readSavedRun(dir), (e: Error) => {
      assert.match(e.message, new RegExp(`^${join(dir, 'config.json')} is not valid JSON \\(`));
      return true;
    });
  });

  it('checkpoints: epochs listed by number, mid-epoch ones and unfinished writes told apart, latest followed', async () => {
    const dir = await tempDir('p2p-records-');
    const root = join(dir, 'checkpoints');
    for (const n of ['epoch-0010', 'epoch-0002', 'epoch-0002-step-00000009', '.epoch-0011.tmp', 'other'])
      await mkdir(join(root, n), { recursive: true });
    await symlink('epoch-0002-step-00000009', join(root, 'latest'));
    assert.deepEqual(
      (await listCheckpoints(dir)).map((c) => c.epoch),
      [2, 10],
    );
    assert.deepEqual(
      (await listCheckpointFolders(dir)).map((c) => [c.name, c.step]),
      [
        ['epoch-0002', undefined],
        ['epoch-0002-step-00000009', 9],
        ['epoch-0010', undefined],
      ],
    );
    assert.equal(await latestCheckpoint(dir), join(root, 'epoch-0002-step-00000009'));
  });
});
