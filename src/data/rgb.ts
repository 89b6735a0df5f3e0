// The pixel type and what is done to it in plain JavaScript, without sharp or node:crypto, so the
// browser bundle uses the same code; image.ts adds the Node codec (sharp) on top.

/** An 8-bit RGB image, row-major, interleaved: the one pixel format inside the data pipeline. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/**
 * The operations that need an image codec, which each platform provides: sharp in Node (image.ts),
 * OffscreenCanvas in a browser page or worker (canvas.ts).
 */
export interface PixelCodec {
  /** Encodes as JPEG at `quality` (1..100, 4:2:0 chroma) and decodes back: the `jpeg:Q` degradation. */
  jpeg(img: RgbImage, quality: number): Promise<RgbImage>;
  /** Resamples to exactly width x height (prepare's `cover` fit and `--resize`). */
  resize(img: RgbImage, width: number, height: number): Promise<RgbImage>;
}

export function newImage(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3) };
}

export function crop(img: RgbImage, left: number, top: number, width: number, height: number): RgbImage {
  const out = newImage(width, height);
  const row = width * 3;
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * img.width + left) * 3;
    out.data.set(img.data.subarray(from, from + row), y * row);
  }
  return out;
}

/** Rec. 601 luma, the usual definition for "grayscale" photos. */
export function luma(img: RgbImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) out[i] = 0.299 * d[3 * i]! + 0.587 * d[3 * i + 1]! + 0.114 * d[3 * i + 2]!;
  return out;
}
