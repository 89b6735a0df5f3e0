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
 * output), each a [-1, 1] NHWC batch of the same shape.
 */
export async function writeGrid(path: string, columns: tf.Tensor4D[]): Promise<void> {
  const [n, h, w, c] = columns[0].shape;
  const grid = tf.tidy(() => {
    const rows = tf.concat(columns.map(toUint8), 2); // [n, h, w * cols, c]
    return tf.reshape(rows, [n * h, w * columns.length, c]);
  });
  const data = Uint8Array.from(await grid.data());
  grid.dispose();
  await sharp(data, { raw: { width: w * columns.length, height: n * h, channels: c as 3 } })
    .png()
    .toFile(path);
}
