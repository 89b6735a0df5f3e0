import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { sha256 } from '../../src/data/image.js';

export { tempDir } from '../helpers.js';

/** Every file under `dir` (recursive) with its SHA-256, keyed by relative path. */
export async function hashTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out[p.slice(dir.length + 1)] = sha256(await readFile(p));
  }
  return out;
}

/** A w x h image whose pixels are a function of position, so crops and flips are recognisable. */
export function patternPixels(w: number, h: number, seed = 0): Buffer {
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      buf[i] = (x * 7 + seed * 31) & 255;
      buf[i + 1] = (y * 5 + seed * 17) & 255;
      buf[i + 2] = ((x ^ y) * 3 + seed) & 255;
    }
  }
  return buf;
}

export async function writeImage(
  path: string,
  w: number,
  h: number,
  seed = 0,
  format: 'png' | 'jpeg' | 'webp' | 'tiff' = 'png',
): Promise<void> {
  await sharp(patternPixels(w, h, seed), { raw: { width: w, height: h, channels: 3 } })
    .toFormat(format, format === 'jpeg' ? { quality: 95 } : format === 'webp' ? { lossless: true } : {})
    .toFile(path);
}

export async function rawPixels(
  path: string,
): Promise<{ data: Buffer; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}
