import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { type Anchors, qualityMarkdown, runQuality, scoredRows } from '../../bench/quality.js';
import { formatEvalCsv } from '../../src/run/records.js';
import { tempDir } from '../helpers.js';

const anchors: Anchors = {
  n: 10,
  sigma: 25,
  seconds: 1,
  noisy: { psnr: 20.7, ssim: 0.14 },
  nlmeans: { psnr: 30, ssim: 0.85 },
  tv: { psnr: 29, ssim: 0.8 },
};
const opts = {
  data: 'd',
  minutes: 10,
  trainArgs: ['--preset', 'denoise'],
  command: 'pix2pix bench --quality',
  out: 'r',
  indep: [] as string[],
};
const row = (epoch: number, psnr: number, ssim: number, minutes: number) => ({
  epoch,
  step: epoch * 10,
  psnr,
  ssim,
  mae: 5,
  seconds: 1,
  minutes,
});

describe('bench --quality', () => {
  let root: string;
  before(async () => {
    root = await tempDir('p2p-quality-');
  });

  it('the verdict needs both PSNR and SSIM above NL-means, and says by how much otherwise', () => {
    const beats = qualityMarkdown(opts, [row(1, 28, 0.8, 5), row(2, 30.5, 0.86, 10)], anchors, 'p.svg');
    assert.match(beats, /beats NL-means on PSNR \(\+0\.50 dB\) and SSIM \(\+0\.0100\) after 10\.0 minutes/);
    const short = qualityMarkdown(opts, [row(1, 30.5, 0.84, 5)], anchors, 'p.svg');
    assert.match(
      short,
      /falls short of NL-means: best 30\.50 dB \/ SSIM 0\.8400 at 5\.0 minutes, against 30\.00 dB \/ 0\.8500/,
    );
    assert.match(short, /\| 1 +\| 10 +\| 5\.0 +\| 30\.50 +\| 0\.8400 \| 5\.00 \|/);
  });

  it("the independent sets' table gives each set's anchors, the preset's score and its lead over NL-means", () => {
    const at = (sigma: number, nl: number) => ({
      ...anchors,
      sigma,
      n: 54,
      nlmeans: { psnr: nl, ssim: 0.8 },
    });
    const md = qualityMarkdown(opts, [row(1, 30.5, 0.86, 10)], anchors, 'p.svg', [
      { data: 'data/indep-25', anchors: at(25, 29.5), preset: { epoch: 1, psnr: 31.25, ssim: 0.86 } },
      { data: 'data/indep-50', anchors: at(50, 26), preset: undefined },
    ]);
    assert.match(md, /unlike the training ones .*best epoch on the split \(1\)/);
    assert.match(
      md,
      /\| `data\/indep-25` \| 25 +\| 54 +\| 20\.70 \/ 0\.1400 \| 29\.00 \/ 0\.8000 \| 29\.50 \/ 0\.8000 \| 31\.25 \/ 0\.8600 \| 1\.75 dB \/ 0\.0600 +\|/,
    );
    assert.match(md, /\| `data\/indep-50` \| 50 +\| 54 +\|.*\| 26\.00 \/ 0\.8000 \| - +\| - +\|/);
    assert.doesNotMatch(qualityMarkdown(opts, [], anchors, 'p.svg'), /unlike the training ones/);
    const picture = { path: 'quality-indep.jpg', data: 'data/indep-25', names: ['a.png', 'b.png'] };
    const withPicture = qualityMarkdown(opts, [], anchors, 'p.svg', [{ data: 'x', anchors }], picture);
    assert.match(withPicture, /!\[noisy, NL-means, preset, clean\]\(quality-indep\.jpg\)/);
    assert.match(
      withPicture,
      /Rows: `a\.png`, `b\.png` of `data\/indep-25`; columns: noisy input, NL-means, the preset, clean\./,
    );
  });

  it('rows get the minutes of their checkpoint, mid-epoch stops (latest) included', async () => {
    const run = join(root, 'run');
    for (const [name, step, seconds] of [
      ['epoch-0001', 10, 60],
      ['epoch-0002-step-00000015', 15, 90],
    ] as const) {
      await mkdir(join(run, 'checkpoints', name), { recursive: true });
      await writeFile(
        join(run, 'checkpoints', name, 'meta.json'),
        JSON.stringify({ epoch: 1, step, time: '', trainSeconds: seconds }),
      );
    }
    const { symlink } = await import('node:fs/promises');
    await symlink('epoch-0002-step-00000015', join(run, 'checkpoints', 'latest'));
    await writeFile(
      join(run, 'eval.csv'),
      formatEvalCsv([
        { epoch: 1, step: 10, psnr: 25, ssim: 0.7, mae: 6, seconds: 2 },
        { epoch: 2, step: 15, psnr: 26, ssim: 0.72, mae: 5, seconds: 2 },
      ]),
    );
    const rows = await scoredRows(run);
    assert.deepEqual(
      rows.map((r) => [r.epoch, r.minutes]),
      [
        [1, 1],
        [2, 1.5],
      ],
    );
  });

  it('a dataset that is not gaussian denoising is refused in one line before anything runs', async () => {
    const data = join(root, 'edges');
    await mkdir(data);
    await writeFile(
      join(data, 'dataset.json'),
      JSON.stringify({ options: { task: 'edges', degrade: 'edges' } }),
    );
    const logged: string[] = [];
    const out = join(root, 'q');
    const report = join(root, 'Q.md');
    await assert.rejects(
      runQuality({ ...opts, data, out, report, log: (m) => logged.push(m) }),
      (e: Error) => {
        assert.match(e.message, /bench --quality needs a gaussian denoising dataset .*; .* is edges edges/);
        assert.ok(!e.message.includes('\n'), 'one line');
        return true;
      },
    );
    // Nothing ran: no anchor or training was started (each logs first), no run folder, no report.
    assert.deepEqual(logged, []);
    assert.ok(!existsSync(out) && !existsSync(report));
  });

  it('a missing independent dataset is refused in one line saying how to make it, before anything runs', async () => {
    const data = join(root, 'noise');
    await mkdir(data);
    await writeFile(
      join(data, 'dataset.json'),
      JSON.stringify({ options: { task: 'denoise', degrade: 'gaussian:25' } }),
    );
    const logged: string[] = [];
    const out = join(root, 'q2');
    const indep = join(root, 'no-indep');
    await assert.rejects(
      runQuality({
        ...opts,
        data,
        out,
        indep: [indep],
        report: join(root, 'Q2.md'),
        log: (m) => logged.push(m),
      }),
      (e: Error) => {
        assert.match(
          e.message,
          /no-indep does not exist: scripts\/quality-data\.sh makes the independent sets .*--set eval.*--split 0/,
        );
        assert.ok(!e.message.includes('\n'), 'one line');
        return true;
      },
    );
    assert.deepEqual(logged, []);
    assert.ok(!existsSync(out));
  });
});
