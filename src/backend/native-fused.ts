import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from './native-addon.js';
import { alloc, type NativeKernel, nativeKernel, requireF32 } from './native-kernel.js';

/**
 * Instance norm + LeakyReLU as single native passes, for training code that writes its own
 * gradients (src/models/fused.ts): tf.moments, the normalisation, the activation and the closed-form
 * backward are a dozen full-size tfjs ops, each a pass over memory; these are two (forward) and two
 * (backward) passes. Registered for the 'native' backend only: callers check nativeFusedAvailable().
 */
export const INORM_ACT = 'P2PInstanceNormAct';
export const INORM_ACT_GRAD = 'P2PInstanceNormActGrad';
export const LEAKY_GRAD = 'P2PLeakyReluGrad';

/** Whether the current backend runs the fused kernels. */
export function nativeFusedAvailable(): boolean {
  return tf.getBackend() === 'native' && tf.getKernel(INORM_ACT, 'native') != null;
}

/**
 * h = leakyRelu((z - mean) * rs, alpha) (no activation when alpha is null) and
 * rs = 1 / sqrt(var + epsilon), with mean and variance over H and W of each sample and channel:
 * h has z's shape [n, h, w, c], rs is [n, 1, 1, c].
 */
export function instanceNormAct(
  z: tf.Tensor4D,
  epsilon: number,
  alpha: number | null,
): [tf.Tensor4D, tf.Tensor4D] {
  const attrs: InormActAttrs = { epsilon, alpha };
  const [h, rs] = tf.engine().runKernel(INORM_ACT, { z }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor[];
  return [h as tf.Tensor4D, rs as tf.Tensor4D];
}

/** dL/dz of instanceNormAct from dL/dh (g), its output h and rs. */
export function instanceNormActGrad(
  g: tf.Tensor4D,
  h: tf.Tensor4D,
  rs: tf.Tensor4D,
  alpha: number | null,
): tf.Tensor4D {
  const attrs: InormActGradAttrs = { alpha };
  return tf
    .engine()
    .runKernel(INORM_ACT_GRAD, { g, h, rs }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** dL/dx of h = leakyRelu(x, alpha) from dL/dh (g) and h (alpha > 0): one pass instead of three. */
export function leakyReluGrad(g: tf.Tensor4D, h: tf.Tensor4D, alpha: number): tf.Tensor4D {
  return tf.engine().runKernel(LEAKY_GRAD, { g, h }, { alpha }) as tf.Tensor4D;
}

interface InormActAttrs {
  epsilon: number;
  /** LeakyReLU slope (> 0), or null for no activation. */
  alpha: number | null;
}
type InormActGradAttrs = Pick<InormActAttrs, 'alpha'>;

export function fusedKernels(addon: NativeAddon): NativeKernel[] {
  return [
    nativeKernel<{ z: tf.TensorInfo }, InormActAttrs>(INORM_ACT, ({ inputs: { z }, backend, attrs }) => {
      if (z.shape.length !== 4) throw new Error(`${INORM_ACT}: NHWC input expected`);
      const [n, hh, ww, c] = z.shape as [number, number, number, number];
      const h = alloc(backend, n * hh * ww * c);
      const rs = alloc(backend, n * c);
      addon.inormActForward(
        requireF32(backend, z, INORM_ACT),
        n,
        hh * ww,
        c,
        attrs.epsilon,
        attrs.alpha,
        h,
        rs,
      );
      return [
        backend.makeTensorInfo(z.shape, 'float32', h),
        backend.makeTensorInfo([n, 1, 1, c], 'float32', rs),
      ];
    }),
    nativeKernel<{ g: tf.TensorInfo; h: tf.TensorInfo; rs: tf.TensorInfo }, InormActGradAttrs>(
      INORM_ACT_GRAD,
      ({ inputs: { g, h, rs }, backend, attrs }) => {
        const [n, hh, ww, c] = h.shape as [number, number, number, number];
        if (!tf.util.arraysEqual(g.shape, h.shape) || rs.shape[3] !== c) {
          throw new Error(`${INORM_ACT_GRAD}: shapes ${g.shape}, ${h.shape}, ${rs.shape} do not match`);
        }
        const dz = alloc(backend, n * hh * ww * c);
        const read = (t: tf.TensorInfo) => requireF32(backend, t, INORM_ACT_GRAD);
        addon.inormActBackward(read(g), read(h), read(rs), n, hh * ww, c, attrs.alpha, dz);
        return backend.makeTensorInfo(h.shape, 'float32', dz);
      },
    ),
    nativeKernel<{ g: tf.TensorInfo; h: tf.TensorInfo }, tf.LeakyReluAttrs>(
      LEAKY_GRAD,
      ({ inputs: { g, h }, backend, attrs }) => {
        if (!tf.util.arraysEqual(g.shape, h.shape)) {
          throw new Error(`${LEAKY_GRAD}: shapes ${g.shape} and ${h.shape} do not match`);
        }
        const n = tf.util.sizeFromShape(h.shape);
        const dz = alloc(backend, n);
        const read = (t: tf.TensorInfo) => requireF32(backend, t, LEAKY_GRAD);
        addon.leakyBackward(read(g), read(h), n, attrs.alpha, dz);
        return backend.makeTensorInfo(h.shape, 'float32', dz);
      },
    ),
  ];
}
