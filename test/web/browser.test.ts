// The pages in headless Debian Chromium (driven by playwright-core, never a downloaded browser):
// the dashboard following a training run live, and the try-it page's in-browser translation against
// the Node translation of the same image by the same checkpoint. Screenshots go to test-artifacts/web.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { decodeRgb, encodePng, newImage } from '../../src/data/image.js';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { epochEvaluator } from '../../src/eval/evaluate.js';
import { loadGenerator } from '../../src/infer/load.js';
import { translateImage } from '../../src/infer/tiling.js';
import { type TrainConfig, validateConfig } from '../../src/train/config.js';
import { train } from '../../src/train/loop.js';
import { type ServeHandle, serve } from '../../src/web/server.js';
import { rng, tempDir, useWasm } from '../helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/web', import.meta.url));
/** Largest difference allowed between a browser and a Node output pixel (uint8 levels). */
const TOLERANCE = 2;

const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

describe('serve: pages in Chromium', { skip }, () => {
  let root: string;
  let runs: string;
  let config: TrainConfig;
  let srv: ServeHandle;
  let browser: Browser;
  const pageErrors: string[] = [];

  async function newPage(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text());
    });
    return page;
  }

  before(async () => {
    await useWasm();
    root = await tempDir('p2p-web-');
    runs = join(root, 'runs');
    const data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 8, size: 32, seed: 3 });
    config = validateConfig({
      data,
      out: join(runs, 'tiny'),
      size: 32,
      ngf: 8,
      ndf: 8,
      batchSize: 2,
      epochs: 1,
      maxStepsPerEpoch: 2,
      evalEvery: 1,
    });
    await train(config, false, { evaluate: epochEvaluator(config) });
    srv = await serve({ runs, port: 0, pollMs: 100 });
    browser = await chromium.launch({ executablePath: CHROMIUM });
    await mkdir(ARTIFACTS, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('the dashboard plots more points as training writes them, without reloading', async () => {
    const page = await newPage();
    await page.goto(`${srv.url}run?id=tiny`);
    await page.waitForSelector('.live[data-state="live"]');
    const points = (series: string) =>
      page.$eval(`polyline[data-series="${series}"]`, (el) => Number(el.getAttribute('data-n')));
    const waitPoints = (series: string, n: number) =>
      page.waitForFunction(
        ([s, want]) =>
          document.querySelector(`polyline[data-series="${s}"]`)?.getAttribute('data-n') === String(want),
        [series, n] as const,
        { timeout: 15000 },
      );
    await waitPoints('g_l1', 2);
    await waitPoints('PSNR', 1);
    await page.evaluate(() => {
      (window as unknown as { sameDocument: boolean }).sameDocument = true;
    });
    const seen = [await points('g_l1')];
    // Two more epochs of two steps each, resumed from the run's checkpoint as `train --resume` does.
    for (const epochs of [2, 3]) {
      const next = { ...config, epochs };
      await train(next, true, { evaluate: epochEvaluator(next) });
      await waitPoints('g_l1', 2 * epochs);
      await waitPoints('d_loss', 2 * epochs);
      await waitPoints('PSNR', epochs);
      seen.push(await points('g_l1'));
    }
    assert.deepEqual(seen, [2, 4, 6], 'loss curve points after each epoch');
    assert.equal(
      await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument),
      true,
    );
    // The checkpoint table and the newest sample followed too.
    await page.waitForFunction(() => document.querySelectorAll('table.checkpoints tbody tr').length === 3);
    await page.waitForFunction(() =>
      document.querySelector('.sample img')?.getAttribute('alt')?.includes('epoch 3'),
    );
    await page.waitForFunction(
      () => (document.querySelector('.sample img') as HTMLImageElement | null)?.complete,
    );
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
    await page.close();
  });

  it('the try-it page translates an image in the browser as the Node code does (max diff <= 2 levels)', async (t) => {
    // 90x40: not the training size (32), padded to a multiple of 32 and tiled along x (over 64 px).
    const img = newImage(90, 40);
    const r = rng(11);
    for (let y = 0; y < 40; y++) {
      for (let x = 0; x < 90; x++) {
        const o = (y * 90 + x) * 3;
        img.data[o] = Math.min(255, x * 2 + Math.floor(r() * 60));
        img.data[o + 1] = Math.min(255, y * 5 + Math.floor(r() * 60));
        img.data[o + 2] = (x - 45) ** 2 + (y - 20) ** 2 < 150 ? 230 : Math.floor(r() * 80);
      }
    }
    const png = join(root, 'input.png');
    await writeFile(png, await encodePng(img));

    const page = await newPage();
    await page.goto(`${srv.url}try?run=tiny&epoch=3`);
    await page.waitForSelector('#status[data-state="ready"]', { timeout: 20000 });
    assert.equal(await page.$eval('#epoch', (el) => (el as HTMLSelectElement).value), 'epoch-0003');
    await page.setInputFiles('#file', png);
    await page.waitForSelector('#status[data-state="done"], #status[data-state="error"]', { timeout: 30000 });
    const status = await page.$eval('#status', (el) => el.textContent ?? '');
    assert.match(status, /^translated 90×40 in \d+ ms \(2 tiles .*backend wasm\)$/, status);
    const read = (sel: string) =>
      page.$eval(sel, (c) => {
        const canvas = c as HTMLCanvasElement;
        const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        const rgb: number[] = [];
        for (let i = 0; i < d.length; i += 4) rgb.push(d[i]!, d[i + 1]!, d[i + 2]!);
        return { width: canvas.width, height: canvas.height, rgb };
      });
    const input = await read('.pair figure:first-child canvas');
    const output = await read('#output canvas');
    await page.screenshot({ path: join(ARTIFACTS, 'try.png'), fullPage: true });
    await page.close();

    // The same image and checkpoint through the Node code of `pix2pix translate`.
    const decoded = await decodeRgb(png);
    assert.deepEqual(input.rgb, [...decoded.data], 'the browser decodes the PNG to the same pixels');
    const loaded = await loadGenerator(config.out, 3);
    const ref = await translateImage(loaded.G, decoded);
    loaded.G.dispose();
    assert.equal(output.width, ref.width);
    assert.equal(output.height, ref.height);
    let maxDiff = 0;
    let differing = 0;
    for (let i = 0; i < ref.data.length; i++) {
      const d = Math.abs(output.rgb[i]! - ref.data[i]!);
      maxDiff = Math.max(maxDiff, d);
      if (d > 0) differing++;
    }
    // Measured: 0 (bit-identical) with the WASM backend, which both sides run with the same kernels.
    assert.ok(maxDiff <= TOLERANCE, `max abs difference ${maxDiff} levels (${differing} values differ)`);
    assert.equal(
      differing,
      0,
      `${differing} values differ by up to ${maxDiff}: expected bit-identical on WASM`,
    );

    // Without WASM (its files unreachable) the page falls back to the cpu backend: other kernels,
    // so float rounding may move a value by a level, within the tolerance.
    const cpuPage = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await cpuPage.route('**/*.wasm', (route) => route.abort());
    await cpuPage.goto(`${srv.url}try?run=tiny&epoch=3`);
    await cpuPage.waitForSelector('#status[data-state="ready"]', { timeout: 20000 });
    await cpuPage.setInputFiles('#file', png);
    await cpuPage.waitForSelector('#status[data-state="done"], #status[data-state="error"]', {
      timeout: 30000,
    });
    assert.match(await cpuPage.$eval('#status', (el) => el.textContent ?? ''), /backend cpu\)$/);
    const cpuOut = await cpuPage.$eval('#output canvas', (c) => {
      const canvas = c as HTMLCanvasElement;
      return Array.from(canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data);
    });
    await cpuPage.close();
    let cpuMax = 0;
    let cpuDiffering = 0;
    for (let p = 0; p < ref.width * ref.height; p++) {
      for (let k = 0; k < 3; k++) {
        const d = Math.abs(cpuOut[4 * p + k]! - ref.data[3 * p + k]!);
        cpuMax = Math.max(cpuMax, d);
        if (d > 0) cpuDiffering++;
      }
    }
    t.diagnostic(
      `browser WASM vs Node WASM: max diff ${maxDiff}; cpu fallback vs Node WASM: max diff ${cpuMax} (${cpuDiffering} of ${ref.data.length} values differ)`,
    );
    assert.ok(cpuMax <= TOLERANCE, `cpu fallback: max abs difference ${cpuMax} levels`);
  });

  it('the index lists runs and compare folders; a compare folder shows its runs and report', async () => {
    const cmp = join(runs, 'cmp');
    for (const name of ['lr=0.0002', 'lr=0.0004']) {
      await mkdir(join(cmp, name), { recursive: true });
      for (const f of ['config.json', 'metrics.jsonl', 'eval.csv']) {
        await copyFile(join(config.out, f), join(cmp, name, f));
      }
      await cp(join(config.out, 'samples'), join(cmp, name, 'samples'), { recursive: true });
    }
    await writeFile(
      join(cmp, 'report.html'),
      '<!doctype html><meta charset="utf-8"><title>report</title><h1>pix2pix comparison: lr</h1><p>(a stand-in report)</p><script>document.title = "scripted"</script>',
    );
    const page = await newPage();
    await page.goto(srv.url);
    await page.waitForSelector('table.runs tbody tr[data-id="cmp/lr=0.0004"]');
    const ids = await page.$$eval('table.runs tbody tr', (rows) =>
      rows.map((r) => r.getAttribute('data-id')),
    );
    assert.deepEqual(ids, ['cmp', 'cmp/lr=0.0002', 'cmp/lr=0.0004', 'tiny']);
    await page.screenshot({ path: join(ARTIFACTS, 'index.png'), fullPage: true });
    await page.click('a[href="/run?id=cmp"]');
    const iframe = await page.waitForSelector('iframe.report');
    await page.waitForFunction(() => document.querySelectorAll('polyline[data-series]').length === 4);
    // The frame exists before its navigation to the report commits: wait for that, not a snapshot.
    const frame = await iframe.contentFrame();
    assert.ok(frame, 'an embedded frame');
    await frame.waitForURL(/\/files\/cmp\/report\.html$/);
    await frame.waitForSelector('h1');
    assert.equal(await frame.title(), 'report', 'scripts in run files do not run (sandboxed)');
    await page.screenshot({ path: join(ARTIFACTS, 'compare.png'), fullPage: true });
    await page.close();
    // The one console error expected: Chromium reporting the stand-in report's script as blocked.
    const blocked = pageErrors.filter((e) =>
      /^Blocked script execution in .*report\.html.*sandboxed/.test(e),
    );
    assert.equal(blocked.length, 1, 'the report script was blocked by the sandbox');
    assert.deepEqual(
      pageErrors.filter((e) => !blocked.includes(e)),
      [],
      'no other errors in the pages',
    );
  });
});
