// The browser side of the data pipeline in headless Debian Chromium, inside a Web Worker as the train
// page runs it: pairsFromImages with the canvas codec against the same call in Node with sharp.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { decodeRgb, encodePng, type RgbImage, sharpCodec } from '../../src/data/image.js';
import { type InMemoryOptions, pairsFromImages } from '../../src/data/in-memory.js';
import { packageRoot } from '../../src/util/package-root.js';
import { noNodeInTheBrowser } from '../../src/web/build.js';
import { patternPixels } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

/** The worker: runs one job per message with the modules the train page's worker bundles. */
const WORKER = `
import { canvasCodec, decodeImageBlob } from './src/data/canvas.ts';
import { pairsFromImages } from './src/data/in-memory.ts';
const img = (o) => ({ width: o.width, height: o.height, data: new Uint8Array(o.data) });
const plain = (i) => ({ width: i.width, height: i.height, data: [...i.data] });
const jobs = {
  pairs: async ({ files, opts }) => {
    const input = files.map((f) => ({ path: f.path, image: f.bytes ? () => decodeImageBlob(new Blob([new Uint8Array(f.bytes)])) : img(f) }));
    const d = await pairsFromImages(input, { ...opts, codec: canvasCodec });
    const side = (ps) => ps.map((p) => ({ name: p.name, a: plain(p.a), b: plain(p.b) }));
    return { train: side(d.train), test: side(d.test), sources: d.sources };
  },
  decode: async ({ bytes }) => plain(await decodeImageBlob(new Blob([new Uint8Array(bytes)]))),
  jpeg: async ({ image, quality }) => plain(await canvasCodec.jpeg(img(image), quality)),
  resize: async ({ image, width, height }) => plain(await canvasCodec.resize(img(image), width, height)),
};
self.onmessage = async (e) => {
  try {
    self.postMessage({ ok: await jobs[e.data.job](e.data.args) });
  } catch (err) {
    self.postMessage({ error: String(err && err.message ? err.message : err) });
  }
};
`;

let browser: Browser | undefined;
let page: Page;

before(async () => {
  if (skip) return;
  const root = packageRoot();
  const bundle = await build({
    stdin: { contents: WORKER, resolveDir: root, loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'iife',
    write: false,
    logLevel: 'silent',
    plugins: [noNodeInTheBrowser(root)],
  });
  browser = await chromium.launch({ executablePath: CHROMIUM });
  page = await browser.newPage();
  await page.route('http://pix2pix.test/**', (route) =>
    route.request().url().endsWith('/worker.js')
      ? route.fulfill({ contentType: 'text/javascript', body: bundle.outputFiles[0]!.text })
      : route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>worker</title>' }),
  );
  await page.goto('http://pix2pix.test/');
});

after(() => browser?.close());

/** Runs a job in a fresh Web Worker of the page; image data travels as plain arrays. */
async function inWorker<T>(job: string, args: unknown): Promise<T> {
  const r = await page.evaluate(
    ({ job, args }) =>
      new Promise<{ ok?: unknown; error?: string }>((resolve) => {
        const w = new Worker('/worker.js');
        w.onmessage = (e) => {
          w.terminate();
          resolve(e.data);
        };
        w.onerror = (e) => resolve({ error: `worker failed: ${e.message}` });
        w.postMessage({ job, args });
      }),
    { job, args },
  );
  if (r.error !== undefined) throw new Error(r.error);
  return r.ok as T;
}

interface Plain {
  width: number;
  height: number;
  data: number[];
}
const plain = (i: RgbImage): Plain => ({ width: i.width, height: i.height, data: [...i.data] });
const rgb = (p: Plain): RgbImage => ({ width: p.width, height: p.height, data: new Uint8Array(p.data) });
const pattern = (w: number, h: number, seed: number): RgbImage => ({
  width: w,
  height: h,
  data: new Uint8Array(patternPixels(w, h, seed)),
});

function psnr(x: RgbImage, y: RgbImage): number {
  assert.deepEqual([x.width, x.height], [y.width, y.height]);
  let s = 0;
  for (let i = 0; i < x.data.length; i++) s += (x.data[i]! - y.data[i]!) ** 2;
  return 10 * Math.log10((255 * 255) / (s / x.data.length));
}

/** A smooth picture (gradients and a slow wave): resamplers agree on it, unlike on a sawtooth pattern. */
function smooth(w: number, h: number): RgbImage {
  const img = pattern(w, h, 0);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      img.data.set(
        [(255 * x) / w, (255 * y) / h, 128 + 100 * Math.sin(x / 9) * Math.cos(y / 7)].map(Math.round),
        (y * w + x) * 3,
      );
  return img;
}

test('in a Web Worker, pairsFromImages with the canvas codec gives Node’s pairs bit for bit (no JPEG, no resize)', {
  skip,
}, async () => {
  const files = Array.from({ length: 5 }, (_, i) => ({
    path: `drop/p${i}.png`,
    image: pattern(64, 32 + 32 * (i % 3), i),
  }));
  const aligned = [{ path: 'x.png', image: pattern(64, 32, 7) }];
  const cases: [{ path: string; image: RgbImage }[], Omit<InMemoryOptions, 'codec'>][] = [
    [files, { kind: 'photos', degrade: 'blur:1+gaussian:10+gray', size: 32, seed: 3 }],
    [files, { kind: 'photos', degrade: 'edges+poisson:30+saltpepper:0.05', size: 16, split: 0.6 }],
    [aligned, { kind: 'aligned', degrade: 'gaussian:25', size: 32, flat: 0 }],
  ];
  for (const [input, opts] of cases) {
    const node = await pairsFromImages(input, { ...opts, codec: sharpCodec });
    const web = await inWorker<{
      train: { name: string; a: Plain; b: Plain }[];
      test: unknown[];
      sources: unknown;
    }>('pairs', { files: input.map((f) => ({ path: f.path, ...plain(f.image) })), opts });
    const side = (ps: typeof node.train) => ps.map((p) => ({ name: p.name, a: plain(p.a), b: plain(p.b) }));
    assert.deepEqual(
      web,
      { train: side(node.train), test: side(node.test), sources: node.sources },
      opts.degrade,
    );
  }
});

test('in a Web Worker, dropped files decode as decodeRgb decodes them; an unreadable one is one line', {
  skip,
}, async () => {
  const img = pattern(40, 24, 5);
  const png = await encodePng(img);
  assert.deepEqual(rgb(await inWorker<Plain>('decode', { bytes: [...png] })), img);
  // Alpha is composited on white, as in Node.
  const rgba = Buffer.alloc(8 * 8 * 4, 0);
  for (let i = 0; i < 64; i++) rgba.set([200, 30, 30, i < 32 ? 0 : 128], 4 * i);
  const withAlpha = await sharp(rgba, { raw: { width: 8, height: 8, channels: 4 } })
    .png()
    .toBuffer();
  const web = rgb(await inWorker<Plain>('decode', { bytes: [...withAlpha] }));
  const node = await decodeRgb(withAlpha);
  assert.ok(
    web.data.every((v, i) => Math.abs(v - node.data[i]!) <= 1),
    `${web.data} vs ${node.data}`,
  );
  // EXIF orientation applied: a 48x32 JPEG marked "rotate 90" is 32x48.
  const turned = await sharp(patternPixels(48, 32, 2), { raw: { width: 48, height: 32, channels: 3 } })
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const t = rgb(await inWorker<Plain>('decode', { bytes: [...turned] }));
  assert.deepEqual([t.width, t.height], [32, 48]);
  assert.ok(psnr(t, await decodeRgb(turned)) > 35, `${psnr(t, await decodeRgb(turned))}`);
  await assert.rejects(
    inWorker('pairs', {
      files: [{ path: 'notes.txt', bytes: [...Buffer.from('not an image')] }],
      opts: { kind: 'photos', degrade: 'gray', size: 8 },
    }),
    (e: Error) =>
      /^notes\.txt is not an image this browser can read \(.+\): remove it, or drop only images$/.test(
        e.message,
      ),
  );
});

// Chromium's JPEG is libjpeg-turbo as sharp's is: with Debian's Chromium and sharp 0.34 the results were
// identical, and other browsers need only be close. Resampling differs by filter (about 50 dB here).
test('in a Web Worker, JPEG and resampling by the canvas are close to sharp’s', { skip }, async () => {
  const clean = pattern(64, 64, 4);
  for (const q of [20, 75]) {
    const web = rgb(await inWorker<Plain>('jpeg', { image: plain(clean), quality: q }));
    const node = await sharpCodec.jpeg(clean, q);
    const [pw, pn] = [psnr(web, clean), psnr(node, clean)];
    assert.ok(Math.abs(pw - pn) < 1, `quality ${q}: ${pw} dB in the browser, ${pn} dB with sharp`);
    assert.ok(psnr(web, node) > 35, `quality ${q}: browser vs sharp ${psnr(web, node)} dB`);
  }
  const big = smooth(96, 72);
  const web = rgb(await inWorker<Plain>('resize', { image: plain(big), width: 32, height: 24 }));
  const node = await sharpCodec.resize(big, 32, 24);
  assert.ok(psnr(web, node) > 30, `resize: browser vs sharp ${psnr(web, node)} dB`);
});
