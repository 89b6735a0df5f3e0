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

/** PyTorch's formulation, in tfjs ops: each variable's temporaries die before the next variable starts. */
export const tfjsAdamKernel: AdamKernel = (w, g, m, v, hp, t) => {
  tf.tidy(() => {
    const m1 = tf.add(tf.mul(m, hp.beta1), tf.mul(g, 1 - hp.beta1));
    const v1 = tf.add(tf.mul(v, hp.beta2), tf.mul(tf.square(g), 1 - hp.beta2));
    const bc1 = 1 - hp.beta1 ** t;
    const bc2 = 1 - hp.beta2 ** t;
    const denom = tf.add(tf.sqrt(tf.div(v1, bc2)), hp.epsilon);
    w.assign(tf.sub(w, tf.mul(tf.div(m1, denom), hp.lr / bc1)));
    m.assign(m1);
    v.assign(v1);
  });
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

  constructor(
    readonly variables: tf.Variable[],
    hp: Partial<AdamHyper> = {},
  ) {
    this.hp = { lr: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-8, ...hp };
    this.m = variables.map((w) => tf.variable(tf.zeros(w.shape), false, `${w.name}/m`));
    this.v = variables.map((w) => tf.variable(tf.zeros(w.shape), false, `${w.name}/v`));
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
