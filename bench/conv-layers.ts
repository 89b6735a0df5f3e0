/**
 * The convolutions of the pix2pix models at a given image size, in the addon's terms (a forward conv
 * NHWC/HWIO; a transposed conv is the backward-data pass of the conv it transposes), and their
 * analytic FLOP counts for one training step.
 */

export interface ConvLayer {
  model: 'G' | 'D';
  name: string;
  /** Forward-conv view: input [ih, iw, ic] -> output [oh, ow, oc]. */
  ih: number;
  ic: number;
  oh: number;
  oc: number;
  k: number;
  stride: number;
  /** tfjs's top/left pad. */
  pad: number;
  /** A transposed conv: its forward is the conv's backward-data pass and vice versa. */
  transposed: boolean;
  /** Whether the step needs the gradient of this layer's input (false for a model's first layer on data). */
  needsInputGrad: boolean;
}

/** Multiply-accumulates of one pass (forward, backward-data and backward-weights all have this many). */
export const macs = (l: ConvLayer, batch = 1) => batch * l.oh * l.oh * l.oc * l.k * l.k * l.ic;

export function generatorLayers(size: number): ConvLayer[] {
  const depth = Math.log2(size);
  const ch = (i: number) => Math.min(64 * 2 ** (i - 1), 512);
  const layers: ConvLayer[] = [];
  let s = size;
  let c = 3;
  for (let i = 1; i <= depth; i++) {
    layers.push({
      model: 'G',
      name: `down${i}`,
      ih: s,
      ic: c,
      oh: s / 2,
      oc: ch(i),
      k: 4,
      stride: 2,
      pad: 1,
      transposed: false,
      needsInputGrad: i > 1,
    });
    s /= 2;
    c = ch(i);
  }
  // Up u takes the previous output (concatenated with its skip, except the first) to level depth-u.
  for (let u = 1; u <= depth; u++) {
    const inC = u === 1 ? 512 : 2 * ch(depth - u + 1);
    const outC = u === depth ? 3 : ch(depth - u);
    layers.push({
      model: 'G',
      name: `up${u}`,
      ih: s * 2,
      ic: outC,
      oh: s,
      oc: inC,
      k: 4,
      stride: 2,
      pad: 1,
      transposed: true,
      needsInputGrad: true,
    });
    s *= 2;
  }
  return layers;
}

export function discriminatorLayers(size: number, kind: 'patch16' | 'patch70' = 'patch16'): ConvLayer[] {
  const layers: ConvLayer[] = [];
  let s = size;
  let c = 6;
  const filters = [64, 128, 256, 512];
  filters.forEach((f, i) => {
    if (kind === 'patch16') {
      // ZeroPadding2D(1) then 3x3 stride-2 'valid'.
      const o = (s + 2 - 3) / 2 + 1;
      layers.push(conv(`stage${i + 1}`, s + 2, c, Math.floor(o), f, 3, 2, 0, i > 0));
      s = Math.floor(o);
    } else if (i < 3) {
      layers.push(conv(`stage${i + 1}`, s, c, s / 2, f, 4, 2, 1, i > 0));
      s /= 2;
    } else {
      layers.push(conv(`stage${i + 1}`, s + 2, c, s - 1, f, 4, 1, 0, true));
      s -= 1;
    }
    c = f;
  });
  if (kind === 'patch16') layers.push(conv('patch', s, 512, s, 1, 3, 1, 1, true));
  else layers.push(conv('patch', s + 2, 512, s - 1, 1, 4, 1, 0, true));
  return layers;
}

function conv(
  name: string,
  ih: number,
  ic: number,
  oh: number,
  oc: number,
  k: number,
  stride: number,
  pad: number,
  needsInputGrad: boolean,
): ConvLayer {
  return { model: 'D', name, ih, ic, oh, oc, k, stride, pad, transposed: false, needsInputGrad };
}

/**
 * Convolution FLOPs (2 per MAC) of one pix2pix training step per image: G forward, backward-data
 * (not for its input image) and backward-weights; D in the G update forward and backward-data (the
 * gradient must reach the fake image), and in the D update twice (real and fake pair) forward,
 * backward-weights and backward-data for every layer but the first.
 */
export function stepFlops(size: number, kind: 'patch16' | 'patch70' = 'patch16'): number {
  let f = 0;
  for (const l of generatorLayers(size)) f += macs(l) * (l.needsInputGrad ? 3 : 2);
  for (const l of discriminatorLayers(size, kind)) {
    f += macs(l) * 2;
    f += 2 * macs(l) * (l.needsInputGrad ? 3 : 2);
  }
  return 2 * f;
}

/** Convolution FLOPs of one generator forward pass per image (inference). */
export function generatorFlops(size: number): number {
  return 2 * generatorLayers(size).reduce((s, l) => s + macs(l), 0);
}
