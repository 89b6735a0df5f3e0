// The pixel type alone, without sharp or node:crypto, so the browser bundle can use it too.

/** An 8-bit RGB image, row-major, interleaved: the one pixel format inside the data pipeline. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export function newImage(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3) };
}
