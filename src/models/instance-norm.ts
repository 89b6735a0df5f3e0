import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export interface InstanceNormArgs {
  epsilon?: number;
  /** PyTorch's InstanceNorm2d default (the reference's) is affine=false. */
  affine?: boolean;
  /** Seed of the gamma initialiser, N(1, 0.02) as pix2pix initialises affine norms. */
  seed?: number;
  name?: string;
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
      const { mean, variance } = tf.moments(x, [1, 2], true);
      let y = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, this.epsilon)));
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
