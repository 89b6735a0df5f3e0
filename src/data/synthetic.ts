import { DatasetWriter, splitSources } from './dataset.js';
import { applyDegradation, parseDegradation } from './degrade.js';
import { newImage, type RgbImage } from './image.js';
import { Rng } from './rng.js';
import type { DatasetInfo, DatasetSource } from './types.js';

export interface SyntheticOptions {
  count: number;
  size: number;
  seed: number;
  /** Fraction of pairs in train (default 0.8). */
  split?: number;
  /** How A is made from B (default `gaussian:25`: denoising converges fastest of the tasks). */
  degrade?: string;
}

type Colour = [number, number, number];

const randomColour = (rng: Rng): Colour => [rng.int(256), rng.int(256), rng.int(256)];

/**
 * A target B: a linear gradient between two random colours with 2 to 5 flat-coloured discs, boxes and
 * triangles on top. Shapes have crisp edges and flat interiors, so a denoiser has structure to keep and
 * flat areas to clean, and a few hundred steps already show progress.
 */
export function syntheticImage(size: number, rng: Rng): RgbImage {
  const img = newImage(size, size);
  const c0 = randomColour(rng);
  const c1 = randomColour(rng);
  const angle = rng.next() * 2 * Math.PI;
  const dx = Math.cos(angle);
  const dy = Math.sin(angle);
  const span = Math.abs(dx) * size + Math.abs(dy) * size || 1;
  const put = (x: number, y: number, c: Colour): void => {
    img.data.set(c, (y * size + x) * 3);
  };
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const t = ((x - size / 2) * dx + (y - size / 2) * dy) / span + 0.5;
      put(x, y, [0, 1, 2].map((k) => Math.round(c0[k]! + (c1[k]! - c0[k]!) * t)) as Colour);
    }
  }
  const shapes = 2 + rng.int(4);
  for (let s = 0; s < shapes; s++) {
    const colour = randomColour(rng);
    const cx = rng.next() * size;
    const cy = rng.next() * size;
    const r = size * (0.08 + 0.2 * rng.next());
    const kind = rng.int(3);
    const rot = rng.next() * 2 * Math.PI;
    const v = [0, 1, 2].map((i) => [
      cx + r * Math.cos(rot + (i * 2 * Math.PI) / 3),
      cy + r * Math.sin(rot + (i * 2 * Math.PI) / 3),
    ]);
    const edge = (a: number[], b: number[], x: number, y: number): number =>
      (b[0]! - a[0]!) * (y - a[1]!) - (b[1]! - a[1]!) * (x - a[0]!);
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(size, Math.ceil(cy + r)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(size, Math.ceil(cx + r)); x++) {
        const px = x + 0.5;
        const py = y + 0.5;
        let inside: boolean;
        if (kind === 0) inside = (px - cx) ** 2 + (py - cy) ** 2 <= r * r;
        else if (kind === 1) inside = Math.abs(px - cx) <= r * 0.8 && Math.abs(py - cy) <= r * 0.6;
        else {
          const e0 = edge(v[0]!, v[1]!, px, py);
          const e1 = edge(v[1]!, v[2]!, px, py);
          const e2 = edge(v[2]!, v[0]!, px, py);
          inside = (e0 >= 0 && e1 >= 0 && e2 >= 0) || (e0 <= 0 && e1 <= 0 && e2 <= 0);
        }
        if (inside) put(x, y, colour);
      }
    }
  }
  return img;
}

/**
 * Writes a small deterministic dataset in the standard layout (train/{A,B}, test/{A,B}, dataset.json):
 * the same options give byte-identical files. Each pair counts as its own source for the split.
 */
export async function writeSyntheticDataset(dir: string, opts: SyntheticOptions): Promise<DatasetInfo> {
  const split = opts.split ?? 0.8;
  const degrade = opts.degrade ?? 'gaussian:25';
  const steps = parseDegradation(degrade);
  const digits = Math.max(4, String(opts.count - 1).length);
  const names = Array.from({ length: opts.count }, (_, i) => `synthetic-${String(i).padStart(digits, '0')}`);
  const sides = splitSources(names, split, opts.seed);
  const writer = await DatasetWriter.create(dir);
  const sources: DatasetSource[] = [];
  try {
    for (const name of names) {
      const b = syntheticImage(opts.size, Rng.derive(opts.seed, 'synthetic', name));
      const a = await applyDegradation(steps, b, Rng.derive(opts.seed, 'degrade', name, 0));
      await writer.writePair(`${name}-0.png`, name, a, b);
      sources.push({ name, split: sides.get(name)!, pairs: 1 });
    }
    return await writer.finish(
      {
        kind: 'synthetic',
        size: opts.size,
        seed: opts.seed,
        split,
        options: { degrade: steps.map((s) => s.spec).join('+'), count: opts.count },
        counts: { train: 0, test: 0, sources: names.length, skipped: 0, flatTiles: 0 },
        sources,
        skipped: [],
      },
      sides,
    );
  } catch (e) {
    await writer.abort();
    throw e;
  }
}
