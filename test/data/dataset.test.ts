import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { DatasetWriter, readDatasetInfo, type SourcePairs, splitSources } from '../../src/data/dataset.js';
import { newImage } from '../../src/data/image.js';
import { Rng } from '../../src/data/rng.js';
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

/** Fraction of the pairs that `m` sends to test. */
function testFraction(m: Map<string, string>, sources: SourcePairs[]): number {
  const total = sources.reduce((n, s) => n + s.pairs, 0);
  return sources.reduce((n, s) => n + (m.get(s.name) === 'test' ? s.pairs : 0), 0) / total;
}

/** `n` sources with pair counts spread from 1 to about `max`, most small, a few large (as photos tile). */
function skewed(n: number, max: number, seed = 7): SourcePairs[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    name: `photo${String(i).padStart(3, '0')}`,
    pairs: i === 0 ? 1 : i === 1 ? max : 1 + Math.floor(rng.next() ** 3 * max),
  }));
}

test('splitSources on very skewed pair counts: the test pairs within 0.03 of 0.2, seeded, whole sources', () => {
  const sources = skewed(24, 200);
  const old = (seed: number): number =>
    testFraction(
      splitSources(
        sources.map((s) => s.name),
        0.8,
        seed,
      ),
      sources,
    );
  const seen = new Set<string>();
  let oldWorse = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const m = splitSources(sources, 0.8, seed);
    assert.equal(m.size, 24);
    const frac = testFraction(m, sources);
    assert.ok(Math.abs(frac - 0.2) <= 0.03, `seed ${seed}: test fraction ${frac}`);
    if (Math.abs(old(seed) - 0.2) > 0.03) oldWorse++;
    assert.ok(count(m, 'train') >= 1 && count(m, 'test') >= 1);
    // Deterministic, and independent of the order the sources come in.
    assert.deepEqual(splitSources(sources, 0.8, seed), m);
    assert.deepEqual(splitSources([...sources].reverse(), 0.8, seed), m);
    seen.add(JSON.stringify([...m].sort()));
  }
  assert.ok(seen.size >= 10, `the seed varies which sources go to test (${seen.size} different splits)`);
  assert.ok(oldWorse >= 5, `a split by number of sources misses 0.2 +- 0.03 for ${oldWorse} of 20 seeds`);
});

test('splitSources finds the closest pair count a set of whole sources can reach (brute force check)', () => {
  for (let seed = 1; seed <= 30; seed++) {
    const sources = skewed(2 + (seed % 10), 60, seed);
    const total = sources.reduce((n, s) => n + s.pairs, 0);
    for (const ratio of [0.5, 0.8, 0.95]) {
      const target = total - Math.round(total * ratio);
      let best = Number.POSITIVE_INFINITY;
      for (let mask = 1; mask < 2 ** sources.length - 1; mask++) {
        const sum = sources.reduce((n, s, i) => n + (mask & (1 << i) ? s.pairs : 0), 0);
        if (sum > 0 && sum < total) best = Math.min(best, Math.abs(sum - target));
      }
      const got = testFraction(splitSources(sources, ratio, seed), sources) * total;
      assert.equal(Math.abs(Math.round(got) - target), best, `seed ${seed} ratio ${ratio}`);
    }
  }
});

/** The split before pair counts were weighed: round(n * ratio) sources of the seeded order to train. */
function bySourceCount(n: string[], ratio: number, seed: number): Map<string, string> {
  const order = Rng.derive(seed, 'split').shuffle([...n].sort());
  let nTrain = Math.round(order.length * ratio);
  if (order.length >= 2 && ratio > 0 && ratio < 1) nTrain = Math.min(order.length - 1, Math.max(1, nTrain));
  return new Map(order.map((x, i) => [x, i < nTrain ? 'train' : 'test']));
}

test('splitSources on plain names (one pair each) is exactly the earlier split by number of sources', () => {
  for (let n = 1; n <= 40; n++) {
    for (const ratio of [0, 0.05, 0.3, 0.5, 0.8, 0.95, 1]) {
      for (const seed of [1, 2, 3]) {
        assert.deepEqual(splitSources(names(n), ratio, seed), bySourceCount(names(n), ratio, seed));
      }
    }
  }
});

test('splitSources edge cases: equal counts as by source count, zero counts, ratio 0 and 1, one source', () => {
  for (const seed of [1, 2, 3]) {
    for (const [n, ratio] of [
      [10, 0.8],
      [5, 0.5],
      [7, 0.3],
      [3, 0.95],
    ] as const) {
      const equal = names(n).map((name) => ({ name, pairs: 6 }));
      assert.deepEqual(splitSources(equal, ratio, seed), splitSources(names(n), ratio, seed));
    }
  }
  const sources = skewed(24, 200);
  assert.equal(count(splitSources(sources, 1, 1), 'train'), 24);
  assert.equal(count(splitSources(sources, 0, 1), 'test'), 24);
  for (const ratio of [0.001, 0.999]) {
    const m = splitSources(sources, ratio, 1);
    assert.ok(count(m, 'train') >= 1 && count(m, 'test') >= 1, `ratio ${ratio}`);
  }
  assert.equal(splitSources([{ name: 'only', pairs: 50 }], 0.8, 1).get('only'), 'train');
  // Sources that gave no pairs: the pairs still split as asked; with nothing to weigh, by source count.
  const zeros = [...sources.slice(0, 4), { name: 'z1', pairs: 0 }, { name: 'z2', pairs: 0 }];
  const mz = splitSources(zeros, 0.5, 1);
  assert.equal(mz.size, 6);
  assert.ok(count(mz, 'test') >= 1 && count(mz, 'train') >= 1);
  const allZero = names(5).map((name) => ({ name, pairs: 0 }));
  assert.deepEqual(splitSources(allZero, 0.8, 1), splitSources(names(5), 0.8, 1));
  const oneCounts = [
    { name: 'a', pairs: 9 },
    { name: 'b', pairs: 0 },
  ];
  assert.equal(count(splitSources(oneCounts, 0.8, 1), 'test'), 1);
  assert.throws(() => splitSources([{ name: 'x', pairs: -1 }], 0.8, 1), /pairs must be an integer >= 0/);
});

test('splitSources on a large input (past the exact search) is still close and deterministic', () => {
  const sources = skewed(5000, 100);
  const m = splitSources(sources, 0.8, 1);
  assert.ok(Math.abs(testFraction(m, sources) - 0.2) < 0.001, `${testFraction(m, sources)}`);
  assert.deepEqual(splitSources([...sources].reverse(), 0.8, 1), m);
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
  assert.deepEqual([info.split, info.achievedSplit], [0.5, 0.5]);
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

test('readDatasetInfo refuses pair names that leave the dataset and fields of the wrong type', async () => {
  const dir = await tempDir();
  const file = (name: unknown, extra: Record<string, unknown> = {}) => ({
    name,
    source: 's',
    a: 'aa',
    b: 'bb',
    bytes: [1, 2],
    ...extra,
  });
  const write = (train: unknown[]) =>
    writeFile(
      join(dir, 'dataset.json'),
      JSON.stringify({ format: 'pix2pix-ts-dataset', version: 1, size: 32, files: { train, test: [] } }),
    );
  await write([file('ok.png')]);
  assert.equal((await readDatasetInfo(dir))?.files.train[0]?.name, 'ok.png');
  for (const bad of ['../../etc/passwd', '/abs.png', 'a/b.png', '..', '', 'c\\d.png', 7]) {
    await write([file(bad)]);
    await assert.rejects(
      readDatasetInfo(dir),
      /files\.train\[0\]\.name .* is not a plain file name/,
      String(bad),
    );
  }
  await write([file('x.png', { bytes: 'many' })]);
  await assert.rejects(readDatasetInfo(dir), /files\.train\[0\]\.bytes is not two byte counts/);
  await write([file('x.png', { a: undefined })]);
  await assert.rejects(readDatasetInfo(dir), /has no a\/b hashes/);
});
