import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { safeSegments } from './paths.js';
import type { DatasetPairs, DatasetSummary } from './train-types.js';

// The prepared datasets `serve --data DIR` offers the train page: folders right under DIR with the
// layout `prepare` writes (train/A, train/B, test/A, test/B), read-only.

const IMAGE = /\.(png|jpe?g|webp)$/i;

/** The names in `split`/A that `split`/B holds too (pairs match by name), sorted. */
async function pairNames(dir: string, split: 'train' | 'test'): Promise<string[]> {
  const list = async (side: string) =>
    (await readdir(join(dir, split, side)).catch(() => [] as string[])).filter((n) => IMAGE.test(n));
  const b = new Set(await list('B'));
  return (await list('A')).filter((n) => b.has(n)).sort();
}

/** Each dataset under `dataReal` with its pair counts; a folder without train/A is not one. */
export async function listDatasets(dataReal: string): Promise<DatasetSummary[]> {
  const out: DatasetSummary[] = [];
  for (const e of await readdir(dataReal, { withFileTypes: true })) {
    if (!e.isDirectory() || e.name.startsWith('.')) continue;
    const train = await pairNames(join(dataReal, e.name), 'train');
    if (train.length === 0) continue;
    out.push({
      name: e.name,
      train: train.length,
      test: (await pairNames(join(dataReal, e.name), 'test')).length,
    });
  }
  return out.sort((x, y) => x.name.localeCompare(y.name));
}

/** The pair names of dataset `name`, or undefined when there is no such dataset. */
export async function datasetPairs(dataReal: string, name: string): Promise<DatasetPairs | undefined> {
  safeSegments([name]);
  const dir = join(dataReal, name);
  const train = await pairNames(dir, 'train');
  if (train.length === 0) return undefined;
  return { name, train, test: await pairNames(dir, 'test') };
}
