/** A convolution to check a backend's kernels on: shapes only, the tests fill in random values. */
export type Pad = 'same' | 'valid' | number | [[0, 0], [number, number], [number, number], [0, 0]];

export interface ConvCase {
  name: string;
  /** NHWC input of the conv (already zero-padded where the model pads with ZeroPadding2D). */
  x: number[];
  /** HWIO filter. */
  filter: number[];
  strides: number | [number, number];
  pad: Pad;
}

export const conv = (
  name: string,
  x: number[],
  filter: number[],
  strides: ConvCase['strides'],
  pad: Pad,
): ConvCase => ({ name, x, filter, strides, pad });
