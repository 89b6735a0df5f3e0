import * as tf from '@tensorflow/tfjs-core';

export const GAN_MODES = ['vanilla', 'lsgan'] as const;
export type GanMode = (typeof GAN_MODES)[number];

/**
 * The GAN loss against an all-real or all-fake label map of the logits' shape. 'vanilla' is the
 * reference's BCE(sigmoid(x), label), written on logits as max(x,0) - x*label + log(1 + e^-|x|)
 * so that a confident D cannot produce log(0).
 */
export function ganLoss(logits: tf.Tensor, real: boolean, mode: GanMode): tf.Scalar {
  return tf.tidy(() => {
    const label = real ? 1 : 0;
    if (mode === 'lsgan') return tf.mean(tf.square(tf.sub(logits, label)));
    const softplusNegAbs = tf.log1p(tf.exp(tf.neg(tf.abs(logits))));
    return tf.mean(tf.add(tf.sub(tf.relu(logits), tf.mul(logits, label)), softplusNegAbs));
  });
}

export function l1Loss(x: tf.Tensor, y: tf.Tensor): tf.Scalar {
  return tf.tidy(() => tf.mean(tf.abs(tf.sub(x, y))));
}
