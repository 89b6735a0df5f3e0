import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
// The project's other custom layer: importing this module (as the loaders, the exporters and the
// browser bundle do, to register custom layers) registers both.
import './residual.js';

export interface InstanceNormArgs {
  epsilon?: number;
  /** PyTorch's InstanceNorm2d default (the reference's) is affine=false. */
  affine?: boolean;
  /** Seed of the gamma initialiser, N(1, 0.02) as pix2pix initialises affine norms. */
  seed?: number;
  name?: string;
}

/**
 * y = (x - mean) / sqrt(var + eps) over H and W of each sample and channel, with its gradient written
 * out: dx = r (dy - mean(dy) - y mean(dy y)), r = 1 / sqrt(var + eps). Autodiff through tf.moments
 * would keep three full-size intermediates per layer alive for the backward pass; this keeps only y
 * (which the next layer holds anyway) and r, so a batch of 16 at 256 px fits the 4 GB WASM heap.
 */
export function instanceNormalize(x: tf.Tensor4D, epsilon: number): tf.Tensor4D {
  const op = tf.customGrad((...args: unknown[]) => {
    const input = args[0] as tf.Tensor4D;
    const save = args[1] as tf.GradSaveFunc;
    const { mean, variance } = tf.moments(input as tf.Tensor4D, [1, 2], true);
    const r = tf.rsqrt(tf.add(variance, epsilon));
    const y = tf.mul(tf.sub(input as tf.Tensor4D, mean), r) as tf.Tensor4D;
    save([y, r]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [ys, rs] = saved;
        const d = dy as tf.Tensor4D;
        const meanDy = tf.mean(d, [1, 2], true);
        const meanDyY = tf.mean(tf.mul(d, ys), [1, 2], true);
        return tf.mul(tf.sub(tf.sub(d, meanDy), tf.mul(ys, meanDyY)), rs);
      },
    };
  });
  return op(x) as tf.Tensor4D;
}

/**
 * Instance normalisation over H and W for each sample and channel (NHWC), as torch.nn.InstanceNorm2d
 * with track_running_stats=false: the same maths in training and inference. tfjs-layers has no such
 * layer; it is registered for serialisation so saved models reload in Node and in the browser.
 */
export class InstanceNorm extends tfl.layers.Layer {
  static className = 'InstanceNorm';
  readonly epsilon: number;
  readonly affine: boolean;
  private readonly seed?: number;
  private gamma?: tfl.LayerVariable;
  private beta?: tfl.LayerVariable;

  constructor(args: InstanceNormArgs = {}) {
    super({ name: args.name });
    this.epsilon = args.epsilon ?? 1e-5;
    this.affine = args.affine ?? false;
    this.seed = args.seed;
  }

  override build(inputShape: tfl.Shape | tfl.Shape[]): void {
    const shape = inputShape as tfl.Shape;
    const channels = shape[shape.length - 1];
    if (channels == null) throw new Error('InstanceNorm needs a known channel count');
    if (this.affine) {
      this.gamma = this.addWeight(
        'gamma',
        [channels],
        'float32',
        tfl.initializers.randomNormal({ mean: 1, stddev: 0.02, seed: this.seed }),
      );
      this.beta = this.addWeight('beta', [channels], 'float32', tfl.initializers.zeros());
    }
    this.built = true;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = Array.isArray(inputs) ? inputs[0] : inputs;
      let y = instanceNormalize(x as tf.Tensor4D, this.epsilon);
      if (this.gamma && this.beta) y = tf.add(tf.mul(y, this.gamma.read()), this.beta.read());
      return y;
    });
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return inputShape;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), epsilon: this.epsilon, affine: this.affine };
  }
}

tf.serialization.registerClass(InstanceNorm);
