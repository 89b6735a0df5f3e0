import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import type { NativeAddon } from './native-addon.js';

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
  const out = tf.engine().runKernel(INORM_ACT, { z }, { epsilon, alpha } as unknown as tf.NamedAttrMap);
  return out as unknown as [tf.Tensor4D, tf.Tensor4D];
}

/** dL/dz of instanceNormAct from dL/dh (g), its output h and rs. */
export function instanceNormActGrad(
  g: tf.Tensor4D,
  h: tf.Tensor4D,
  rs: tf.Tensor4D,
  alpha: number | null,
): tf.Tensor4D {
  return tf
    .engine()
    .runKernel(INORM_ACT_GRAD, { g, h, rs }, { alpha } as unknown as tf.NamedAttrMap) as tf.Tensor4D;
}

/** dL/dx of h = leakyRelu(x, alpha) from dL/dh (g) and h (alpha > 0): one pass instead of three. */
export function leakyReluGrad(g: tf.Tensor4D, h: tf.Tensor4D, alpha: number): tf.Tensor4D {
  return tf.engine().runKernel(LEAKY_GRAD, { g, h }, { alpha }) as tf.Tensor4D;
}

type Args = { inputs: tf.NamedTensorInfoMap; backend: MathBackendCPU; attrs?: tf.NamedAttrMap };

function f32(backend: MathBackendCPU, t: tf.TensorInfo, what: string): Float32Array {
  const v = backend.data.get(t.dataId).values;
  if (t.dtype !== 'float32' || !(v instanceof Float32Array))
    throw new Error(`${what}: float32 data expected`);
  return v;
}

function alloc(backend: MathBackendCPU, n: number): Float32Array {
  const b = backend as MathBackendCPU & { alloc?: (n: number) => Float32Array };
  return b.alloc ? b.alloc(n) : new Float32Array(n);
}

export function fusedKernels(
  addon: NativeAddon,
): Array<{ name: string; func: (args: Args) => tf.TensorInfo[] | tf.TensorInfo }> {
  return [
    {
      name: INORM_ACT,
      func: ({ inputs, backend, attrs }) => {
        const z = inputs['z']!;
        const { epsilon, alpha } = attrs as unknown as { epsilon: number; alpha: number | null };
        if (z.shape.length !== 4) throw new Error(`${INORM_ACT}: NHWC input expected`);
        const [n, hh, ww, c] = z.shape as [number, number, number, number];
        const h = alloc(backend, n * hh * ww * c);
        const rs = alloc(backend, n * c);
        addon.inormActForward(f32(backend, z, INORM_ACT), n, hh * ww, c, epsilon, alpha, h, rs);
        return [
          backend.makeTensorInfo(z.shape, 'float32', h),
          backend.makeTensorInfo([n, 1, 1, c], 'float32', rs),
        ];
      },
    },
    {
      name: INORM_ACT_GRAD,
      func: ({ inputs, backend, attrs }) => {
        const { g, h, rs } = inputs as { g: tf.TensorInfo; h: tf.TensorInfo; rs: tf.TensorInfo };
        const { alpha } = attrs as unknown as { alpha: number | null };
        const [n, hh, ww, c] = h.shape as [number, number, number, number];
        if (!tf.util.arraysEqual(g.shape, h.shape) || rs.shape[3] !== c) {
          throw new Error(`${INORM_ACT_GRAD}: shapes ${g.shape}, ${h.shape}, ${rs.shape} do not match`);
        }
        const dz = alloc(backend, n * hh * ww * c);
        addon.inormActBackward(
          f32(backend, g, INORM_ACT_GRAD),
          f32(backend, h, INORM_ACT_GRAD),
          f32(backend, rs, INORM_ACT_GRAD),
          n,
          hh * ww,
          c,
          alpha,
          dz,
        );
        return backend.makeTensorInfo(h.shape, 'float32', dz);
      },
    },
    {
      name: LEAKY_GRAD,
      func: ({ inputs, backend, attrs }) => {
        const { g, h } = inputs as { g: tf.TensorInfo; h: tf.TensorInfo };
        const alpha = attrs?.['alpha'] as number;
        if (!tf.util.arraysEqual(g.shape, h.shape)) {
          throw new Error(`${LEAKY_GRAD}: shapes ${g.shape} and ${h.shape} do not match`);
        }
        const n = tf.util.sizeFromShape(h.shape);
        const dz = alloc(backend, n);
        addon.leakyBackward(f32(backend, g, LEAKY_GRAD), f32(backend, h, LEAKY_GRAD), n, alpha, dz);
        return backend.makeTensorInfo(h.shape, 'float32', dz);
      },
    },
  ];
}
