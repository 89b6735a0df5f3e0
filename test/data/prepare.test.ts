import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { decodeRgb } from '../../src/data/image.js';
import { type PrepareOptions, prepareDataset } from '../../src/data/prepare.js';
import type { DatasetInfo } from '../../src/data/types.js';
import { type Logger, UserError } from '../../src/util/log.js';
import { hashTree, patternPixels, rawPixels, tempDir, writeImage } from './helpers.js';

function recorder(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, warn: (m) => warnings.push(m), info: () => {} };
}

const isUserError = (re: RegExp) => (e: Error) => {
  assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
  assert.match(e.message, re);
  return true;
};

async function prep(
  from: string,
  extra: Partial<PrepareOptions> = {},
  log?: Logger,
): Promise<{ out: string; info: DatasetInfo }> {
  const out = join(await tempDir(), 'out');
  const info = await prepareDataset({ from, out, task: 'denoise', size: 32, seed: 1, ...extra }, log);
  return { out, info };
}

const allFiles = (info: DatasetInfo) => [...info.files.train, ...info.files.test];

/** Pixels of a region of an image file, after EXIF rotation. */
async function region(path: string, left: number, top: number, size: number): Promise<Buffer> {
  return sharp(path)
    .rotate()
    .extract({ left, top, width: size, height: size })
    .removeAlpha()
    .raw()
    .toBuffer();
}

test('photos in JPEG, PNG, WebP and TIFF are tiled into size x size pairs named <stem>-<tile>.png', async () => {
  const from = await tempDir();
  await writeImage(join(from, 'a.jpg'), 64, 64, 1, 'jpeg');
  await writeImage(join(from, 'b.png'), 64, 64, 2, 'png');
  await writeImage(join(from, 'c.webp'), 64, 64, 3, 'webp');
  await writeImage(join(from, 'd.tiff'), 64, 64, 4, 'tiff');
  const { out, info } = await prep(from, { split: 0.5 });
  assert.equal(info.kind, 'photos');
  assert.equal(info.size, 32);
  assert.equal(info.options.degrade, 'gaussian:25');
  assert.equal(info.counts.sources, 4);
  assert.equal(info.counts.train + info.counts.test, 16);
  assert.deepEqual(
    allFiles(info)
      .map((f) => f.name)
      .sort(),
    ['a', 'b', 'c', 'd'].flatMap((s) => [0, 1, 2, 3].map((t) => `${s}-${t}.png`)),
  );
  for (const s of ['train', 'test'] as const) {
    for (const f of info.files[s]) {
      const b = await rawPixels(join(out, s, 'B', f.name));
      assert.deepEqual([b.width, b.height, b.channels], [32, 32, 3]);
    }
  }
  // Lossless sources come through exactly: b.png's tile 3 is its bottom-right quarter.
  const split = info.sources.find((s) => s.name === 'b')!.split;
  const tile = await rawPixels(join(out, split, 'B', 'b-3.png'));
  assert.deepEqual(tile.data, await region(join(from, 'b.png'), 32, 32, 32));
  assert.match(info.sources[0]!.sha256!, /^[0-9a-f]{64}$/);
});

test('the tile grid is centred; stride, max-tiles and resize change it as documented', async () => {
  const from = await tempDir();
  await writeImage(join(from, 'p.png'), 100, 70, 5);
  const grid = await prep(from, { split: 1 });
  // 3 x 2 tiles of 32 use 96 x 64 of 100 x 70: margins of 2 and 3 px on the left and top.
  assert.deepEqual(
    grid.info.files.train.map((f) => f.name).sort(),
    [0, 1, 2, 3, 4, 5].map((t) => `p-${t}.png`),
  );
  const t4 = await rawPixels(join(grid.out, 'train', 'B', 'p-4.png'));
  assert.deepEqual(t4.data, await region(join(from, 'p.png'), 2 + 32, 3 + 32, 32));

  assert.equal((await prep(from, { split: 1, stride: 16 })).info.counts.train, 5 * 3);
  const some = await prep(from, { split: 1, stride: 16, maxTiles: 4 });
  assert.equal(some.info.counts.train, 4);
  assert.deepEqual(
    some.info.files.train,
    (await prep(from, { split: 1, stride: 16, maxTiles: 4 })).info.files.train,
  );
  // Shorter side 70 -> 35: 50 x 35 holds one row of one tile.
  assert.equal((await prep(from, { split: 1, resize: 35 })).info.counts.train, 1);
});

test('EXIF orientation is honoured before tiling', async () => {
  const from = await tempDir();
  const jpeg = await sharp(patternPixels(64, 32, 6), { raw: { width: 64, height: 32, channels: 3 } })
    .jpeg({ quality: 100 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  await writeFile(join(from, 'turned.jpg'), jpeg);
  const { out, info } = await prep(from, { split: 1 });
  // Displayed as 32 x 64: one column of two tiles; tile 1 is the lower half of the rotated picture.
  assert.deepEqual(
    info.files.train.map((f) => f.name),
    ['turned-0.png', 'turned-1.png'],
  );
  const rotated = await decodeRgb(jpeg);
  assert.deepEqual([rotated.width, rotated.height], [32, 64]);
  const t1 = await rawPixels(join(out, 'train', 'B', 'turned-1.png'));
  assert.deepEqual(new Uint8Array(t1.data), rotated.data.subarray(32 * 32 * 3));
});

test('near-flat tiles are left out and counted; an all-flat photo is skipped with its reason', async () => {
  const from = await tempDir();
  const w = 64;
  const px = patternPixels(w, 32, 7);
  const half = Buffer.alloc(w * 32 * 3);
  for (let y = 0; y < 32; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      if (x < 32) half.fill(128, i, i + 3);
      else half.set(px.subarray(i, i + 3), i);
    }
  }
  await sharp(half, { raw: { width: w, height: 32, channels: 3 } })
    .png()
    .toFile(join(from, 'half.png'));
  await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
    .png()
    .toFile(join(from, 'grey.png'));
  const log = recorder();
  const { info } = await prep(from, { split: 1 }, log);
  assert.deepEqual(
    info.files.train.map((f) => f.name),
    ['half-1.png'],
  );
  assert.equal(info.counts.flatTiles, 1 + 4);
  assert.deepEqual(info.skipped, [
    { file: 'grey.png', reason: 'every tile is nearly flat (luma std below --flat 2)' },
  ]);
  assert.match(log.warnings.join('\n'), /skipped grey\.png: every tile is nearly flat/);
  assert.equal((await prep(from, { split: 1, flat: 0 })).info.counts.train, 2 + 4);
});

test('end to end, denoise on mid-grey photos: noise sigma within 5% of 25 and PSNR near 20.2 dB', async () => {
  const from = await tempDir();
  for (const n of ['g1', 'g2']) {
    await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } })
      .png()
      .toFile(join(from, `${n}.png`));
  }
  const { out, info } = await prep(from, { flat: 0 });
  let s2 = 0;
  let n = 0;
  for (const s of ['train', 'test'] as const) {
    for (const f of info.files[s]) {
      const a = await rawPixels(join(out, s, 'A', f.name));
      const b = await rawPixels(join(out, s, 'B', f.name));
      for (let i = 0; i < a.data.length; i++) s2 += (a.data[i]! - b.data[i]!) ** 2;
      n += a.data.length;
    }
  }
  const sigma = Math.sqrt(s2 / n);
  assert.ok(Math.abs(sigma - 25) < 1.25, `sigma ${sigma}`);
  const psnr = 10 * Math.log10((255 * 255) / (s2 / n));
  assert.ok(Math.abs(psnr - 20.17) < 0.4, `psnr ${psnr}`);
});

test('same inputs and seed give byte-identical output; another seed other noise', async () => {
  const from = await tempDir();
  for (let i = 0; i < 5; i++) await writeImage(join(from, `p${i}.png`), 64, 40, i);
  const x = await prep(from);
  const y = await prep(from);
  assert.deepEqual(await hashTree(x.out), await hashTree(y.out));
  const z = await prep(from, { seed: 2 });
  const bs = (info: DatasetInfo) =>
    allFiles(info)
      .map((f) => f.b)
      .sort();
  const as = (info: DatasetInfo) =>
    allFiles(info)
      .map((f) => f.a)
      .sort();
  assert.deepEqual(bs(z.info), bs(x.info));
  assert.notDeepEqual(as(z.info), as(x.info));
});

test('the split is by source: all tiles of a photo land on one side; equal photos split 8:2', async () => {
  const from = await tempDir();
  for (let i = 0; i < 10; i++) await writeImage(join(from, `photo${i}.png`), 96, 64, i);
  const { out, info } = await prep(from);
  const sideOf = new Map(info.sources.map((s) => [s.name, s.split]));
  assert.equal([...sideOf.values()].filter((s) => s === 'train').length, 8);
  for (const s of ['train', 'test'] as const) {
    const names = await readdir(join(out, s, 'A'));
    assert.equal(names.length, 6 * (s === 'train' ? 8 : 2));
    for (const n of names) assert.equal(sideOf.get(n.replace(/-\d+\.png$/, '')), s, n);
  }
});

test('photos of very different sizes: whole photos per side, and 8:2 of the pairs within 0.03', async () => {
  const from = await tempDir();
  const tiles = new Map<string, number>();
  for (let i = 0; i < 24; i++) {
    // From 32 x 32 (one tile) up to 300 x 200 (9 x 6 tiles), in a scrambled order.
    const w = 32 + Math.round(268 * (((i * 5) % 24) / 23) ** 2);
    const h = 32 + Math.round(168 * (((i * 11) % 24) / 23) ** 1.5);
    await writeImage(join(from, `photo${String(i).padStart(2, '0')}.png`), w, h, i);
    tiles.set(`photo${String(i).padStart(2, '0')}`, Math.floor(w / 32) * Math.floor(h / 32));
  }
  const log = recorder();
  const { out, info } = await prep(from, {}, log);
  const total = [...tiles.values()].reduce((a, b) => a + b, 0);
  assert.equal(info.counts.train + info.counts.test, total);
  assert.deepEqual(
    info.sources.map((s) => s.pairs),
    [...tiles.values()],
  );
  assert.equal(info.split, 0.8);
  assert.ok(Math.abs(1 - info.achievedSplit! - 0.2) <= 0.03, `achieved ${info.achievedSplit}`);
  assert.equal(info.achievedSplit, Math.round((info.counts.train / total) * 1e4) / 1e4);
  const sideOf = new Map(info.sources.map((s) => [s.name, s.split]));
  const onDisk: Record<string, number> = {};
  for (const s of ['train', 'test'] as const) {
    const names = await readdir(join(out, s, 'A'));
    assert.deepEqual((await readdir(join(out, s, 'B'))).sort(), names.sort());
    for (const n of names) assert.equal(sideOf.get(n.replace(/-\d+\.png$/, '')), s, n);
    onDisk[s] = names.length;
    assert.ok([...sideOf.values()].includes(s), `some photo goes to ${s}`);
  }
  assert.deepEqual([onDisk.train, onDisk.test], [info.counts.train, info.counts.test]);
  const testFrac = onDisk.test! / total;
  assert.ok(Math.abs(testFrac - 0.2) <= 0.03, `test fraction on disk ${testFrac}`);
  assert.deepEqual(log.warnings, []);
});

test('aligned A|B images are split down the middle; BtoA swaps; an odd width is skipped', async () => {
  const from = await tempDir();
  const left = patternPixels(32, 32, 1);
  const right = patternPixels(32, 32, 2);
  const both = Buffer.alloc(64 * 32 * 3);
  for (let y = 0; y < 32; y++) {
    both.set(left.subarray(y * 96, y * 96 + 96), y * 192);
    both.set(right.subarray(y * 96, y * 96 + 96), y * 192 + 96);
  }
  await sharp(both, { raw: { width: 64, height: 32, channels: 3 } })
    .png()
    .toFile(join(from, 'pair.png'));
  await writeImage(join(from, 'odd.png'), 65, 32);
  const log = recorder();
  const ab = await prep(from, { pairs: 'aligned', split: 1, task: undefined }, log);
  assert.equal(ab.info.kind, 'aligned');
  assert.equal(ab.info.options.degrade, null);
  assert.deepEqual((await rawPixels(join(ab.out, 'train', 'A', 'pair-0.png'))).data, left);
  assert.deepEqual((await rawPixels(join(ab.out, 'train', 'B', 'pair-0.png'))).data, right);
  assert.deepEqual(ab.info.skipped, [
    { file: 'odd.png', reason: 'width 65 is odd: not a side-by-side A|B image' },
  ]);
  assert.equal(log.warnings.length, 1);
  const ba = await prep(from, { pairs: 'aligned', direction: 'BtoA', split: 1 });
  assert.deepEqual((await rawPixels(join(ba.out, 'train', 'A', 'pair-0.png'))).data, right);
  // Larger pairs are scaled (cover) to one pair per image by default.
  await sharp(both, { raw: { width: 64, height: 32, channels: 3 } })
    .resize(128, 64)
    .png()
    .toFile(join(from, 'big.png'));
  const big = await prep(from, { pairs: 'aligned', split: 1 });
  assert.deepEqual(
    big.info.files.train.map((f) => f.name),
    ['big-0.png', 'pair-0.png'],
  );
  // An explicit --degrade applies to the A side of pairs.
  const noisy = await prep(from, { pairs: 'aligned', split: 1, degrade: 'gaussian:10' });
  assert.notDeepEqual((await rawPixels(join(noisy.out, 'train', 'A', 'pair-0.png'))).data, left);
  assert.deepEqual((await rawPixels(join(noisy.out, 'train', 'B', 'pair-0.png'))).data, right);
});

test('folders A/ and B/ are matched by name; missing partners and size mismatches are reported', async () => {
  const from = await tempDir();
  await mkdir(join(from, 'A'));
  await mkdir(join(from, 'B'));
  await writeImage(join(from, 'A', 'x.png'), 32, 32, 1);
  await writeImage(join(from, 'B', 'x.png'), 32, 32, 2);
  await writeImage(join(from, 'A', 'v.png'), 32, 32, 3);
  await writeImage(join(from, 'B', 'v.jpg'), 32, 32, 4, 'jpeg');
  await writeImage(join(from, 'A', 'onlyA.png'), 32, 32);
  await writeImage(join(from, 'B', 'onlyB.png'), 32, 32);
  await writeImage(join(from, 'A', 'w.png'), 32, 32);
  await writeImage(join(from, 'B', 'w.png'), 40, 40);
  const log = recorder();
  const { out, info } = await prep(from, { pairs: 'folders', split: 1 }, log);
  assert.equal(info.kind, 'folders');
  assert.deepEqual(
    info.files.train.map((f) => f.name),
    ['v-0.png', 'x-0.png'],
  );
  assert.deepEqual((await rawPixels(join(out, 'train', 'A', 'x-0.png'))).data, patternPixels(32, 32, 1));
  assert.deepEqual(info.skipped, [
    { file: 'A/onlyA.png', reason: 'no partner in B/ (pairs are matched by file name without extension)' },
    { file: 'A/w.png', reason: 'A is 32x32 but B/w.png is 40x40' },
    { file: 'B/onlyB.png', reason: 'no partner in A/ (pairs are matched by file name without extension)' },
  ]);
  assert.equal(log.warnings.length, 3);
  const swapped = await prep(from, { pairs: 'folders', direction: 'BtoA', split: 1 });
  assert.deepEqual(
    (await rawPixels(join(swapped.out, 'train', 'A', 'x-0.png'))).data,
    patternPixels(32, 32, 2),
  );
  await assert.rejects(
    prep(join(from, 'A'), { pairs: 'folders' }),
    isUserError(/--pairs folders needs .*A\/A: put inputs in A\//),
  );
});

test('an output folder inside the input folder is not read back as photos', async () => {
  const from = await tempDir();
  await writeImage(join(from, 'p.png'), 32, 32);
  const out = join(from, 'dataset');
  const first = await prepareDataset({ from, out, task: 'denoise', size: 32 });
  const again = await prepareDataset({ from, out, task: 'denoise', size: 32 });
  assert.deepEqual(again, first);
  assert.deepEqual(again.skipped, []);
});

test('bad files are skipped with their reasons and the rest is used', async () => {
  const from = await tempDir();
  await writeImage(join(from, 'good.png'), 32, 32);
  const jpeg = await sharp(patternPixels(64, 64), { raw: { width: 64, height: 64, channels: 3 } })
    .jpeg()
    .toBuffer();
  await writeFile(join(from, 'truncated.jpg'), jpeg.subarray(0, jpeg.length / 2));
  await writeFile(join(from, 'fake.png'), 'this is text');
  await writeFile(join(from, 'notes.txt'), 'not a photo');
  await writeImage(join(from, 'tiny.png'), 16, 40);
  await mkdir(join(from, '.hidden'));
  await writeImage(join(from, '.hidden', 'ignored.png'), 32, 32);
  const log = recorder();
  const { info } = await prep(from, { split: 1 }, log);
  assert.deepEqual(
    info.files.train.map((f) => f.name),
    ['good-0.png'],
  );
  const reasons = Object.fromEntries(info.skipped.map((s) => [s.file, s.reason]));
  assert.deepEqual(Object.keys(reasons).sort(), ['fake.png', 'notes.txt', 'tiny.png', 'truncated.jpg']);
  assert.match(reasons['truncated.jpg']!, /^unreadable image \(.+\)$/);
  assert.match(reasons['fake.png']!, /^unreadable image \(.*unsupported image format.*\)$/);
  assert.match(reasons['notes.txt']!, /^not an image file/);
  assert.equal(reasons['tiny.png'], '16x40 is smaller than --size 32');
  assert.equal(info.counts.skipped, 4);
  assert.equal(log.warnings.length, 4);
  for (const w of log.warnings) assert.match(w, /^skipped \S+: /);
});

test('nothing usable is a UserError: empty folder, only bad files, missing folder, bad options', async () => {
  const empty = await tempDir();
  await assert.rejects(prep(empty), isUserError(/has no files/));
  const bad = await tempDir();
  await writeFile(join(bad, 'a.txt'), 'x');
  await writeFile(join(bad, 'b.jpg'), 'x');
  await writeImage(join(bad, 'c.png'), 8, 8);
  await assert.rejects(
    prep(bad),
    isUserError(/no usable images in .*: all 3 files were skipped \(reasons above\)/),
  );
  await assert.rejects(prep(join(empty, 'missing')), isUserError(/missing does not exist/));
  await writeImage(join(empty, 'ok.png'), 32, 32);
  await assert.rejects(prep(empty, { task: undefined }), isUserError(/photos need --task or --degrade/));
  await assert.rejects(prep(empty, { split: 1.5 }), isUserError(/--split must be in \[0, 1\]/));
  await assert.rejects(prep(empty, { minSize: 16 }), isUserError(/--min-size must be an integer >= 32/));
  await assert.rejects(prep(empty, { degrade: 'noise:3' }), isUserError(/unknown degradation 'noise'/));
  // The failed runs left no dataset or partial folder behind.
  assert.deepEqual(await readdir(empty), ['ok.png']);
});

test('dataset.json records sources, options, seed, counts, hashes, split and size', async () => {
  const from = await tempDir();
  await writeImage(join(from, 'one.png'), 64, 32, 1);
  await writeImage(join(from, 'two.png'), 64, 32, 2);
  const { out, info } = await prep(from, { degrade: 'blur:1+jpeg:50', stride: 16 });
  const onDisk = JSON.parse(await readFile(join(out, 'dataset.json'), 'utf8'));
  assert.deepEqual(onDisk, info);
  assert.equal(info.format, 'pix2pix-ts-dataset');
  assert.equal(info.version, 1);
  assert.deepEqual(
    { seed: info.seed, split: info.split, size: info.size },
    { seed: 1, split: 0.8, size: 32 },
  );
  // Two sources of 3 pairs each: 3 + 3 is the closest whole-source split to 8:2.
  assert.equal(info.achievedSplit, 0.5);
  assert.deepEqual(info.options, {
    from,
    pairs: null,
    direction: null,
    task: 'denoise',
    degrade: 'blur:1+jpeg:50',
    fit: 'tile',
    stride: 16,
    resize: 0,
    minSize: 32,
    flat: 2,
    maxTiles: 0,
  });
  assert.deepEqual(
    info.sources.map((s) => [s.name, s.file, s.pairs]),
    [
      ['one', 'one.png', 3],
      ['two', 'two.png', 3],
    ],
  );
  assert.deepEqual(new Set(info.sources.map((s) => s.split)), new Set(['train', 'test']));
  const tree = await hashTree(out);
  for (const s of ['train', 'test'] as const) {
    for (const f of info.files[s]) {
      assert.equal(tree[join(s, 'A', f.name)], f.a);
      assert.equal(tree[join(s, 'B', f.name)], f.b);
    }
  }
});

test('symlinked photos (git-annex, DVC) are followed; a broken link is reported as skipped', async () => {
  const store = await tempDir();
  const real = await tempDir();
  const linked = await tempDir();
  for (const [i, name] of ['a.png', 'b.png', 'c.png'].entries()) {
    await writeImage(join(store, `object-${i}`), 64, 64, i + 1, 'png');
    await writeImage(join(real, name), 64, 64, i + 1, 'png');
    await symlink(join(store, `object-${i}`), join(linked, name));
  }
  await symlink(join(store, 'missing'), join(linked, 'gone.png'));
  const log = recorder();
  const viaLinks = await prep(linked, { split: 0.5 }, log);
  const plain = await prep(real, { split: 0.5 });
  assert.equal(viaLinks.info.counts.sources, 3);
  assert.deepEqual(
    allFiles(viaLinks.info).map((f) => [f.name, f.a, f.b]),
    allFiles(plain.info).map((f) => [f.name, f.a, f.b]),
  );
  assert.deepEqual(
    viaLinks.info.skipped.map((s) => s.file),
    ['gone.png'],
  );
});
