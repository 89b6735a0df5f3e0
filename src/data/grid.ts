// Sample grids as PNG files (sharp): the run's samples/ and compare's report.
import type * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { gridPixels } from './pixels.js';

/**
 * Writes a PNG grid with one row per pair: the columns are the given images (e.g. input | target |
 * output), each a [-1, 1] NHWC batch of the same shape. `scale` enlarges it by nearest neighbour.
 */
export async function writeGrid(
  path: string,
  columns: tf.Tensor4D[],
  opts: { scale?: number } = {},
): Promise<void> {
  const { data, width, height, channels } = await gridPixels(columns);
  const scale = opts.scale ?? 1;
  let image = sharp(data, { raw: { width, height, channels: channels as 3 } });
  if (scale > 1) {
    image = sharp(await image.png().toBuffer()).resize(width * scale, height * scale, {
      kernel: 'nearest',
    });
  }
  await image.png().toFile(path);
}
