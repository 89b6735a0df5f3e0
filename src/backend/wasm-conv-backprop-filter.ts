import {
  backend_util,
  type Conv2DBackpropFilterAttrs,
  type Conv2DBackpropFilterInputs,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { callKernel, crop4d, free, type WasmBackend, zeros } from './wasm-kernel-util.js';

/**
 * dW[kh,kw,ci,co] = sum over b,oh,ow of x[b, oh*s - padTop + kh, ow*s - padLeft + kw, ci] * dy[b,oh,ow,co].
 *
 * Read as a convolution, that is x (input channels ci moved to the batch axis, the batch moved to
 * the channel axis) correlated with dy used as a filter dilated by the stride, producing a KHxKW
 * "image" per ci. It then runs on the backend's own XNNPACK Conv2D instead of a JS loop. The
 * backend's Conv3DBackpropFilterV2 is not a usable base: it is wrong at stride 2 in tfjs 4.22.
 */
function conv2DBackpropFilter(args: {
  inputs: Conv2DBackpropFilterInputs;
  backend: WasmBackend;
  attrs: Conv2DBackpropFilterAttrs;
}): TensorInfo {
  const { backend, inputs, attrs } = args;
  const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  const format = backend_util.convertConv2DDataFormat(dataFormat);
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape,
    strides,
    1,
    pad,
    dimRoundingMode,
    false,
    format,
  );
  const { filterHeight, filterWidth, strideHeight, strideWidth, inHeight, inWidth, outHeight, outWidth } =
    info;
  const channelsLast = format === 'channelsLast';
  const dyH = dy.shape[channelsLast ? 1 : 2];
  const dyW = dy.shape[channelsLast ? 2 : 3];
  if (dyH !== outHeight || dyW !== outWidth || dy.shape[0] !== info.batchSize) {
    throw new Error(
      `Conv2DBackpropFilter: dy shape ${dy.shape} does not match conv output ${info.outShape} of x ${x.shape}`,
    );
  }
  if (outHeight <= 0 || outWidth <= 0) {
    throw new Error(`Conv2DBackpropFilter: empty conv output for x ${x.shape}`);
  }

  // [ci, h, w, batch]: ci becomes the batch of the inner conv, batch its input channels.
  const xT = callKernel(backend, 'Transpose', { x }, { perm: channelsLast ? [3, 1, 2, 0] : [1, 2, 3, 0] });
  // [oh, ow, batch, co]: dy as an HWIO filter.
  const dyT = callKernel(
    backend,
    'Transpose',
    { x: dy },
    { perm: channelsLast ? [1, 2, 0, 3] : [2, 3, 0, 1] },
  );

  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  // Rows past the last one a filter tap reaches are dropped by the conv (valid padding that does
  // not divide evenly); a negative bottom/right pad means cropping them off first.
  let padBottom = (outHeight - 1) * strideHeight + filterHeight - padTop - inHeight;
  let padRight = (outWidth - 1) * strideWidth + filterWidth - padLeft - inWidth;
  if (inHeight + padBottom <= 0 || inWidth + padRight <= 0) {
    // Every tap lands in padding (explicit pads past the input): the gradient is zero.
    free(backend, xT);
    free(backend, dyT);
    return zeros(backend, filterShape);
  }
  let input = xT;
  if (padBottom < 0 || padRight < 0) {
    input = crop4d(backend, xT, 0, Math.max(0, -padBottom), 0, Math.max(0, -padRight));
    free(backend, xT);
    padBottom = Math.max(0, padBottom);
    padRight = Math.max(0, padRight);
  }

  const grad = callKernel(
    backend,
    'Conv2D',
    { x: input, filter: dyT },
    {
      strides: [1, 1],
      dilations: [strideHeight, strideWidth],
      pad: [
        [0, 0],
        [padTop, padBottom],
        [padLeft, padRight],
        [0, 0],
      ],
      dataFormat: 'NHWC',
    },
  );
  free(backend, input);
  free(backend, dyT);
  // [ci, kh, kw, co] -> [kh, kw, ci, co]
  const dw = callKernel(backend, 'Transpose', { x: grad }, { perm: [1, 2, 0, 3] });
  free(backend, grad);
  return dw;
}

export const conv2DBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as KernelFunc,
};
