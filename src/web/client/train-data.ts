// The train page's pairs, decoded in its worker: a prepared dataset that `serve --data` offers, or the
// user's own files cut into pairs by prepare's code (src/data/in-memory.ts).
import { canvasCodec, decodeImageBlob } from '../../data/canvas.js';
import { type InMemoryKind, type InMemoryPair, pairsFromImages, wantsFile } from '../../data/in-memory.js';
import type { RgbImage } from '../../data/rgb.js';
import type { DatasetPairs, DroppedFile, TrainSettings } from '../train-types.js';

/** One training or held-out pair, each side [size, size, 3] values in [-1, 1]. */
export interface Pair {
  name: string;
  a: Float32Array;
  b: Float32Array;
}

export interface PagePairs {
  /** How dropped files were read; absent for a served dataset. */
  kind?: string;
  train: Pair[];
  test: Pair[];
  trainSources?: number;
  testSources?: number;
}

/** An image file of the server, decoded off the main thread and checked to be at least `size`. */
async function fetchPixels(url: string, size: number): Promise<Float32Array> {
  const name = decodeURIComponent(url.split('/').slice(-2).join('/'));
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${name}: HTTP ${res.status}`);
  let img: RgbImage;
  try {
    img = await decodeImageBlob(await res.blob());
  } catch {
    throw new Error(`${name} is not an image this browser can decode`);
  }
  if (img.width < size || img.height < size) {
    throw new Error(`${name} is ${img.width}x${img.height}, smaller than the size ${size}`);
  }
  // A dataset prepared larger than the page's size is scaled (the canvas's resampling).
  return toUnit(await canvasCodec.resize(img, size, size));
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

/** 8-bit RGB as [-1, 1] values. */
function toUnit(img: RgbImage): Float32Array {
  return Float32Array.from(img.data, (v) => v / 127.5 - 1);
}

/**
 * `auto`: A/ and B/ folders are pairs; otherwise the first image decides, a 2:1 one making aligned
 * A|B pairs and any other photos (each a source, A its degraded copy).
 */
async function guessKind(files: DroppedFile[]): Promise<InMemoryKind> {
  const folders = new Set(files.flatMap((f) => f.path.split('/').slice(0, -1)));
  if (folders.has('A') && folders.has('B')) return 'folders';
  const first = files[0];
  if (!first) return 'photos';
  const bmp = await createImageBitmap(first.file).catch(() => undefined);
  const aligned = bmp !== undefined && bmp.width === 2 * bmp.height;
  bmp?.close();
  return aligned ? 'aligned' : 'photos';
}

/**
 * The user's files as pairs at `size`: the same names, tiles, degradation and split by source as
 * `pix2pix prepare` with these options and seed. A bad file stops it with one line naming it.
 */
export async function droppedPairs(
  dropped: DroppedFile[],
  settings: Pick<TrainSettings, 'kind' | 'degrade' | 'seed'>,
  size: number,
  batch: number,
  onProgress: (done: number, total: number) => void,
): Promise<PagePairs> {
  const files = dropped.filter((f) => wantsFile(f.path));
  const kind = settings.kind === 'auto' ? await guessKind(files) : settings.kind;
  const ds = await pairsFromImages(
    files.map((f) => ({ path: f.path, image: () => decodeImageBlob(f.file) })),
    {
      kind,
      size,
      batch,
      seed: settings.seed,
      degrade: kind === 'photos' || settings.kind !== 'auto' ? settings.degrade || undefined : undefined,
      codec: canvasCodec,
      onProgress,
    },
  );
  const convert = (ps: InMemoryPair[]): Pair[] =>
    ps.map((p) => ({ name: p.name, a: toUnit(p.a), b: toUnit(p.b) }));
  return {
    kind,
    train: convert(ds.train),
    test: convert(ds.test),
    trainSources: ds.sources.train,
    testSources: ds.sources.test,
  };
}
