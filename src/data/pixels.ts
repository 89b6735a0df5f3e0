import * as tf from '@tensorflow/tfjs-core';

// Pixels out of the networks' [-1, 1] range, with no Node import: the train page's worker bundles it.

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

/** A grid's RGB bytes, row-major, `channels` values a pixel. */
export interface GridPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}

/**
 * One row per pair, the columns side by side (e.g. input | target | output), each a [-1, 1] NHWC
 * batch of the same shape; read asynchronously (a GPU backend has no synchronous read).
 */
export async function gridPixels(columns: tf.Tensor4D[]): Promise<GridPixels> {
  const [n, h, w, c] = columns[0]!.shape;
  const grid = tf.tidy(() => tf.reshape(tf.concat(columns.map(toUint8), 2), [n * h, w * columns.length, c]));
  try {
    return {
      data: Uint8Array.from(await grid.data()),
      width: w * columns.length,
      height: n * h,
      channels: c,
    };
  } finally {
    grid.dispose();
  }
}
