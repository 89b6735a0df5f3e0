import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

export interface ResidualOutputArgs {
  /** Bounds of the output: the images' range, [-1, 1]. */
  min?: number;
  max?: number;
  name?: string;
}

/**
 * The output of a residual generator (`--residual`): y = clip(x + r, min, max), with x the network's
 * input image and r what the UNet predicts (the correction: for denoising, minus the noise). Inputs
 * are [x, r] in that order, of equal shape; min/max default to -1/1. In ONNX: Add(x, r) -> Clip(min, max).
 * The gradient is clip's own (dy where min <= x + r <= max, else 0), as tf.clipByValue and ONNX Clip.
 *
 * tfjs-layers has no clip layer; this one is registered for serialisation, so a saved residual
 * generator reloads in Node and in the browser like any other.
 */
export class ResidualOutput extends tfl.layers.Layer {
  static className = 'ResidualOutput';
  readonly min: number;
  readonly max: number;

  constructor(args: ResidualOutputArgs = {}) {
    super({ name: args.name });
    this.min = args.min ?? -1;
    this.max = args.max ?? 1;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    if (!Array.isArray(inputs) || inputs.length !== 2) {
      throw new Error('ResidualOutput takes two inputs: the image and the residual');
    }
    return tf.tidy(() => tf.clipByValue(tf.add(inputs[0]!, inputs[1]!), this.min, this.max));
  }

  override computeOutputShape(inputShape: tfl.Shape | tfl.Shape[]): tfl.Shape | tfl.Shape[] {
    return (inputShape as tfl.Shape[])[0]!;
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), min: this.min, max: this.max };
  }
}

tf.serialization.registerClass(ResidualOutput);
