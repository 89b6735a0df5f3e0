import * as tf from '@tensorflow/tfjs-core';
import { type AdamHyper, adamKernelFor } from '../backend/adam-kernel.js';

/**
 * Adam over a fixed list of variables. Unlike tfjs's AdamOptimizer, which keeps every variable's
 * temporaries alive until the whole update ends (3.9 GB of the 4 GB WASM heap for the 54 M-parameter
 * generator), it updates variable by variable and frees each gradient once it is applied.
 */
/** An optimizer's whole state: the step, and the moments m then v in variable order, as one array. */
export interface AdamSnapshot {
  step: number;
  shapes: number[][];
  flat: Float32Array;
}

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

  /** The state as checkpoints store it (and the browser's saved state), read asynchronously. */
  async snapshot(): Promise<AdamSnapshot> {
    const tensors = [...this.m, ...this.v];
    const flat = new Float32Array(tensors.reduce((n, t) => n + t.size, 0));
    let offset = 0;
    for (const t of tensors) {
      flat.set((await t.data()) as Float32Array, offset);
      offset += t.size;
    }
    return { step: this.step, shapes: tensors.map((t) => t.shape), flat };
  }

  /** Restores a snapshot (its shapes must be this optimizer's). */
  restoreSnapshot({ step, shapes, flat }: AdamSnapshot): void {
    let offset = 0;
    const tensors = shapes.map((shape) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const t = tf.tensor(flat.subarray(offset, offset + size), shape);
      offset += size;
      return t;
    });
    const half = tensors.length / 2;
    try {
      this.restore(step, tensors.slice(0, half), tensors.slice(half));
    } finally {
      tf.dispose(tensors);
    }
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
