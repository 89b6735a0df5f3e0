import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import { downsampleLosses } from '../../src/eval/plots.js';
import {
  type CompareReport,
  type EvalRow,
  escapeHtml,
  fmtDuration,
  fmtPsnr,
  type RunReport,
  writeReport,
} from '../../src/eval/report.js';
import { bestByPsnr, type MetricsRow } from '../../src/run/records.js';
import { tempDir } from '../helpers.js';

/** SVG and XML namespace URIs: identifiers, not references to anything on the network. */
const NAMESPACES = new Set([
  'http://www.w3.org/2000/svg',
  'http://www.w3.org/1999/xlink',
  'http://www.w3.org/XML/1998/namespace',
  'http://www.w3.org/1999/xhtml',
]);

function steps(batch: number, epochs: number, perEpoch: number): MetricsRow[] {
  const rows: MetricsRow[] = [];
  for (let e = 1; e <= epochs; e++) {
    for (let i = 1; i <= perEpoch; i++) {
      const step = (e - 1) * perEpoch + i;
      rows.push({
        epoch: e,
        step,
        g_gan: 0.7 + 0.5 * Math.abs(Math.sin(step / 3)),
        g_l1: 40 / Math.sqrt(step + 3),
        d_loss: 1.2 - 0.4 * Math.abs(Math.cos(step / 5)),
        images_per_s: batch === 32 ? 41.5 : 63.2,
        lr: 2e-4,
      });
    }
  }
  return rows;
}

function evals(psnrs: number[], perEpoch: number): EvalRow[] {
  return psnrs.map((psnr, i) => ({
    epoch: i + 1,
    step: (i + 1) * perEpoch,
    psnr,
    ssim: 0.55 + 0.05 * i + psnr / 1000,
    mae: 0.12 - 0.01 * i,
    seconds: 12.3,
  }));
}

/** Input | ground truth | two runs' outputs, 2 rows of 16x16 tiles. */
async function writeTinyGrid(path: string): Promise<void> {
  const w = 16 * 4;
  const h = 16 * 2;
  const data = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      data[o] = (x * 4) & 255;
      data[o + 1] = (y * 8) & 255;
      data[o + 2] = Math.floor(x / 16) * 60;
    }
  }
  await sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(path);
}

function makeReport(runs: RunReport[], grids: CompareReport['grids']): CompareReport {
  return {
    title: 'facades: batch size 32 vs 64',
    dataset: 'data/facades (train 400 pairs, val 100 pairs, 256x256, A→B)',
    command: 'pix2pix compare --data data/facades --vary batch-size=32,64 --epochs 3 --out runs/cmp',
    evalMode: 'deterministic (dropout off)',
    settings: { epochs: 3, lr: 0.0002, 'lambda-l1': 100, backend: 'wasm', flip: true },
    runs,
    grids,
  };
}

const run32 = (): RunReport => {
  const ev = evals([20.5, 21.8, 22.19], 13);
  return {
    name: 'batch-size=32',
    values: { 'batch-size': 32 },
    dir: 'batch-size=32',
    steps: steps(32, 3, 13),
    evals: ev,
    best: ev[2],
    trainSeconds: 754.2,
    imagesPerSec: 41.5,
  };
};

const run64 = (): RunReport => ({
  name: 'batch-size=64',
  values: { 'batch-size': 64 },
  dir: 'batch-size=64',
  steps: steps(64, 3, 7),
  evals: evals([21.0, 23.456, 22.9], 7), // best left for writeReport to find: epoch 2
  trainSeconds: 3725,
  imagesPerSec: 63.2,
});

/** The start of a table row of report.html: the run's name, then numeric cells. */
const htmlRow = (name: string, ...nums: string[]): string =>
  `<tr><td>${name}</td>${nums.map((n) => `<td class="num">${n}</td>`).join('')}`;

const imageLinks = (md: string): string[] => [...md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)].map((m) => m[1]!);

describe('writeReport with two runs', () => {
  let dir: string;
  let out: { html: string; md: string; plots: string[] };
  let html: string;
  let md: string;
  let ms: number;

  before(async () => {
    dir = await tempDir('pix2pix-report-');
    await mkdir(join(dir, 'grids'));
    await writeTinyGrid(join(dir, 'grids', 'epoch-3.png'));
    const r = makeReport(
      [run32(), run64()],
      [
        {
          title: 'Validation samples, epoch 3',
          caption: 'input | ground truth | batch-size=32 | batch-size=64',
          png: 'grids/epoch-3.png',
        },
      ],
    );
    const t0 = performance.now();
    out = await writeReport(dir, r);
    ms = performance.now() - t0;
    html = await readFile(out.html, 'utf8');
    md = await readFile(out.md, 'utf8');
  });

  test('writes report.html, report.md and an SVG and a PNG per plot', (t) => {
    t.diagnostic(`writeReport took ${ms.toFixed(0)} ms for 2 runs`);
    assert.equal(out.html, join(dir, 'report.html'));
    assert.equal(out.md, join(dir, 'report.md'));
    assert.ok(existsSync(out.html) && existsSync(out.md));
    for (const name of ['psnr', 'ssim', 'loss-batch-size-32', 'loss-batch-size-64']) {
      for (const ext of ['svg', 'png']) {
        const p = join(dir, 'plots', `${name}.${ext}`);
        assert.ok(out.plots.includes(p), `${p} listed`);
        assert.ok(existsSync(p), `${p} exists`);
      }
    }
    assert.equal(out.plots.length, 8);
  });

  test('report.html is self-contained: inline SVG, grid as a data URI, no script, no external URL', () => {
    assert.ok(!/<script/i.test(html), 'no <script');
    const urls = html.match(/https?:\/\/[^\s"'<>)]*/g) ?? [];
    for (const u of urls) assert.ok(NAMESPACES.has(u), `unexpected URL ${u}`);
    assert.ok(!/\b(?:src|href)="(?!data:|#)/i.test(html), 'no reference to another file');
    assert.ok(!/@import|url\((?!#)/i.test(html), 'no CSS import or external url()');
    assert.equal((html.match(/<svg/g) ?? []).length, 4, 'psnr, ssim and one loss plot per run');
    assert.ok(
      /<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/.test(html),
      'html: ' + String(/<img src="data:image\/png;base64,[A-Za-z0-9+/=]+"/),
    );
    assert.ok(/Validation samples, epoch 3/.test(html), 'html: ' + String(/Validation samples, epoch 3/));
  });

  test('report.html names each run with its best epoch and PSNR', () => {
    assert.ok(html.includes(htmlRow('batch-size=32', '3', '22.19')));
    assert.ok(html.includes(htmlRow('batch-size=64', '2', '23.46')));
    assert.ok(html.includes(fmtPsnr(23.456)));
    assert.ok(html.includes('deterministic (dropout off)'));
    assert.ok(html.includes('--vary batch-size=32,64'));
    assert.ok(html.includes('48.13 dB') && html.includes('22.2 dB') && html.includes('25.8 dB'));
  });

  test('report.md has the best-epoch table rows and relative image links that exist', () => {
    assert.ok(md.includes('| Run | Best epoch | PSNR (dB) | SSIM | MAE | Train wall time | Images/s |'));
    assert.ok(md.includes('| batch-size=32 | 3 | 22.19 | 0.6722 | 0.1000 | 12 min 34 s | 41.5 |'), 'md row');
    assert.ok(md.includes('| batch-size=64 | 2 | 23.46 | 0.6235 | 0.1100 | 1 h 02 min | 63.2 |'), 'md row');
    const links = imageLinks(md);
    assert.deepEqual(links.sort(), [
      'grids/epoch-3.png',
      'plots/loss-batch-size-32.png',
      'plots/loss-batch-size-64.png',
      'plots/psnr.png',
      'plots/ssim.png',
    ]);
    for (const l of links) {
      assert.ok(!isAbsolute(l) && !l.includes('://'), `${l} is relative`);
      assert.ok(existsSync(join(dir, decodeURIComponent(l))), `${l} exists`);
    }
    assert.ok(md.includes('48.13 dB'));
  });

  test('plot PNGs decode with sharp and have a sensible size', async () => {
    for (const p of out.plots.filter((f) => f.endsWith('.png'))) {
      const img = sharp(p);
      const meta = await img.metadata();
      assert.equal(meta.format, 'png');
      assert.ok(meta.width! >= 400 && meta.width! <= 4000, `${p} width ${meta.width}`);
      assert.ok(meta.height! >= 200 && meta.height! <= 3000, `${p} height ${meta.height}`);
      const stats = await img.stats();
      // White background with dark text and colored lines: not a blank image.
      assert.ok(stats.channels[0]!.min < 100 && stats.channels[0]!.max > 240, `${p} has contrast`);
    }
  });
});

describe('writeReport edge cases', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir('pix2pix-report-');
  });

  test('a run without evals (interrupted) renders as "not evaluated"', async () => {
    const interrupted: RunReport = {
      name: 'batch-size=128',
      values: { 'batch-size': 128 },
      dir: 'batch-size=128',
      steps: steps(128, 1, 2),
      evals: [],
      trainSeconds: 31.4,
      imagesPerSec: 70.1,
    };
    const d = join(dir, 'interrupted');
    const out = await writeReport(d, makeReport([run32(), interrupted], []));
    const html = await readFile(out.html, 'utf8');
    const md = await readFile(out.md, 'utf8');
    assert.ok(html.includes(htmlRow('batch-size=128', 'not evaluated')));
    assert.ok(md.includes('| batch-size=128 | not evaluated | – | – | – | 31.4 s | 70.1 |'), 'md row');
    assert.ok(existsSync(join(d, 'plots', 'loss-batch-size-128.png')));

    // Nothing evaluated and nothing logged at all.
    const bare: RunReport = { ...interrupted, steps: [], trainSeconds: 0, imagesPerSec: 0 };
    const d2 = join(dir, 'bare');
    const out2 = await writeReport(d2, makeReport([bare], []));
    const html2 = await readFile(out2.html, 'utf8');
    assert.deepEqual(out2.plots, []);
    assert.ok(html2.includes('No run was evaluated.'));
    assert.ok(html2.includes('No training steps logged.'));
    assert.ok(!html2.includes('<svg'));
  });

  test('PSNR inf prints as "inf" and is left out of the plot', async () => {
    const r = run64();
    r.evals[2] = { ...r.evals[2]!, psnr: Number.POSITIVE_INFINITY };
    const d = join(dir, 'inf');
    const out = await writeReport(d, makeReport([run32(), r], []));
    const html = await readFile(out.html, 'utf8');
    const md = await readFile(out.md, 'utf8');
    assert.ok(md.includes('| batch-size=64 | 3 | inf |'), 'md row');
    assert.ok(html.includes(htmlRow('batch-size=64', '3', 'inf')));
    assert.ok(html.includes('PSNR = inf'));
    assert.ok(!/Infinity|NaN/.test(html), 'no raw Infinity/NaN');
    const meta = await sharp(join(d, 'plots', 'psnr.png')).metadata();
    assert.ok(meta.width! > 400);
  });

  test('escapes HTML in user strings; a missing grid shows a note', async () => {
    const r = makeReport(
      [{ ...run32(), name: '<b>x</b> & "y"' }],
      [{ title: '<img src=x onerror=alert(1)>', caption: 'a < b', png: 'nope/missing.png' }],
    );
    r.command = 'pix2pix compare --out "<script>alert(1)</script>"';
    const d = join(dir, 'escape');
    const out = await writeReport(d, r);
    const html = await readFile(out.html, 'utf8');
    assert.ok(!/<script/i.test(html));
    assert.ok(!html.includes('<b>x</b>') && !html.includes('<img src=x'));
    assert.ok(html.includes(escapeHtml('<b>x</b> & "y"')));
    assert.ok(html.includes('Image not found: nope/missing.png'));
    const md = await readFile(out.md, 'utf8');
    assert.ok(md.includes('\\<b\\>x\\</b\\> & "y"'));
  });
});

describe('report helpers', () => {
  test('fmtDuration, bestByPsnr and downsampleLosses', () => {
    assert.equal(fmtDuration(42.06), '42.1 s');
    assert.equal(fmtDuration(754.2), '12 min 34 s');
    assert.equal(fmtDuration(3725), '1 h 02 min');
    assert.equal(fmtPsnr(Number.POSITIVE_INFINITY), 'inf');
    const ev = evals([21, Number.NaN, 22.5, 22.5], 10);
    assert.equal(bestByPsnr(ev)?.epoch, 4, 'equal PSNR: the higher SSIM wins');
    assert.equal(bestByPsnr([]), undefined);
    const long = steps(32, 10, 100);
    const { rows, per } = downsampleLosses(long, 400);
    assert.equal(per, 3);
    assert.equal(rows.length, Math.ceil(1000 / 3));
    assert.equal(rows[0]!.step, 2);
    assert.equal(downsampleLosses(long.slice(0, 50)).per, 1);
  });
});
