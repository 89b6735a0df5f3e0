import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { openPairs } from '../../src/data/loader.js';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import type { LoaderOptions, PairBatch } from '../../src/data/types.js';
import { rawPixels, tempDir } from './helpers.js';

const base: LoaderOptions = {
  batchSize: 4,
  size: 32,
  augment: false,
  seed: 1,
  dropLast: false,
  direction: 'AtoB',
};

async function collect(
  it: AsyncIterable<PairBatch>,
  keep = false,
): Promise<{ names: string[][]; shapes: number[][]; data: Float32Array[] }> {
  const names: string[][] = [];
  const shapes: number[][] = [];
  const data: Float32Array[] = [];
  for await (const b of it) {
    names.push(b.names);
    shapes.push(b.a.shape, b.b.shape);
    if (keep) data.push(b.a.dataSync() as Float32Array, b.b.dataSync() as Float32Array);
    b.a.dispose();
    b.b.dispose();
  }
  return { names, shapes, data };
}

async function dataset(count = 10): Promise<string> {
  const dir = join(await tempDir(), 'ds');
  await writeSyntheticDataset(dir, { count, size: 32, seed: 5 });
  return dir;
}

test('batches have NHWC shapes, values in [-1, 1] that match the files, and no leaked tensors', async () => {
  await tf.setBackend('cpu');
  const dir = await dataset();
  const src = await openPairs(dir, 'train', { ...base, shuffle: false });
  assert.equal(src.length, 8);
  const before = tf.memory().numTensors;
  const { names, shapes, data } = await collect(src.batches(0), true);
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(shapes, [
    [4, 32, 32, 3],
    [4, 32, 32, 3],
    [4, 32, 32, 3],
    [4, 32, 32, 3],
  ]);
  const file = await rawPixels(join(dir, 'train', 'B', names[0]![0]!));
  const b0 = data[1]!;
  for (let i = 0; i < file.data.length; i++) assert.ok(Math.abs(b0[i]! - (file.data[i]! / 127.5 - 1)) < 1e-6);
  for (const d of data) for (const v of d) assert.ok(v >= -1 && v <= 1);
});
