import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import sharp from 'sharp';
import { SeededRandom } from '../../src/data/seeded.js';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { loadGenerator } from '../../src/infer/load.js';
import { withDropoutSeed } from '../../src/models/fused.js';
import { validateConfig } from '../../src/train/config.js';
import {
  applyStep,
  createTrainState,
  disposeTrainState,
  stepDropoutSeed,
  stepGradients,
} from '../../src/train/step.js';
import { datasetPairs } from '../../src/web/datasets.js';
import { type ServeHandle, serve } from '../../src/web/server.js';
import type { TrainStatus } from '../../src/web/train-types.js';
import { CPU_REF, registerCpuReference } from '../backend/cpu-reference.js';
import { assertSameStep, type StepRecord } from '../backend/step-compare.js';
import { CLI, extract, tempDir } from '../helpers.js';

const WEBGPU = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan'];

/**
 * The Node side of the page's first step: the same batch (the served names in the server's order,
 * shuffled by SeededRandom(seed * 7919 + 1) as the page's worker does; PNGs decoded by sharp, exact
 * at their own size as the page's drawImage is), the same init (seeded initialisers) and dropout
 * seed, on the cpu backend.
 */
async function nodeFirstStep(
  dataDir: string,
  o: { dataset: string; seed: number; batch: number; ngf: number; ndf: number },
): Promise<StepRecord> {
  const names = (await datasetPairs(dataDir, o.dataset))!.train;
  const order = new SeededRandom(o.seed * 7919 + 1).shuffle(names.map((_, i) => i));
  const chosen = order.slice(0, o.batch).map((i) => names[i]!);
  const side = async (s: 'A' | 'B') => {
    const buf = new Float32Array(o.batch * 32 * 32 * 3);
    for (const [k, n] of chosen.entries()) {
      const raw = await sharp(join(dataDir, o.dataset, 'train', s, n))
        .removeAlpha()
        .raw()
        .toBuffer();
      assert.equal(raw.length, 32 * 32 * 3, n);
      for (let i = 0; i < raw.length; i++) buf[k * raw.length + i] = raw[i]! / 127.5 - 1;
    }
    return tf.tensor4d(buf, [o.batch, 32, 32, 3]);
  };
  registerCpuReference();
  const was = tf.getBackend();
  await tf.setBackend(CPU_REF);
  try {
    const config = validateConfig({
      data: o.dataset,
      out: '(node)',
      size: 32,
      ngf: o.ngf,
      ndf: o.ndf,
      batchSize: o.batch,
      seed: o.seed,
    });
    const state = createTrainState(config);
    const [a, b] = [await side('A'), await side('B')];
    const pending = withDropoutSeed(stepDropoutSeed(o.seed, 1), () => stepGradients(state, a, b));
    const grads = await Promise.all(
      pending.updates.map((u) =>
        Promise.all(u.opt.variables.map(async (v) => (await u.grads[v.name]!.data()) as Float32Array)),
      ),
    );
    const losses = await applyStep(pending);
    tf.dispose([a, b]);
    disposeTrainState(state);
    return { losses, grads };
  } finally {
    if (was) await tf.setBackend(was);
  }
}

/** Runs the real CLI entry as a user would; fails the test with its stderr when it fails. */
function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `pix2pix ${args.join(' ')}: ${r.stderr}`);
  return r.stdout + r.stderr;
}

/** Presses a Download button and keeps the file, then extracts it with `tool`; returns the folder it made. */
async function downloadAndExtract(
  page: Page,
  button: string,
  dir: string,
  tool: 'unzip' | 'python',
): Promise<string> {
  const [file] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click(button)]);
  const name = file.suggestedFilename();
  assert.match(name, /^pix2pix-(model|run)-step-\d+\.zip$/);
  await mkdir(dir, { recursive: true });
  await file.saveAs(join(dir, name));
  extract(tool, join(dir, name), dir);
  return join(dir, name.replace(/\.zip$/, ''));
}

/** Every weight of a generator, flattened (cpu backend: read synchronously). */
function weightsOf(G: Awaited<ReturnType<typeof loadGenerator>>['G']): Float32Array[] {
  return G.getWeights().map((w) => w.dataSync() as Float32Array);
}

/** A PNG of `w` x `h` random pixels (never flat), from a seed. */
function noisePng(w: number, h: number, seed: number): Promise<Buffer> {
  let x = seed * 2654435761;
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < px.length; i++) {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    px[i] = x & 255;
  }
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toBuffer();
}

/**
 * Folders a user might drop: `pairs` (A/ and B/ of the served dataset's 16 training pairs), `photos`
 * (three 64 px photos), and the bad ones, each with one fault.
 */
async function writeDrops(dir: string, dataset: string): Promise<void> {
  await cp(join(dataset, 'train'), join(dir, 'pairs'), { recursive: true });
  await mkdir(join(dir, 'photos'), { recursive: true });
  for (const i of [1, 2, 3])
    await writeFile(join(dir, 'photos', `photo-${i}.png`), await noisePng(64, 64, i));
  await mkdir(join(dir, 'mismatch', 'A'), { recursive: true });
  await mkdir(join(dir, 'mismatch', 'B'), { recursive: true });
  await writeFile(join(dir, 'mismatch', 'A', 'x.png'), await noisePng(32, 32, 4));
  await writeFile(join(dir, 'mismatch', 'B', 'x.png'), await noisePng(32, 48, 5));
  await mkdir(join(dir, 'text'), { recursive: true });
  await writeFile(join(dir, 'text', 'photo-1.png'), await noisePng(64, 64, 6));
  await writeFile(join(dir, 'text', 'notes.png'), 'not a picture\n');
  await mkdir(join(dir, 'small'), { recursive: true });
  await writeFile(join(dir, 'small', 'tiny.png'), await noisePng(20, 20, 7));
}

/** The page's first-step probe (probe=1), its gradients passed as base64 of their float32 bytes. */
async function pageFirstStep(page: Page): Promise<StepRecord> {
  await waitFor(page, (s) => s.step >= 1, 120_000);
  // A string, not a function: tsx would wrap the function's inner names in a helper the page lacks.
  const got = (await page.evaluate(`(async () => {
    const p = await globalThis.p2pTrain.firstStep();
    const b64 = (f) => {
      const bytes = new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
      let bin = '';
      for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      return btoa(bin);
    };
    return { losses: p.losses, grads: p.grads.map((u) => u.map(b64)) };
  })()`)) as { losses: StepRecord['losses']; grads: string[][] };
  return {
    losses: got.losses,
    grads: got.grads.map((u) =>
      u.map((t) => {
        const buf = Buffer.from(t, 'base64');
        return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      }),
    ),
  };
}

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/web', import.meta.url));
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium)`;

/**
 * Polls the page's status until `ok` holds (or fails after `ms`), and returns it; an error fails it
 * unless `errorEnds` (a refusal is what it waits for).
 */
async function waitFor(
  page: Page,
  ok: (s: TrainStatus) => boolean,
  ms = 60_000,
  { errorEnds = false } = {},
): Promise<TrainStatus> {
  const until = Date.now() + ms;
  for (;;) {
    const s = await status(page);
    if (ok(s)) return s;
    if (!errorEnds) assert.notEqual(s.state, 'error', s.error);
    if (Date.now() > until) throw new Error(`waited ${ms} ms; status ${JSON.stringify(s)}`);
    await page.waitForTimeout(50);
  }
}

/** The page's status as it publishes it, read from document.body.dataset.trainStatus. */
async function status(page: Page): Promise<TrainStatus> {
  return JSON.parse((await page.evaluate(() => document.body.dataset.trainStatus)) ?? '{}') as TrainStatus;
}

/**
 * Polls the status until it is done or failed, recording the losses of every step seen (a step
 * takes about a second on the software adapter, the poll 100 ms).
 */
async function trainToEnd(
  page: Page,
  timeoutMs: number,
): Promise<{ end: TrainStatus; l1: Map<number, number> }> {
  const l1 = new Map<number, number>();
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await status(page);
    if (s.losses && s.step) l1.set(s.step, s.losses.gL1);
    if (s.state === 'done' || s.state === 'error') return { end: s, l1 };
    if (Date.now() > until) throw new Error(`not done after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await page.waitForTimeout(100);
  }
}

describe('the train page in Chromium', { skip }, () => {
  let srv: ServeHandle;
  // One Chromium per set of launch flags, shared by the tests; each page gets a context of its own
  // (its own IndexedDB), closed when its test ends.
  const browsers = new Map<string, Browser>();
  let contexts: BrowserContext[] = [];
  const url = (query: string) => `${srv.url}train?${query}`;

  let root: string;

  before(async () => {
    root = await tempDir('p2p-train-page-');
    await mkdir(join(root, 'runs'));
    await writeSyntheticDataset(join(root, 'data', 'shapes'), { count: 20, size: 32, seed: 4 });
    // Three pairs (2 to train, 1 held out) for the WebGPU runs: SwiftShader is slow even for the tiny
    // model (~1 s a step of batch 2), and one batch seen every step is fitted within a few.
    await writeSyntheticDataset(join(root, 'data', 'few'), { count: 3, size: 32, seed: 4 });
    srv = await serve({ runs: join(root, 'runs'), data: join(root, 'data'), port: 0 });
    await writeDrops(join(root, 'drop'), join(root, 'data', 'shapes'));
    // A served run to fine-tune: one epoch at 32 px, ngf and ndf 8.
    cli(
      'train',
      '--data',
      join(root, 'data', 'shapes'),
      '--out',
      join(root, 'runs', 'base'),
      '--size',
      '32',
      '--ngf',
      '8',
      '--ndf',
      '8',
      '--epochs',
      '1',
      '--epochs-decay',
      '0',
      '--batch-size',
      '4',
    );
    await mkdir(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    for (const b of browsers.values()) await b.close();
    await srv?.close();
  });

  afterEach(async () => {
    for (const c of contexts) await c.close();
    contexts = [];
  });

  async function open(args: string[], query: string): Promise<Page> {
    const key = args.join(' ');
    let browser = browsers.get(key);
    if (!browser) {
      browser = await chromium.launch({ executablePath: CHROMIUM, args });
      browsers.set(key, browser);
    }
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(url(query));
    return page;
  }

  it("trains 8 steps at 32 px on WebGPU (software adapter) from URL settings, the L1 loss falling; its first step equals Node's cpu step from the same init and batch", async (t) => {
    const page = await open(
      WEBGPU,
      'dataset=few&size=32&ngf=8&ndf=8&batch=2&steps=8&seed=2&lr=0.002&backend=webgpu&probe=1&autostart=1',
    );
    // The probe (probe=1) keeps step 1's losses and gradients; training goes on. Node's step from the
    // same init and batch: losses within 1e-3, gradients within 1e-2 of their norms.
    const onPage = await pageFirstStep(page);
    const inNode = await nodeFirstStep(join(root, 'data'), {
      dataset: 'few',
      seed: 2,
      batch: 2,
      ngf: 8,
      ndf: 8,
    });
    assertSameStep(onPage, inNode, 'page');
    const { end, l1 } = await trainToEnd(page, 300_000);
    await page.screenshot({ path: join(ARTIFACTS, 'train-webgpu.png') });
    assert.equal(end.state, 'done', end.error);
    assert.equal(end.backend, 'webgpu');
    assert.match(end.adapter ?? '', /swiftshader/i);
    assert.equal(end.step, 8);
    assert.equal(end.epoch, 8, '2 train pairs in batches of 2: a step an epoch');
    assert.deepEqual(end.pairs, { train: 2, test: 1 });
    // Scored on the held-out pair at each epoch's end.
    assert.deepEqual(
      end.evals?.map((r) => [r.epoch, r.step]),
      [1, 2, 3, 4, 5, 6, 7, 8].map((e) => [e, e]),
    );
    for (const r of end.evals!)
      assert.ok(r.psnr > 0 && r.psnr < 100 && r.ssim > -1 && r.ssim <= 1, JSON.stringify(r));
    assert.equal(end.gridEpoch, 8);
    // The grid: input | target | output of the held-out pair, 32 px each.
    const grid = await page
      .locator('#grid')
      .evaluate((img: HTMLImageElement) => [img.naturalWidth, img.naturalHeight]);
    assert.deepEqual(grid, [96, 32]);
    assert.match((await page.locator('#about').textContent()) ?? '', /split: 2 training pairs, 1 held out/);
    // The same batch every step, but dropout differs: the first three steps against the last three.
    const seen = [...l1.entries()].sort((a, b) => a[0] - b[0]);
    assert.ok(seen.length >= 7 && seen[0]![0] <= 2, `steps seen: ${seen.map(([k]) => k).join(',')}`);
    const mean = (xs: [number, number][]) => xs.reduce((t, [, v]) => t + v, 0) / xs.length;
    const [early, late] = [mean(seen.slice(0, 3)), mean(seen.slice(-3))];
    t.diagnostic(`mean L1 of the first 3 steps ${early.toFixed(3)}, of the last 3 ${late.toFixed(3)}`);
    assert.ok(late < early * 0.9, `mean L1 of the first 3 steps ${early}, of the last 3 ${late}`);
  });

  it('a lost GPU device stops training with one message naming the saved step, and that state resumes (here on WASM)', async () => {
    const query = 'dataset=few&size=32&ngf=8&ndf=8&batch=1&steps=200&saveEvery=1&seed=3&autostart=1';
    const page = await open(WEBGPU, `${query}&backend=webgpu`);
    await waitFor(page, (s) => s.savedStep >= 1, 180_000);
    await page.evaluate('globalThis.p2pTrain.loseDevice()');
    const { end } = await trainToEnd(page, 60_000);
    await page.screenshot({ path: join(ARTIFACTS, 'train-device-lost.png') });
    assert.equal(end.state, 'error');
    const m =
      /^the WebGPU device was lost \(destroyed[^)]*\); the state saved at step (\d+) is kept: reload the page to resume from it$/.exec(
        end.error ?? '',
      );
    assert.ok(m, end.error);
    assert.equal(Number(m[1]), end.savedStep);
    assert.match((await page.locator('#status').textContent()) ?? '', /device was lost/);
    // The same run (the backend and length are not part of it) resumes from that state.
    await page.goto(url(`${query.replace('steps=200', `steps=${end.savedStep + 2}`)}&backend=wasm`));
    const again = await trainToEnd(page, 120_000);
    assert.equal(again.end.state, 'done', again.end.error);
    assert.equal(again.end.resumedFrom, end.savedStep);
    assert.equal(again.end.step, end.savedStep + 2);
  });

  /** Opens the page with `query`, chooses the folder `drop/<name>` as a user would, and presses Start. */
  async function trainOnFolder(name: string, query: string): Promise<{ page: Page; end: TrainStatus }> {
    const page = await open([], query);
    await page.setInputFiles('#folder', join(root, 'drop', name));
    await page.click('#start');
    const { end } = await trainToEnd(page, 120_000);
    return { page, end };
  }

  it('a dropped folder of A/ and B/ pairs trains, the split shown', async () => {
    const { page, end } = await trainOnFolder('pairs', 'size=32&ngf=8&ndf=8&batch=4&steps=2&backend=wasm');
    assert.equal(end.state, 'done', end.error);
    assert.equal(end.pairs?.kind, 'folders');
    // prepare's split of 16 sources 8:2 by source: each pair is its own source here.
    assert.equal(end.pairs!.train + end.pairs!.test, 16);
    assert.equal(end.pairs!.trainSources, end.pairs!.train);
    assert.ok(end.pairs!.test >= 1);
    assert.match(
      (await page.locator('#about').textContent()) ?? '',
      /your files as folders pairs; split: \d+ training pairs from \d+ sources/,
    );
    assert.equal(end.step, 2);
  });

  it('dropped photos are tiled and degraded in the tab as prepare does, split by photo', async () => {
    const { page, end } = await trainOnFolder(
      'photos',
      'size=32&ngf=8&ndf=8&batch=2&steps=2&kind=photos&degrade=gaussian:25&backend=wasm',
    );
    await page.screenshot({ path: join(ARTIFACTS, 'train-dropped-photos.png') });
    assert.equal(end.state, 'done', end.error);
    assert.equal(end.pairs?.kind, 'photos');
    // Three 64 px photos, four 32 px tiles each, every tile of a photo on one side.
    assert.deepEqual(
      [end.pairs!.trainSources! + end.pairs!.testSources!, end.pairs!.train + end.pairs!.test],
      [3, 12],
    );
    assert.equal(end.pairs!.train, 4 * end.pairs!.trainSources!);
    assert.equal(end.evals?.length, 1, 'scored on the held-out photo');
  });

  it('dropped bad files are one message each naming the file or the limit, and nothing trains; the next folder chosen starts again', async () => {
    // One page, as a user would meet them: each refusal, then the next folder chosen and Start.
    const page = await open([], 'size=32&ngf=8&ndf=8&steps=2&backend=wasm');
    const cases: [string, { kind: string; batch: number }, RegExp][] = [
      [
        'mismatch',
        { kind: 'auto', batch: 1 },
        /^mismatch\/A\/x\.png is 32x32 but mismatch\/B\/x\.png is 32x48$/,
      ],
      ['text', { kind: 'photos', batch: 1 }, /^text\/notes\.png is not an image this browser can read/],
      ['small', { kind: 'photos', batch: 1 }, /^small\/tiny\.png is 20x20, smaller than the size 32$/],
      ['pairs', { kind: 'auto', batch: 64 }, /^\d+ training pairs, fewer than a batch of 64/],
    ];
    let before: string | undefined;
    for (const [name, { kind, batch }, message] of cases) {
      await page.selectOption('#kind', kind);
      await page.fill('#batch', String(batch));
      await page.setInputFiles('#folder', join(root, 'drop', name));
      await page.click('#start');
      // The status keeps the last refusal until the new worker reports: wait for another outcome.
      const end = await waitFor(
        page,
        (s) => s.state === 'done' || (s.state === 'error' && s.error !== before),
        120_000,
        { errorEnds: true },
      );
      before = end.error;
      assert.equal(end.state, 'error', name);
      assert.match(end.error ?? '', message, name);
      assert.ok(!end.error!.includes('\n'), 'one line');
      assert.equal(end.step, 0, `${name}: no step trained`);
      assert.equal(end.savedStep, 0, `${name}: nothing saved`);
    }
  });

  it('Download gives a run folder that `pix2pix train --resume` continues, and a model that `translate` uses', async () => {
    const page = await open(
      [],
      'dataset=shapes&size=32&ngf=8&ndf=8&batch=4&steps=6&backend=wasm&autostart=1',
    );
    const { end } = await trainToEnd(page, 120_000);
    assert.equal(end.state, 'done', end.error);
    // 16 pairs in batches of 4: step 6 is in epoch 2, after its second batch.
    const run = await downloadAndExtract(page, '#download-run', join(root, 'dl-run'), 'unzip');
    const meta = JSON.parse(await readFile(join(run, 'checkpoints', 'latest', 'meta.json'), 'utf8'));
    assert.deepEqual([meta.epoch, meta.step, meta.batchInEpoch], [2, 6, 2]);
    const rows = (await readFile(join(run, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      rows.map((r) => r.step),
      [1, 2, 3, 4, 5, 6],
    );
    const log = cli(
      'train',
      '--resume',
      '--data',
      join(root, 'data', 'shapes'),
      '--out',
      run,
      '--backend',
      'wasm',
    );
    assert.match(log, /resuming from .*epoch-0002-step-00000006 \(epoch 2, step 6\)/);
    const after = JSON.parse(await readFile(join(run, 'checkpoints', 'latest', 'meta.json'), 'utf8'));
    assert.deepEqual(
      [after.epoch, after.step, after.batchInEpoch],
      [2, 8, undefined],
      'epoch 2 finished in Node',
    );

    const model = await downloadAndExtract(page, '#download-model', join(root, 'dl-model'), 'python');
    const out = join(root, 'dl-model', 'out.png');
    cli(
      'translate',
      '--model',
      model,
      '--input',
      join(root, 'data', 'shapes', 'test', 'A', (await datasetPairs(join(root, 'data'), 'shapes'))!.test[0]!),
      '--output',
      out,
      '--backend',
      'wasm',
    );
    const { width, height } = await sharp(out).metadata();
    assert.deepEqual([width, height], [32, 32]);
  });

  it('fine-tunes a served run: 10 steps from its checkpoint, the result differs from it and loads in Node', async () => {
    const page = await open([], 'finetune=base&dataset=shapes&batch=4&steps=10&backend=wasm&autostart=1');
    const { end } = await trainToEnd(page, 120_000);
    assert.equal(end.state, 'done', end.error);
    assert.equal(end.finetunedFrom, 'base (epoch 1, step 4)');
    assert.deepEqual(
      end.model,
      { size: 32, ngf: 8, ndf: 8, depth: 5, norm: 'instance' },
      "the run's model, not the page's defaults",
    );
    const tuned = await downloadAndExtract(page, '#download-run', join(root, 'dl-tuned'), 'unzip');
    const was = tf.getBackend();
    await tf.setBackend('cpu');
    const [from, to] = [await loadGenerator(join(root, 'runs', 'base')), await loadGenerator(tuned)];
    try {
      const [a, b] = [weightsOf(from.G), weightsOf(to.G)];
      assert.equal(a.length, b.length);
      assert.ok(
        a.every((w, i) => w.length === b[i]!.length),
        'the same network',
      );
      const moved = a.filter((w, i) => w.some((v, j) => v !== b[i]![j])).length;
      assert.ok(moved > a.length / 2, `${moved} of ${a.length} weights changed`);
      assert.equal(to.meta.step, 10);
    } finally {
      from.G.dispose();
      to.G.dispose();
      if (was) await tf.setBackend(was);
    }
  });

  it("a preset trains with its model, rate and schedule (the denoise preset's first epochs are L1 only)", async () => {
    const page = await open(
      [],
      'preset=denoise&dataset=shapes&size=32&batch=4&steps=1&backend=wasm&autostart=1',
    );
    const { end } = await trainToEnd(page, 120_000);
    assert.equal(end.state, 'done', end.error);
    assert.deepEqual(end.model, { size: 32, ngf: 32, ndf: 64, depth: 5, norm: 'instance' });
    assert.equal(end.lr, 1e-3, "the preset's rate");
    assert.equal(end.adversarial, false, 'epoch 1 of 42 L1-only epochs: D does not train');
    assert.equal(end.losses?.d, null, 'no D loss (NaN, null in JSON)');
  });

  it('a model too big for the WebGPU adapter is refused in one line before any image is read', async () => {
    const page = await open(
      WEBGPU,
      'dataset=shapes&size=2048&ngf=128&batch=1&steps=1&backend=webgpu&autostart=1',
    );
    const { end } = await trainToEnd(page, 120_000);
    assert.equal(end.state, 'error');
    assert.match(
      end.error ?? '',
      /^the model is too big for this WebGPU adapter: one 2048 px pair at ngf 128 makes a ~2048 MiB tensor and the adapter binds at most 1024 MiB; lower the size or ngf$/,
    );
    assert.equal(end.pairs, undefined, 'no pair was read');
  });

  it('without WebGPU it says so and trains on WASM', async () => {
    const page = await open(
      ['--disable-features=WebGPU'],
      'dataset=shapes&size=32&ngf=8&ndf=8&batch=4&steps=4&autostart=1',
    );
    const { end } = await trainToEnd(page, 120_000);
    await page.screenshot({ path: join(ARTIFACTS, 'train-wasm.png') });
    assert.equal(end.state, 'done', end.error);
    assert.equal(end.backend, 'wasm');
    assert.match(end.note ?? '', /^WebGPU not used \(.+\): training on WASM$/);
    assert.match((await page.locator('#status').textContent()) ?? '', /WebGPU not used/);
    assert.ok(end.losses && Number.isFinite(end.losses.gL1));
  });

  it('a reload mid-run resumes from the state saved in IndexedDB at that step, and trains on to the end', async () => {
    const query = 'dataset=shapes&size=32&ngf=8&ndf=8&batch=4&steps=16&saveEvery=4&backend=wasm&autostart=1';
    const page = await open([], query);
    const before = await waitFor(page, (s) => s.savedStep >= 8);
    assert.equal(before.state, 'training', 'reloaded before the end');
    await page.reload();
    const { end } = await trainToEnd(page, 120_000);
    assert.equal(end.state, 'done', end.error);
    // A save may finish between the read above and the reload: then it resumes from that one.
    assert.ok(
      end.resumedFrom === before.savedStep || end.resumedFrom === before.savedStep + 4,
      `resumed from ${end.resumedFrom}, saved ${before.savedStep} before the reload`,
    );
    assert.equal(end.step, 16);
    assert.equal(end.savedStep, 16);
    assert.ok(end.losses && Number.isFinite(end.losses.gL1));
  });

  it('pause stops after the step in flight with that step saved, resume trains on to the end', async () => {
    const page = await open(
      [],
      'dataset=shapes&size=32&ngf=8&ndf=8&batch=4&steps=10&saveEvery=100&backend=wasm&autostart=1',
    );
    await waitFor(page, (s) => s.step >= 3);
    await page.click('#pause');
    const paused = await waitFor(page, (s) => s.state === 'paused');
    assert.equal(paused.savedStep, paused.step, 'saved at the pause');
    await page.waitForTimeout(1500);
    assert.equal((await status(page)).step, paused.step, 'no step while paused');
    assert.equal(await page.locator('#pause').textContent(), 'Resume');
    await page.click('#pause');
    const { end } = await trainToEnd(page, 120_000);
    assert.equal(end.state, 'done', end.error);
    assert.equal(end.step, 10);
  });

  it('a dataset it does not have, or a bad number in the URL, is one message in the status', async () => {
    const missing = await open([], 'dataset=nope&size=32&steps=1&backend=wasm&autostart=1');
    const m = await trainToEnd(missing, 60_000);
    assert.equal(m.end.state, 'error');
    assert.match(m.end.error ?? '', /no dataset 'nope'/);
    await missing.goto(url('dataset=shapes&size=big'));
    const b = await status(missing);
    assert.equal(b.state, 'error');
    assert.equal(b.error, 'URL parameter size=big is not a whole number');
  });
});
