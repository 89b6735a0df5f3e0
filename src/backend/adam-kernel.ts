import * as tf from '@tensorflow/tfjs-core';

// Adam's per-variable update as a backend operation: the tfjs-ops version here, and a fused one that
// a backend registers for itself (the native backend does), so the backend needs nothing of training.

export interface AdamHyper {
  lr: number;
  beta1: number;
  beta2: number;
  epsilon: number;
}

/**
 * Updates one variable in place: m <- b1 m + (1-b1) g; v <- b2 v + (1-b2) g^2;
 * w <- w - lr_t m / (sqrt(v) + eps_t), with step `t` (1-based) for the bias correction
 * (PyTorch's Adam maths). Must dispose nothing it was given.
 */
export type AdamKernel = (
  w: tf.Variable,
  g: tf.Tensor,
  m: tf.Variable,
  v: tf.Variable,
  hp: AdamHyper,
  t: number,
) => void;

/**
 * PyTorch's formulation in tfjs ops, each temporary freed as soon as it is used: a tidy would keep a
 * dozen of them alive at once, 400 MB for the generator's largest (8.4 M-weight) variable.
 */
export const tfjsAdamKernel: AdamKernel = (w, g, m, v, hp, t) => {
  const free = <T extends tf.Tensor>(result: T, ...used: tf.Tensor[]): T => {
    tf.dispose(used);
    return result;
  };
  let x = tf.mul(m, hp.beta1);
  let y = tf.mul(g, 1 - hp.beta1);
  const m1 = free(tf.add(x, y), x, y);
  x = tf.square(g);
  y = free(tf.mul(x, 1 - hp.beta2), x);
  x = tf.mul(v, hp.beta2);
  const v1 = free(tf.add(x, y), x, y);
  // Bias-corrected step: w -= lr / bc1 * m1 / (sqrt(v1 / bc2) + eps).
  x = tf.div(v1, 1 - hp.beta2 ** t);
  y = free(tf.sqrt(x), x);
  x = free(tf.add(y, hp.epsilon), y);
  y = free(tf.div(m1, x), x);
  x = free(tf.mul(y, hp.lr / (1 - hp.beta1 ** t)), y);
  y = free(tf.sub(w, x), x);
  w.assign(y);
  m.assign(m1);
  v.assign(v1);
  tf.dispose([y, m1, v1]);
};

const kernels = new Map<string, AdamKernel>();

/** A backend may bring a fused update (the native one does); others use tfjs ops. */
export function registerAdamKernel(backendName: string, kernel: AdamKernel): void {
  kernels.set(backendName, kernel);
}

export function adamKernelFor(backendName: string): AdamKernel {
  return kernels.get(backendName) ?? tfjsAdamKernel;
}
