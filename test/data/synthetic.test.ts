import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import type { DatasetInfo } from '../../src/data/types.js';
import { hashTree, rawPixels, tempDir } from './helpers.js';

test('writes the standard layout with a dataset.json that describes it', async () => {
  const dir = join(await tempDir(), 'synth');
  const info = await writeSyntheticDataset(dir, { count: 10, size: 32, seed: 3 });
  assert.equal(info.counts.train, 8);
  assert.equal(info.counts.test, 2);
  const onDisk = JSON.parse(await readFile(join(dir, 'dataset.json'), 'utf8')) as DatasetInfo;
  assert.deepEqual(onDisk, info);
  const tree = await hashTree(dir);
  for (const split of ['train', 'test'] as const) {
    for (const f of info.files[split]) {
      assert.equal(tree[join(split, 'A', f.name)], f.a);
      assert.equal(tree[join(split, 'B', f.name)], f.b);
      const b = await rawPixels(join(dir, split, 'B', f.name));
      assert.deepEqual([b.width, b.height, b.channels], [32, 32, 3]);
    }
  }
});

test('same options give byte-identical files; another seed gives other images', async () => {
  const root = await tempDir();
  await writeSyntheticDataset(join(root, 'x'), { count: 6, size: 32, seed: 7, split: 0.5 });
  await writeSyntheticDataset(join(root, 'y'), { count: 6, size: 32, seed: 7, split: 0.5 });
  await writeSyntheticDataset(join(root, 'z'), { count: 6, size: 32, seed: 8, split: 0.5 });
  const [x, y, z] = await Promise.all(['x', 'y', 'z'].map((d) => hashTree(join(root, d))));
  assert.deepEqual(x, y);
  assert.notDeepEqual(Object.values(x).sort(), Object.values(z!).sort());
});

test('A is B with gaussian noise by default: noisy but close', async () => {
  const dir = join(await tempDir(), 's');
  const info = await writeSyntheticDataset(dir, { count: 2, size: 64, seed: 1, split: 1 });
  const f = info.files.train[0]!;
  const a = await rawPixels(join(dir, 'train', 'A', f.name));
  const b = await rawPixels(join(dir, 'train', 'B', f.name));
  let se = 0;
  for (let i = 0; i < a.data.length; i++) se += (a.data[i]! - b.data[i]!) ** 2;
  const rms = Math.sqrt(se / a.data.length);
  // Clipping at 0/255 shrinks the noise on saturated colours, so only bounds are meaningful here.
  assert.ok(rms > 12 && rms < 27, `rms difference ${rms}`);
});
