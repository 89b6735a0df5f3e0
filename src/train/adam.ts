import * as tf from '@tensorflow/tfjs-core';

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

/**
 * Adam over a fixed list of variables. Unlike tfjs's AdamOptimizer, which keeps every variable's
 * temporaries alive until the whole update ends (3.9 GB of the 4 GB WASM heap for the 54 M-parameter
 * generator), it updates variable by variable and frees each gradient once it is applied.
 */
export class Adam {
  readonly hp: AdamHyper;
  /** Number of updates applied so far. */
  step = 0;
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];

  /** `hp` comes from the run's config (TRAIN_OPTIONS holds the defaults); epsilon is PyTorch's 1e-8. */
  constructor(
    readonly variables: tf.Variable[],
    hp: Omit<AdamHyper, 'epsilon'> & { epsilon?: number },
  ) {
    this.hp = { epsilon: 1e-8, ...hp };
    // In tidy, so the zeros tensor dies and each moment variable owns its data: otherwise the zeros
    // stay allocated beside the moments after their first update (2 x the model's size), and
    // in-place updates must not write into data another tensor shares.
    this.m = variables.map((w) => tf.tidy(() => tf.variable(tf.zeros(w.shape), false, `${w.name}/m`)));
    this.v = variables.map((w) => tf.tidy(() => tf.variable(tf.zeros(w.shape), false, `${w.name}/v`)));
  }

  /** Applies `grads` (keyed by variable name, as tf.variableGrads returns them) and disposes them. */
  apply(grads: tf.NamedTensorMap): void {
    this.step++;
    const kernel = adamKernelFor(tf.getBackend());
    this.variables.forEach((w, i) => {
      const g = grads[w.name];
      if (!g) return;
      kernel(w, g, this.m[i], this.v[i], this.hp, this.step);
      g.dispose();
    });
  }

  /** The moment estimates, in variable order, for checkpoints. */
  state(): { step: number; m: tf.Variable[]; v: tf.Variable[] } {
    return { step: this.step, m: this.m, v: this.v };
  }

  restore(step: number, m: tf.Tensor[], v: tf.Tensor[]): void {
    if (m.length !== this.m.length || v.length !== this.v.length) {
      throw new Error(`optimizer state has ${m.length} moments, the model ${this.m.length} variables`);
    }
    this.step = step;
    this.m.forEach((x, i) => {
      x.assign(m[i]);
    });
    this.v.forEach((x, i) => {
      x.assign(v[i]);
    });
  }

  dispose(): void {
    for (const x of [...this.m, ...this.v]) x.dispose();
  }
}
