import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';

/** [-1, 1] float NHWC -> uint8 RGB, rounding as torchvision's save_image does ((x+1)/2 * 255 + 0.5). */
export function toUint8(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(
    () =>
      tf.cast(
        tf.clipByValue(tf.floor(tf.add(tf.mul(tf.add(x, 1), 127.5), 0.5)), 0, 255),
        'int32',
      ) as tf.Tensor4D,
  );
}

/**
 * Writes a PNG grid with one row per pair: the columns are the given images (e.g. input | target |
 * output), each a [-1, 1] NHWC batch of the same shape. `scale` enlarges it by nearest neighbour.
 */
export async function writeGrid(
  path: string,
  columns: tf.Tensor4D[],
  opts: { scale?: number } = {},
): Promise<void> {
  const [n, h, w, c] = columns[0].shape;
  const grid = tf.tidy(() => {
    const rows = tf.concat(columns.map(toUint8), 2); // [n, h, w * cols, c]
    return tf.reshape(rows, [n * h, w * columns.length, c]);
  });
  const data = Uint8Array.from(await grid.data());
  grid.dispose();
  const scale = opts.scale ?? 1;
  let image = sharp(data, { raw: { width: w * columns.length, height: n * h, channels: c as 3 } });
  if (scale > 1) {
    image = sharp(await image.png().toBuffer()).resize(w * columns.length * scale, n * h * scale, {
      kernel: 'nearest',
    });
  }
  await image.png().toFile(path);
}
