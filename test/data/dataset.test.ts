import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DatasetWriter, readDatasetInfo, splitSources } from '../../src/data/dataset.js';
import { newImage } from '../../src/data/image.js';
import { UserError } from '../../src/util/log.js';
import { tempDir } from './helpers.js';

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `s${i}`);
const count = (m: Map<string, string>, side: string): number =>
  [...m.values()].filter((v) => v === side).length;

test('splitSources sends round(n * ratio) sources to train, seeded, independent of input order', () => {
  const m = splitSources(names(10), 0.8, 1);
  assert.equal(count(m, 'train'), 8);
  assert.equal(count(m, 'test'), 2);
  assert.deepEqual(splitSources([...names(10)].reverse(), 0.8, 1), m);
  const seeds = new Set(
    [1, 2, 3, 4, 5].map((s) => JSON.stringify([...splitSources(names(10), 0.8, s)].sort())),
  );
  assert.ok(seeds.size > 1, 'the seed changes which sources go to test');
  assert.equal(count(splitSources(names(10), 0.5, 1), 'train'), 5);
});

test('with two or more sources each side gets at least one; ratio 1 or 0 put all on one side', () => {
  assert.equal(count(splitSources(names(3), 0.95, 1), 'test'), 1);
  assert.equal(count(splitSources(names(3), 0.05, 1), 'train'), 1);
  assert.equal(count(splitSources(names(4), 1, 1), 'train'), 4);
  assert.equal(count(splitSources(names(4), 0, 1), 'test'), 4);
  assert.equal(count(splitSources(names(1), 0.8, 1), 'train'), 1);
});

const baseInfo = {
  kind: 'synthetic' as const,
  size: 4,
  seed: 1,
  split: 0.5,
  options: {},
  counts: { train: 0, test: 0, sources: 2, skipped: 0, flatTiles: 0 },
  sources: [
    { name: 'x', split: 'train' as const, pairs: 1 },
    { name: 'y', split: 'train' as const, pairs: 1 },
  ],
  skipped: [],
};

test('DatasetWriter places pairs by source split, records hashes, and leaves no partial folder', async () => {
  const root = await tempDir();
  const out = join(root, 'ds');
  const w = await DatasetWriter.create(out);
  await w.writePair('y-0.png', 'y', newImage(4, 4), newImage(4, 4));
  await w.writePair('x-0.png', 'x', newImage(4, 4), newImage(4, 4));
  const info = await w.finish(
    baseInfo,
    new Map([
      ['x', 'train'],
      ['y', 'test'],
    ]),
  );
  assert.deepEqual(await readdir(root), ['ds']);
  assert.deepEqual(await readdir(join(out, 'train', 'A')), ['x-0.png']);
  assert.deepEqual(await readdir(join(out, 'test', 'B')), ['y-0.png']);
  assert.deepEqual([info.counts.train, info.counts.test], [1, 1]);
  assert.equal(info.sources.find((s) => s.name === 'y')!.split, 'test');
  assert.match(info.files.train[0]!.a, /^[0-9a-f]{64}$/);
  assert.deepEqual(await readDatasetInfo(out), info);
});

test('DatasetWriter replaces an earlier dataset but refuses a folder with other content', async () => {
  const root = await tempDir();
  const out = join(root, 'ds');
  const one = async (): Promise<void> => {
    const w = await DatasetWriter.create(out);
    await w.writePair('x-0.png', 'x', newImage(4, 4), newImage(4, 4));
    await w.finish({ ...baseInfo, sources: [baseInfo.sources[0]!] }, new Map([['x', 'train']]));
  };
  await one();
  await one();
  assert.deepEqual((await readdir(out)).sort(), ['dataset.json', 'test', 'train']);
  const other = join(root, 'photos');
  await mkdir(other);
  await writeFile(join(other, 'keep.txt'), 'precious');
  await assert.rejects(
    DatasetWriter.create(other),
    (e: Error) => e instanceof UserError && /not empty.*refusing/.test(e.message),
  );
  const w = await DatasetWriter.create(join(root, 'new'));
  await w.abort();
  assert.deepEqual((await readdir(root)).sort(), ['ds', 'photos']);
});

test('readDatasetInfo: none, broken and foreign dataset.json', async () => {
  const dir = await tempDir();
  assert.equal(await readDatasetInfo(dir), undefined);
  await writeFile(join(dir, 'dataset.json'), '{ not json');
  await assert.rejects(readDatasetInfo(dir), /not valid JSON/);
  await writeFile(join(dir, 'dataset.json'), '{"format":"something-else"}');
  await assert.rejects(readDatasetInfo(dir), /not a pix2pix-ts dataset/);
});
