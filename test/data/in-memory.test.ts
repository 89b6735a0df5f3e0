import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { build } from 'esbuild';
import { decodeRgb, encodePng, type RgbImage, sharpCodec } from '../../src/data/image.js';
import {
  type ImageFile,
  type InMemoryDataset,
  type InMemoryOptions,
  notAnImage,
  pairsFromImages,
  wantsFile,
} from '../../src/data/in-memory.js';
import { prepareDataset } from '../../src/data/prepare.js';
import type { DatasetInfo } from '../../src/data/types.js';
import { UserError } from '../../src/util/log.js';
import { packageRoot } from '../../src/util/package-root.js';
import { noNodeInTheBrowser } from '../../src/web/build.js';
import { patternPixels, tempDir } from './helpers.js';

const pattern = (w: number, h: number, seed = 0): RgbImage => ({
  width: w,
  height: h,
  data: new Uint8Array(patternPixels(w, h, seed)),
});

/** A side-by-side image whose halves are pattern(h, h, 1) and pattern(h, h, 2). */
function sideBySide(h: number): RgbImage {
  const [l, r] = [pattern(h, h, 1), pattern(h, h, 2)];
  const img = pattern(2 * h, h);
  for (let y = 0; y < h; y++) {
    img.data.set(l.data.subarray(y * h * 3, (y + 1) * h * 3), y * 2 * h * 3);
    img.data.set(r.data.subarray(y * h * 3, (y + 1) * h * 3), (y * 2 + 1) * h * 3);
  }
  return img;
}

const run = (files: ImageFile[], opts: Partial<InMemoryOptions>): Promise<InMemoryDataset> =>
  pairsFromImages(files, { kind: 'photos', degrade: 'gaussian:25', size: 32, codec: sharpCodec, ...opts });

const rejects = (p: Promise<unknown>, message: string | RegExp): Promise<void> =>
  assert.rejects(p, (e: Error) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });

test('photos: tiles of size x size, A the degraded B, the split by photo, sorted by name', async () => {
  const files = Array.from({ length: 10 }, (_, i) => ({ path: `p${i}.png`, image: pattern(64, 96, i) }));
  const d = await run(files, {});
  assert.deepEqual(d.sources, { train: 8, test: 2 });
  assert.equal(d.train.length, 8 * 6);
  assert.equal(d.test.length, 2 * 6);
  const names = (ps: InMemoryDataset['train']) => ps.map((p) => p.name);
  assert.deepEqual(names(d.train), [...names(d.train)].sort());
  const side = new Map<string, string>();
  for (const [s, ps] of [
    ['train', d.train],
    ['test', d.test],
  ] as const) {
    for (const p of ps) {
      assert.equal(side.get(p.source) ?? s, s, `${p.source}: all its tiles on one side`);
      side.set(p.source, s);
      assert.deepEqual([p.a.width, p.a.height, p.b.width, p.b.height], [32, 32, 32, 32]);
      assert.notDeepEqual(p.a.data, p.b.data);
    }
  }
  // Tile 3 of a 64x96 photo (2 x 3 grid) is its left column, second row.
  const p3 = [...d.train, ...d.test].find((p) => p.name === 'p3-2.png')!;
  const src = pattern(64, 96, 3);
  for (let y = 0; y < 32; y++) {
    const row = src.data.subarray((32 + y) * 64 * 3, ((32 + y) * 64 + 32) * 3);
    assert.deepEqual(p3.b.data.subarray(y * 96, y * 96 + 96), row);
  }
  // Same input and seed, same pairs; the image may be a function that decodes it on demand.
  const lazy = await run(
    files.map((f) => ({ path: f.path, image: async () => f.image })),
    {},
  );
  assert.deepEqual(lazy, d);
});

/** prepare's dataset as in-memory pairs: names and decoded pixels per side. */
async function readPrepared(
  out: string,
  info: DatasetInfo,
): Promise<Record<string, [string, RgbImage, RgbImage][]>> {
  const sides: Record<string, [string, RgbImage, RgbImage][]> = {};
  for (const s of ['train', 'test'] as const) {
    sides[s] = [];
    for (const f of info.files[s])
      sides[s].push([
        f.name,
        await decodeRgb(join(out, s, 'A', f.name)),
        await decodeRgb(join(out, s, 'B', f.name)),
      ]);
  }
  return sides;
}

/** Writes each image as a PNG under `dir` at its path (the top folder left off, as the page leaves it). */
async function writeTree(dir: string, files: { path: string; image: RgbImage }[]): Promise<void> {
  for (const f of files) {
    const path = join(dir, f.path.split('/').slice(1).join('/'));
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, await encodePng(f.image));
  }
}

test('the same pairs, pixels and split as pix2pix prepare on the same files, for photos, aligned and folders', async () => {
  // Photos of sizes from one tile to 4 x 3, so the split by pair count has work to do; one in a subfolder.
  const photos = Array.from({ length: 9 }, (_, i) => ({
    path: i === 4 ? 'drop/sub/p4.png' : `drop/p${i}.png`,
    image: pattern(32 + ((i * 37) % 100), 32 + ((i * 23) % 70), i),
  }));
  const aligned = [40, 48, 64, 33].map((h, i) => ({ path: `drop/al${i}.png`, image: sideBySide(h) }));
  const folders = [40, 32, 57, 45].flatMap((h, i) => [
    { path: `drop/A/f${i}.png`, image: pattern(h + 7, h, i) },
    { path: `drop/B/${i === 2 ? 'nested/' : ''}f${i}.png`, image: pattern(h + 7, h, i + 10) },
  ]);
  // f2 is B/nested/f2: nested names count, so make its A side match.
  folders[4] = { path: 'drop/A/nested/f2.png', image: folders[4]!.image };
  const cases: [string, { path: string; image: RgbImage }[], Partial<InMemoryOptions>][] = [
    ['photos', photos, {}],
    [
      'photos',
      photos,
      { degrade: 'blur:1+jpeg:30', stride: 16, maxTiles: 3, resize: 48, seed: 4, split: 0.6 },
    ],
    ['photos', photos, { degrade: 'gray', fit: 'cover' }],
    ['photos', photos, { degrade: 'edges+poisson:30+saltpepper:0.02', flat: 0, size: 16 }],
    ['aligned', aligned, { direction: 'BtoA', degrade: 'gaussian:10', split: 0.5 }],
    ['folders', folders, { split: 0.5 }],
  ];
  for (const [kind, files, o] of cases) {
    const degrade = o.degrade ?? (kind === 'photos' ? 'gaussian:25' : undefined);
    const from = await tempDir();
    await writeTree(from, files);
    const out = join(await tempDir(), 'out');
    const info = await prepareDataset({
      from,
      out,
      ...(kind !== 'photos' && { pairs: kind as 'aligned' | 'folders' }),
      ...o,
      size: o.size ?? 32,
      degrade,
    });
    const mem = await run(files, { kind: kind as InMemoryOptions['kind'], ...o, degrade });
    const prepared = await readPrepared(out, info);
    const what = `${kind} ${JSON.stringify(o)}`;
    for (const s of ['train', 'test'] as const) {
      assert.deepEqual(
        mem[s].map((p) => [p.name, p.a, p.b]),
        prepared[s],
        `${what}: ${s}`,
      );
    }
    assert.ok(mem.train.length > 0 && mem.test.length > 0, what);
    const sources = (s: string) => info.sources.filter((x) => x.split === s).length;
    assert.deepEqual(mem.sources, { train: sources('train'), test: sources('test') }, what);
    assert.equal(mem.flatTiles, info.counts.flatTiles, what);
  }
});

test('aligned: left half A, right half B; BtoA swaps; an extra degradation applies to A', async () => {
  const files = [{ path: 'x.png', image: sideBySide(32) }];
  const ab = await run(files, { kind: 'aligned', degrade: undefined, split: 1 });
  assert.deepEqual(
    ab.train.map((p) => [p.name, p.a, p.b]),
    [['x-0.png', pattern(32, 32, 1), pattern(32, 32, 2)]],
  );
  const ba = await run(files, { kind: 'aligned', degrade: undefined, direction: 'BtoA', split: 1 });
  assert.deepEqual([ba.train[0]!.a, ba.train[0]!.b], [pattern(32, 32, 2), pattern(32, 32, 1)]);
  const noisy = await run(files, { kind: 'aligned', degrade: 'gaussian:10', split: 1 });
  assert.notDeepEqual(noisy.train[0]!.a, pattern(32, 32, 1));
  assert.deepEqual(noisy.train[0]!.b, pattern(32, 32, 2));
});

test('folders: A/ and B/ matched by name under one top folder; files elsewhere and hidden ones left out', async () => {
  const files = [
    { path: 'mydata/A/x.png', image: pattern(32, 32, 1) },
    { path: 'mydata/B/x.jpg', image: pattern(32, 32, 2) },
    { path: 'mydata/A/y.png', image: pattern(32, 32, 3) },
    { path: 'mydata/B/y.png', image: pattern(32, 32, 4) },
    { path: 'mydata/readme.png', image: pattern(32, 32, 5) },
    { path: 'mydata/A/.DS_Store', image: () => Promise.reject(new Error('never read')) },
  ];
  const d = await run(files, { kind: 'folders', degrade: undefined, split: 1 });
  assert.deepEqual(
    d.train.map((p) => [p.name, p.a, p.b]),
    [
      ['x-0.png', pattern(32, 32, 1), pattern(32, 32, 2)],
      ['y-0.png', pattern(32, 32, 3), pattern(32, 32, 4)],
    ],
  );
  assert.deepEqual(d.skipped, [{ file: 'mydata/readme.png', reason: 'not under A/ or B/' }]);
  const ba = await run(files, { kind: 'folders', degrade: undefined, direction: 'BtoA', split: 1 });
  assert.deepEqual([ba.train[0]!.a, ba.train[0]!.b], [pattern(32, 32, 2), pattern(32, 32, 1)]);
  // Dropping A/ and B/ themselves (no common top folder) works the same.
  const bare = files.slice(0, 4).map((f) => ({ ...f, path: f.path.slice('mydata/'.length) }));
  assert.deepEqual((await run(bare, { kind: 'folders', degrade: undefined, split: 1 })).train, d.train);
  assert.equal(wantsFile('mydata/A/.DS_Store'), false);
  assert.equal(wantsFile('mydata/A/x.png'), true);
});

test('every problem is a one-line UserError naming the file or the limit', async () => {
  const img = (path: string, w: number, h: number): ImageFile => ({ path, image: pattern(w, h) });
  await rejects(run([], {}), /^no images: drop photos/);
  await rejects(run([img('.hidden.png', 32, 32)], {}), /^no images/);
  await rejects(
    run([img('A/x.png', 64, 64), img('B/x.png', 32, 48)], { kind: 'folders', degrade: undefined }),
    'A/x.png is 64x64 but B/x.png is 32x48',
  );
  await rejects(
    run([img('A/x.png', 32, 32), img('B/x.png', 32, 32), img('A/z.png', 32, 32)], { kind: 'folders' }),
    'A/z.png has no partner in B/ (pairs are matched by file name without extension)',
  );
  await rejects(
    run([img('d/A/x.png', 32, 32), img('d/B/x.png', 32, 32), img('d/B/w.png', 32, 32)], { kind: 'folders' }),
    'd/B/w.png has no partner in A/ (pairs are matched by file name without extension)',
  );
  await rejects(run([img('B/x.png', 32, 32)], { kind: 'folders' }), /there are none under A\/$/);
  await rejects(
    run([img('pair.png', 96, 32)], { kind: 'aligned' }),
    'pair.png is 96x32, not a side-by-side A|B image (twice as wide as high)',
  );
  await rejects(run([img('x.png', 20, 20)], {}), 'x.png is 20x20, smaller than the size 32');
  await rejects(
    run([img('pair.png', 40, 20)], { kind: 'aligned' }),
    'pair.png is 40x20: its halves are 20x20, smaller than the size 32',
  );
  const twelve = Array.from({ length: 3 }, (_, i) => img(`p${i}.png`, 64, 64));
  await rejects(
    run(twelve, { split: 1, batch: 16 }),
    /^12 training pairs, fewer than a batch of 16: drop more images, or choose a smaller batch$/,
  );
  await rejects(
    run([img('p.png', 32, 32), img('p.jpg', 32, 32)], {}),
    /^p\.jpg and p\.png have the same name without their extension: rename one/,
  );
  const broken: ImageFile = { path: 'notes.txt', image: () => Promise.reject(new Error('bad header\nmore')) };
  await rejects(
    run([broken], {}),
    'notes.txt is not an image this browser can read (bad header): remove it, or drop only images',
  );
  assert.equal(
    notAnImage('a.gif', 'EncodingError').message,
    'a.gif is not an image this browser can read (EncodingError): remove it, or drop only images',
  );
  await rejects(run([img('p.png', 32, 32)], { degrade: undefined }), /^photos need a degradation/);
  await rejects(run([img('p.png', 32, 32)], { degrade: 'noise:3' }), /^unknown degradation 'noise'/);
  await rejects(run([img('p.png', 32, 32)], { size: 4 }), 'size must be an integer >= 8, got 4');
  await rejects(run([img('p.png', 32, 32)], { split: 2 }), 'split must be in [0, 1], got 2');
  const grey = pattern(32, 32);
  grey.data.fill(128);
  await rejects(
    run([{ path: 'grey.png', image: grey }], {}),
    /^no pairs: every tile of every image is nearly flat/,
  );
});

test('in-memory.ts and canvas.ts bundle for the browser with no Node module', async () => {
  const root = packageRoot();
  const bundle = (entries: string[]) =>
    build({
      stdin: {
        contents: entries.map((e) => `export * from './${e}';`).join('\n'),
        resolveDir: root,
        loader: 'ts',
      },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [noNodeInTheBrowser(root)],
    });
  const r = await bundle(['src/data/in-memory.ts', 'src/data/canvas.ts']);
  const inputs = Object.keys(r.metafile.inputs);
  assert.ok(
    inputs.includes('src/data/degrade-core.ts') && inputs.includes('src/data/split.ts'),
    inputs.join(),
  );
  assert.ok(!inputs.some((p) => /node_modules|^node:/.test(p)), inputs.join());
  assert.doesNotMatch(r.outputFiles[0]!.text, /["']node:|sharp/);
  // The check bites: degrade.ts, the Node face, brings sharp in.
  await assert.rejects(bundle(['src/data/degrade.ts']), /src\/data\/image\.ts imports sharp/);
});
