// The train page's pairs, decoded in its worker: a prepared dataset that `serve --data` offers.
import type { DatasetPairs } from '../train-types.js';

/** One training or held-out pair, each side [size, size, 3] values in [-1, 1]. */
export interface Pair {
  name: string;
  a: Float32Array;
  b: Float32Array;
}

export interface PagePairs {
  train: Pair[];
  test: Pair[];
  trainSources?: number;
  testSources?: number;
}

/** Decoded pixels as [size, size, 3] values in [-1, 1] (drawn at the size: a larger image is scaled). */
export function pixelsOf(bmp: ImageBitmap, size: number): Float32Array {
  const canvas = new OffscreenCanvas(size, size);
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bmp, 0, 0, size, size);
  const rgba = ctx.getImageData(0, 0, size, size).data;
  const out = new Float32Array(size * size * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    out[j] = rgba[i]! / 127.5 - 1;
    out[j + 1] = rgba[i + 1]! / 127.5 - 1;
    out[j + 2] = rgba[i + 2]! / 127.5 - 1;
  }
  return out;
}

/** An image file of the server, decoded off the main thread and checked to be at least `size`. */
async function fetchPixels(url: string, size: number): Promise<Float32Array> {
  const name = decodeURIComponent(url.split('/').slice(-2).join('/'));
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${name}: HTTP ${res.status}`);
  let bmp: ImageBitmap;
  try {
    bmp = await createImageBitmap(await res.blob());
  } catch {
    throw new Error(`${name} is not an image this browser can decode`);
  }
  if (bmp.width < size || bmp.height < size) {
    throw new Error(`${name} is ${bmp.width}x${bmp.height}, smaller than the size ${size}`);
  }
  try {
    return pixelsOf(bmp, size);
  } finally {
    bmp.close();
  }
}

/** The names of a dataset's pairs, per split; a missing dataset is the server's one-line reason. */
export async function servedPairNames(dataset: string): Promise<DatasetPairs> {
  const res = await fetch(`/api/dataset?name=${encodeURIComponent(dataset)}`);
  // The server's one-line reason ("404 Not Found: no dataset 'x' under --data") without its status.
  if (!res.ok) throw new Error((await res.text()).trim().replace(/^\d+ [^:]*: /, ''));
  return (await res.json()) as DatasetPairs;
}

/** Every pair of a served dataset, both splits, in the server's (sorted) name order. */
export async function servedPairs(names: DatasetPairs, size: number): Promise<PagePairs> {
  const load = (split: 'train' | 'test') => {
    const base = `/datasets/${encodeURIComponent(names.name)}/${split}`;
    return Promise.all(
      names[split].map(async (n) => ({
        name: n,
        a: await fetchPixels(`${base}/A/${encodeURIComponent(n)}`, size),
        b: await fetchPixels(`${base}/B/${encodeURIComponent(n)}`, size),
      })),
    );
  };
  return { train: await load('train'), test: await load('test') };
}
