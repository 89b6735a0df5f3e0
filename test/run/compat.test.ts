import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, readFile, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readEvalCsv } from '../../src/run/folder.js';
import { CLI, tempDir } from '../helpers.js';

/**
 * A run folder as main wrote it before src/run existed (commit 4125b95: `train --size 32 --ngf 8
 * --depth 3 --epochs 1 --epochs-decay 2 --batch-size 4 --eval-every 1 --backend wasm` on a 10-pair
 * synthetic dataset, committed beside it). Its weight and optimizer files (.bin) are not committed:
 * they are zeros of the sizes meta.json lists (whose SHA-256s were updated to match), written here
 * before the resume. Every other byte is as that main wrote it; the older checkpoints are pruned as
 * `--keep` would.
 */
const FIXTURE = fileURLToPath(new URL('../fixtures/compat-4125b95', import.meta.url));

describe('a run folder written by an earlier main', () => {
  it('resumes: train --resume continues it from its latest checkpoint, its metrics and eval.csv extended', async () => {
    const out = join(await tempDir('p2p-compat-'), 'run');
    await cp(join(FIXTURE, 'run'), out, { recursive: true, verbatimSymlinks: true });
    assert.equal(await readlink(join(out, 'checkpoints', 'latest')), 'epoch-0003');
    const ckpt = join(out, 'checkpoints', 'epoch-0003');
    const listed = JSON.parse(await readFile(join(ckpt, 'meta.json'), 'utf8')).files as Record<
      string,
      { bytes: number }
    >;
    for (const [rel, { bytes }] of Object.entries(listed)) {
      if (rel.endsWith('.bin')) await writeFile(join(ckpt, rel), new Uint8Array(bytes));
    }
    const r = spawnSync(
      process.execPath,
      [
        CLI,
        'train',
        '--resume',
        '--data',
        join(FIXTURE, 'data'),
        '--out',
        out,
        '--epochs-decay',
        '3',
        '--backend',
        'wasm',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /resuming from .*epoch-0003 \(epoch 3, step 6\)/);
    const meta = JSON.parse(await readFile(join(out, 'checkpoints', 'latest', 'meta.json'), 'utf8'));
    assert.deepEqual([meta.epoch, meta.step], [4, 8]);
    const steps = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).step);
    assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(
      (await readEvalCsv(out)).map((e) => e.epoch),
      [1, 2, 3, 4],
      'its --eval-every 1 kept from config.json',
    );
  });
});
