import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import '@tensorflow/tfjs-backend-cpu';
import { DatasetWriter } from '../../src/data/dataset.js';
import { newImage } from '../../src/data/image.js';
import { cropRgb, onTheFlyDegradation, openPairs } from '../../src/data/loader.js';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import type { LoaderOptions, PairBatch } from '../../src/data/types.js';
import { type Logger, UserError } from '../../src/util/log.js';
import { patternPixels, rawPixels, tempDir, writeImage } from './helpers.js';

await tf.setBackend('cpu');

const base: LoaderOptions = {
  batchSize: 4,
  size: 32,
  augment: false,
  seed: 1,
  dropLast: false,
  direction: 'AtoB',
};

interface Collected {
  names: string[][];
  shapes: number[][];
  a: Float32Array[];
  b: Float32Array[];
}

async function collect(it: AsyncIterable<PairBatch>): Promise<Collected> {
  const out: Collected = { names: [], shapes: [], a: [], b: [] };
  for await (const batch of it) {
    out.names.push(batch.names);
    out.shapes.push(batch.a.shape, batch.b.shape);
    out.a.push(batch.a.dataSync() as Float32Array);
    out.b.push(batch.b.dataSync() as Float32Array);
    batch.a.dispose();
    batch.b.dispose();
  }
  return out;
}

/** One item of a batch as 0..255 values. */
function item(batch: Float32Array, i: number, size = 32): number[] {
  const px = size * size * 3;
  return [...batch.subarray(i * px, (i + 1) * px)].map((v) => Math.round((v + 1) * 127.5));
}

function mirror(pixels: number[], size = 32): number[] {
  const out = new Array<number>(pixels.length);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      for (let c = 0; c < 3; c++) out[(y * size + x) * 3 + c] = pixels[(y * size + (size - 1 - x)) * 3 + c]!;
    }
  }
  return out;
}

let synthetic: string | undefined;
async function dataset(): Promise<string> {
  if (!synthetic) {
    synthetic = join(await tempDir(), 'ds');
    await writeSyntheticDataset(synthetic, { count: 10, size: 32, seed: 5 });
  }
  return synthetic;
}

/** A bare train/test layout whose A and B files are identical, so any misalignment shows. */
async function identicalPairs(n: number, size = 32): Promise<string> {
  const dir = join(await tempDir(), 'same');
  for (const split of ['train', 'test']) {
    for (const side of ['A', 'B']) await mkdir(join(dir, split, side), { recursive: true });
    for (let i = 0; i < n; i++) {
      for (const side of ['A', 'B']) await writeImage(join(dir, split, side, `p${i}.png`), size, size, i);
    }
  }
  return dir;
}

test('batches have NHWC shapes, values in [-1, 1] that match the files, and no leaked tensors', async () => {
  const dir = await dataset();
  const src = await openPairs(dir, 'train', { ...base, shuffle: false });
  assert.equal(src.length, 8);
  const before = tf.memory().numTensors;
  const c = await collect(src.batches(0));
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(c.shapes, Array(4).fill([4, 32, 32, 3]));
  const file = await rawPixels(join(dir, 'train', 'B', c.names[0]![0]!));
  for (let i = 0; i < file.data.length; i++)
    assert.ok(Math.abs(c.b[0]![i]! - (file.data[i]! / 127.5 - 1)) < 1e-6);
  for (const d of [...c.a, ...c.b]) for (const v of d) assert.ok(v >= -1 && v <= 1);
  assert.ok(
    c.a.some((d) => d.some((v) => v === -1 || v === 1)),
    'the full range is used',
  );
});

test('train order is a seeded shuffle per epoch; test keeps name order', async () => {
  const dir = await dataset();
  const order = async (seed: number, epoch: number, split: 'train' | 'test' = 'train') =>
    (await collect((await openPairs(dir, split, { ...base, seed })).batches(epoch))).names.flat();
  const e0 = await order(1, 0);
  assert.deepEqual(await order(1, 0), e0);
  assert.equal(new Set(e0).size, 8);
  assert.notDeepEqual(await order(1, 1), e0);
  assert.notDeepEqual(await order(2, 0), e0);
  const t = await order(1, 3, 'test');
  assert.deepEqual(t, [...t].sort());
  assert.equal(t.length, 2);
});

test('the last partial batch is kept or dropped', async () => {
  const dir = await dataset();
  const kept = await openPairs(dir, 'train', { ...base, batchSize: 3 });
  assert.deepEqual(
    (await collect(kept.batches(0))).names.map((n) => n.length),
    [3, 3, 2],
  );
  assert.equal(kept.batchCount, 3);
  const dropped = await openPairs(dir, 'train', { ...base, batchSize: 3, dropLast: true });
  assert.deepEqual(
    (await collect(dropped.batches(0))).names.map((n) => n.length),
    [3, 3],
  );
  assert.equal(dropped.batchCount, 2);
  const big = await openPairs(dir, 'train', { ...base, batchSize: 20, dropLast: true });
  assert.equal((await collect(big.batches(0))).names.length, 0);
});

test('augmentation crops and flips A and B alike, is seeded per epoch, and never touches test', async () => {
  const dir = await identicalPairs(8);
  const aug = { ...base, augment: true, batchSize: 8 };
  const train = await collect((await openPairs(dir, 'train', aug)).batches(0));
  assert.deepEqual(train.a, train.b);
  const originals = new Map<string, number[]>();
  for (let i = 0; i < 8; i++) originals.set(`p${i}.png`, [...patternPixels(32, 32, i)]);
  const changed = train.names[0]!.filter(
    (n, i) => JSON.stringify(item(train.a[0]!, i)) !== JSON.stringify(originals.get(n)),
  );
  assert.ok(changed.length >= 6, `only ${changed.length} of 8 augmented`);
  assert.deepEqual(await collect((await openPairs(dir, 'train', aug)).batches(0)), train);
  assert.notDeepEqual((await collect((await openPairs(dir, 'train', aug)).batches(1))).a, train.a);

  const test_ = await collect((await openPairs(dir, 'test', aug)).batches(0));
  for (const [i, n] of test_.names[0]!.entries()) assert.deepEqual(item(test_.a[0]!, i), originals.get(n));

  // Flip alone: every item is the original or its mirror image, and both happen.
  const flips = await collect((await openPairs(dir, 'train', { ...aug, crop: false })).batches(0));
  let mirrored = 0;
  for (const [i, n] of flips.names[0]!.entries()) {
    const got = item(flips.a[0]!, i);
    const orig = originals.get(n)!;
    if (JSON.stringify(got) === JSON.stringify(mirror(orig))) mirrored++;
    else assert.deepEqual(got, orig);
  }
  assert.ok(mirrored > 0 && mirrored < 8, `${mirrored} of 8 mirrored`);
  // Crop alone: no item is a mirror image, and they differ from the originals.
  const crops = await collect((await openPairs(dir, 'train', { ...aug, flip: false })).batches(0));
  assert.deepEqual(crops.a, crops.b);
  assert.ok(
    crops.names[0]!.some((n, i) => JSON.stringify(item(crops.a[0]!, i)) !== JSON.stringify(originals.get(n))),
  );
  // Both off: the files as they are.
  const none = await collect(
    (await openPairs(dir, 'train', { ...aug, crop: false, flip: false })).batches(0),
  );
  for (const [i, n] of none.names[0]!.entries()) assert.deepEqual(item(none.a[0]!, i), originals.get(n));
});

test('BtoA swaps the sides', async () => {
  const dir = await dataset();
  const ab = await collect((await openPairs(dir, 'test', base)).batches(0));
  const ba = await collect((await openPairs(dir, 'test', { ...base, direction: 'BtoA' })).batches(0));
  assert.deepEqual(ba.a, ab.b);
  assert.deepEqual(ba.b, ab.a);
});

test('images of another size are resized to the requested size', async () => {
  const dir = await identicalPairs(2, 48);
  const c = await collect((await openPairs(dir, 'train', base)).batches(0));
  assert.deepEqual(c.shapes[0], [2, 32, 32, 3]);
});

test('prefetch is bounded: at most `prefetch` batches are decoded ahead of a slow consumer', async () => {
  const dir = await dataset();
  for (const prefetch of [1, 3]) {
    const src = await openPairs(dir, 'train', { ...base, batchSize: 1, prefetch });
    for await (const b of src.batches(0)) {
      await new Promise((r) => setTimeout(r, 15));
      b.a.dispose();
      b.b.dispose();
    }
    assert.equal(src.stats.maxAhead, prefetch);
    assert.equal(src.stats.batches, 8);
  }
});

test('a consumer that stops early leaves no tensors and no pending failures', async () => {
  const dir = await dataset();
  const before = tf.memory().numTensors;
  const src = await openPairs(dir, 'train', { ...base, batchSize: 2, prefetch: 3 });
  for await (const b of src.batches(0)) {
    b.a.dispose();
    b.b.dispose();
    break;
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(tf.memory().numTensors, before);
});

test('a file that breaks mid-run is skipped with a warning; the run goes on', async () => {
  const dir = await identicalPairs(6);
  const warnings: string[] = [];
  const log: Logger = { info: () => {}, warn: (m) => warnings.push(m) };
  const src = await openPairs(dir, 'train', { ...base, batchSize: 3, shuffle: false }, log);
  await writeFile(join(dir, 'train', 'A', 'p1.png'), 'overwritten by accident');
  const c = await collect(src.batches(0));
  assert.deepEqual(c.names, [
    ['p0.png', 'p2.png'],
    ['p3.png', 'p4.png', 'p5.png'],
  ]);
  assert.deepEqual(c.shapes[0], [2, 32, 32, 3]);
  assert.deepEqual(item(c.a[0]!, 1), [...patternPixels(32, 32, 2)]);
  assert.equal(src.stats.skipped, 1);
  assert.match(warnings.join('\n'), /skipping pair train\/p1\.png: /);
  for (let i = 0; i < 6; i++) await writeFile(join(dir, 'train', 'B', `p${i}.png`), 'gone');
  await assert.rejects(
    collect(src.batches(1)),
    (e: Error) => e instanceof UserError && /no pair of .* could be decoded/.test(e.message),
  );
});

test('a pair whose A fails fast while its B is still decoding: the other pairs keep A and B aligned', async () => {
  const dir = await identicalPairs(6);
  // B of p1 is large (slow to decode and shrink); A of p1 is not an image (fails at once). Before
  // both sides settled, the late B landed in the slot that p2 had been moved into.
  const big = 2400;
  const noise = Buffer.alloc(big * big * 3);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  await sharp(noise, { raw: { width: big, height: big, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toFile(join(dir, 'train', 'B', 'p1.png'));
  await writeFile(join(dir, 'train', 'A', 'p1.png'), 'not a png');
  const log: Logger = { info: () => {}, warn: () => {} };
  const src = await openPairs(dir, 'train', { ...base, batchSize: 6, shuffle: false, prefetch: 1 }, log);
  // Read the batch only once the slow side has surely finished, so a late write would show.
  const late = async function* () {
    for await (const batch of src.batches(0)) {
      await new Promise((r) => setTimeout(r, 3000));
      yield batch;
    }
  };
  const c = await collect(late());
  assert.deepEqual(c.names, [['p0.png', 'p2.png', 'p3.png', 'p4.png', 'p5.png']]);
  for (const [slot, pair] of [0, 2, 3, 4, 5].entries()) {
    const want = [...patternPixels(32, 32, pair)];
    assert.deepEqual(item(c.a[0]!, slot), want, `A of p${pair}`);
    assert.deepEqual(item(c.b[0]!, slot), want, `B of p${pair}`);
  }
});

test('bad folders and options are UserErrors', async () => {
  const missing = join(await tempDir(), 'none');
  await assert.rejects(
    openPairs(missing, 'train', base),
    (e: Error) => e instanceof UserError && /does not exist/.test(e.message),
  );
  const dir = await dataset();
  await assert.rejects(
    openPairs(dir, 'train', { ...base, batchSize: 0 }),
    /batch size must be a positive integer/,
  );
  await assert.rejects(openPairs(dir, 'train', { ...base, jitter: 0.5 }), /jitter must be >= 1/);
});

test('--crop: random crop-size crops of A and B alike, at a new place every epoch; test stays whole', async () => {
  const dir = await identicalPairs(8, 64);
  const opts = { ...base, size: 64, cropSize: 32, batchSize: 8 };
  const e0 = await collect((await openPairs(dir, 'train', opts)).batches(0));
  assert.deepEqual(e0.shapes, [
    [8, 32, 32, 3],
    [8, 32, 32, 3],
  ]);
  assert.deepEqual(e0.a, e0.b);
  // Each crop is a window of its 64 px original (no jitter or flip without --augment).
  for (const [i, n] of e0.names[0]!.entries()) {
    const orig = [...patternPixels(64, 64, Number(n.slice(1, -4)))];
    const got = item(e0.a[0]!, i);
    let found = false;
    for (let top = 0; top <= 32 && !found; top++) {
      for (let left = 0; left <= 32 && !found; left++) {
        found = got.every((v, j) => {
          const p = Math.floor(j / 3);
          return v === orig[((top + Math.floor(p / 32)) * 64 + left + (p % 32)) * 3 + (j % 3)];
        });
      }
    }
    assert.ok(found, `${n} is not a 32 px window of its image`);
  }
  assert.deepEqual(await collect((await openPairs(dir, 'train', opts)).batches(0)), e0);
  assert.notDeepEqual((await collect((await openPairs(dir, 'train', opts)).batches(1))).a, e0.a);
  const aug = await collect((await openPairs(dir, 'train', { ...opts, augment: true })).batches(0));
  assert.deepEqual(aug.shapes[0], [8, 32, 32, 3]);
  assert.deepEqual(aug.a, aug.b);
  // Without cropSize nothing changes: the same draws as before the option existed.
  const plain = await openPairs(dir, 'train', { ...base, size: 64, augment: true });
  const withFull = await openPairs(dir, 'train', { ...base, size: 64, augment: true, cropSize: 64 });
  assert.deepEqual(withFull.plan(3), plain.plan(3));
});

/**
 * A dataset like `prepare` makes with gaussian:25: flat grey B (128) unless `paint` fills it, A noisy,
 * all recorded.
 */
async function flatNoiseDataset(paint?: (b: Uint8Array, i: number) => void): Promise<string> {
  const dir = join(await tempDir(), 'flat');
  const writer = await DatasetWriter.create(dir);
  const names: string[] = [];
  for (let i = 0; i < 5; i++) {
    const b = newImage(32, 32);
    if (paint) paint(b.data, i);
    else b.data.fill(128);
    const a = newImage(32, 32);
    a.data.fill(100 + i); // a stand-in for the prepared noisy A: never read on the fly
    names.push(`flat${i}`);
    await writer.writePair(`flat${i}-0.png`, `flat${i}`, a, b);
  }
  await writer.finish(
    {
      kind: 'synthetic',
      size: 32,
      seed: 1,
      split: 0.8,
      options: { degrade: 'gaussian:25' },
      counts: { train: 0, test: 0, sources: 5, skipped: 0, flatTiles: 0 },
      sources: names.map((name) => ({ name, split: 'train' as const, pairs: 1 })),
      skipped: [],
    },
    new Map(names.map((n, i) => [n, i < 4 ? 'train' : 'test'])),
  );
  return dir;
}

test('--degrade-on-the-fly: gaussian:25 re-drawn from B per (seed, epoch, pair); test split as prepared', async () => {
  const dir = await flatNoiseDataset();
  const degrade = await onTheFlyDegradation(dir);
  assert.deepEqual(
    degrade.map((d) => d.spec),
    ['gaussian:25'],
  );
  const opts = { ...base, batchSize: 4, degrade };
  const e1 = await collect((await openPairs(dir, 'train', opts)).batches(1));
  // B is the clean file; A - B is the noise: mean 0, std 25 levels = 25 / 127.5 in [-1, 1] units.
  for (const v of e1.b[0]!) assert.ok(Math.abs(v - (128 / 127.5 - 1)) < 1e-6);
  const noise = e1.a[0]!.map((v, i) => v - e1.b[0]![i]!);
  const mean = noise.reduce((s, v) => s + v, 0) / noise.length;
  const std = Math.sqrt(noise.reduce((s, v) => s + (v - mean) ** 2, 0) / noise.length);
  assert.ok(Math.abs(mean) < 0.01, `mean ${mean}`);
  assert.ok(Math.abs(std / (25 / 127.5) - 1) < 0.05, `std ${std}, want ${25 / 127.5}`);
  // Deterministic per (seed, epoch, pair), whatever the batching; another epoch or seed draws anew.
  const again = await collect(
    (await openPairs(dir, 'train', { ...opts, batchSize: 1, shuffle: false })).batches(1),
  );
  const byName = (c: typeof e1) => {
    const px = 32 * 32 * 3;
    const m = new Map<string, string>();
    c.names.forEach((ns, bi) => {
      ns.forEach((n, i) => {
        m.set(n, JSON.stringify([...c.a[bi]!.subarray(i * px, (i + 1) * px)]));
      });
    });
    return m;
  };
  assert.deepEqual(byName(again), byName(e1));
  const e2 = byName(await collect((await openPairs(dir, 'train', opts)).batches(2)));
  const other = byName(await collect((await openPairs(dir, 'train', { ...opts, seed: 2 })).batches(1)));
  for (const [n, a] of byName(e1)) {
    assert.notEqual(e2.get(n), a, `${n}: epoch 2 drew the same noise`);
    assert.notEqual(other.get(n), a, `${n}: seed 2 drew the same noise`);
  }
  // The test split is read as prepared.
  const t = await collect((await openPairs(dir, 'test', opts)).batches(0));
  for (const v of t.a[0]!) assert.ok(Math.abs(v - (104 / 127.5 - 1)) < 1e-6);
});

test('--degrade-on-the-fly refuses a dataset without a recorded synthetic degradation, in one line', async () => {
  await assert.rejects(
    onTheFlyDegradation(await identicalPairs(2)),
    (e: Error) =>
      e instanceof UserError && /--degrade-on-the-fly needs .*it has no dataset.json$/.test(e.message),
  );
  const gray = join(await tempDir(), 'gray');
  await writeSyntheticDataset(gray, { count: 4, size: 32, seed: 1, degrade: 'gray' });
  assert.deepEqual(
    (await onTheFlyDegradation(gray)).map((d) => d.spec),
    ['gray'],
  );
});

test('--scale-jitter: B shrunk to a drawn side (crop..size), then cropped; the noise is drawn after, at full strength', async () => {
  const opts = { ...base, batchSize: 4, cropSize: 16, scaleJitter: 0.5 };
  // The sides drawn lie in [16, 32] (0.5 x 32, not below the crop), and vary.
  const flat = await flatNoiseDataset();
  const degrade = await onTheFlyDegradation(flat);
  const loader = await openPairs(flat, 'train', { ...opts, degrade });
  const sides = [1, 2, 3, 4].flatMap((e) =>
    loader
      .plan(e)
      .flat()
      .map((p) => p.resize),
  );
  assert.ok(
    sides.every((s) => s >= 16 && s <= 32),
    `sides ${sides}`,
  );
  assert.ok(new Set(sides).size > 3, `sides ${sides}`);
  // Noise drawn before a shrink would be averaged away (std ~12 levels at half the side); after it, 25.
  const noise: number[] = [];
  for (const e of [1, 2, 3, 4]) {
    const c = await collect(loader.batches(e));
    for (const [bi, a] of c.a.entries()) noise.push(...a.map((v, i) => (v - c.b[bi]![i]!) * 127.5));
  }
  const std = Math.sqrt(noise.reduce((s, v) => s + v * v, 0) / noise.length);
  assert.ok(Math.abs(std / 25 - 1) < 0.05, `noise std ${std} levels, want 25`);
  // B is the clean image resized to the drawn side, then cut at the plan's place, as sharp gives it.
  const patterned = await flatNoiseDataset((b, i) => b.set(patternPixels(32, 32, i)));
  const pl = await openPairs(patterned, 'train', { ...opts, degrade, batchSize: 1, shuffle: false });
  const plan = pl.plan(2).flat();
  const got = await collect(pl.batches(2));
  for (const [i, p] of plan.entries()) {
    const want = await sharp(join(patterned, 'train', 'B', p.name))
      .resize(p.resize, p.resize, { fit: 'fill' })
      .extract({ left: p.left, top: p.top, width: 16, height: 16 })
      .raw()
      .toBuffer();
    assert.deepEqual(item(got.b[i]!, 0, 16), [...want], `${p.name} at side ${p.resize}`);
  }
  // Without it (1, or no degradation) the plan is what it always was.
  const plain = await openPairs(flat, 'train', { ...base, cropSize: 16, degrade });
  const one = await openPairs(flat, 'train', { ...base, cropSize: 16, degrade, scaleJitter: 1 });
  assert.deepEqual(one.plan(3), plain.plan(3));
  assert.ok(
    plain
      .plan(3)
      .flat()
      .every((p) => p.resize === 32),
  );
});

test('cropRgb cuts the crop (and mirror) that sharp extract + flop give, byte for byte', async () => {
  const img = newImage(40, 40);
  for (let i = 0; i < img.data.length; i++) img.data[i] = (i * 37 + (i >> 5)) % 256;
  const raw = { raw: { width: 40, height: 40, channels: 3 as const } };
  for (const p of [
    { left: 0, top: 0, flip: false },
    { left: 8, top: 3, flip: false },
    { left: 8, top: 3, flip: true },
    { left: 24, top: 24, flip: true },
  ]) {
    let s = sharp(img.data, raw).extract({ left: p.left, top: p.top, width: 16, height: 16 });
    if (p.flip) s = s.flop();
    const want = new Uint8Array(await s.raw().toBuffer());
    assert.deepEqual(cropRgb(img, p, 16).data, want, JSON.stringify(p));
  }
});
