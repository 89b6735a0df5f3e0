import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';

/**
 * The cpu backend under another name with one kernel replaced: a reference for whole training steps
 * (the cpu backend's own Conv2DBackpropFilter takes minutes on a 64 px step). The replacement is
 * checked against the cpu backend's own kernel in native-step.test.ts; every other kernel is cpu's.
 */
export const CPU_REF = 'cpu-ref';

/** dW = sum over batch and output positions of x patch (outer) dy, in plain loops ordered for contiguous inner rows. */
function conv2dBackpropFilterRef(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: MathBackendCPU;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const { x, dy } = args.inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dimRoundingMode, filterShape } = args.attrs as unknown as {
    strides: [number, number] | number;
    pad: 'same' | 'valid';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
  );
  const xv = args.backend.data.get(x.dataId).values as Float32Array;
  const dyv = args.backend.data.get(dy.dataId).values as Float32Array;
  const [kh, kw, ic, oc] = filterShape;
  const dw = new Float64Array(kh * kw * ic * oc);
  const {
    batchSize,
    inHeight: ih,
    inWidth: iw,
    outHeight: oh,
    outWidth: ow,
    strideHeight: sh,
    strideWidth: sw,
  } = info;
  for (let b = 0; b < batchSize; b++) {
    for (let y = 0; y < oh; y++) {
      for (let z = 0; z < ow; z++) {
        const dyo = ((b * oh + y) * ow + z) * oc;
        for (let i = 0; i < kh; i++) {
          const r = y * sh - info.padInfo.top + i;
          if (r < 0 || r >= ih) continue;
          for (let j = 0; j < kw; j++) {
            const c = z * sw - info.padInfo.left + j;
            if (c < 0 || c >= iw) continue;
            const xo = ((b * ih + r) * iw + c) * ic;
            const wo = (i * kw + j) * ic * oc;
            for (let k = 0; k < ic; k++) {
              const xval = xv[xo + k]!;
              if (xval === 0) continue;
              const row = wo + k * oc;
              for (let o = 0; o < oc; o++) dw[row + o]! += xval * dyv[dyo + o]!;
            }
          }
        }
      }
    }
  }
  return args.backend.makeTensorInfo(filterShape, 'float32', Float32Array.from(dw));
}

export function registerCpuReference(): void {
  if (tf.findBackendFactory(CPU_REF)) return;
  tf.registerBackend(CPU_REF, () => new MathBackendCPU());
  for (const k of tf.getKernelsForBackend('cpu')) {
    const kernelFunc =
      k.kernelName === 'Conv2DBackpropFilter'
        ? (conv2dBackpropFilterRef as unknown as tf.KernelFunc)
        : k.kernelFunc;
    tf.registerKernel({ ...k, backendName: CPU_REF, kernelFunc });
  }
}
