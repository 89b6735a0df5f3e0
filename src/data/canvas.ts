// The data pipeline's codec in a browser page or Web Worker: decoding dropped files, JPEG and resampling
// through OffscreenCanvas and createImageBitmap, the counterpart of sharp in Node (image.ts). Nothing here
// runs in Node; test/data/canvas.test.ts runs it in Chromium.
import type { PixelCodec, RgbImage } from './rgb.js';

function context(width: number, height: number): OffscreenCanvasRenderingContext2D {
  const ctx = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error('this browser gives no 2D canvas in a worker (OffscreenCanvas)');
  return ctx;
}

function readRgb(ctx: OffscreenCanvasRenderingContext2D, width: number, height: number): RgbImage {
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0, j = 0; i < data.length; i += 3, j += 4) {
    data[i] = rgba[j]!;
    data[i + 1] = rgba[j + 1]!;
    data[i + 2] = rgba[j + 2]!;
  }
  return { width, height, data };
}

/** An opaque canvas holding `img`'s pixels exactly (putImageData does no colour conversion). */
function canvasOf(img: RgbImage): OffscreenCanvasRenderingContext2D {
  const ctx = context(img.width, img.height);
  const rgba = new ImageData(img.width, img.height);
  for (let i = 0, j = 0; i < img.data.length; i += 3, j += 4) {
    rgba.data[j] = img.data[i]!;
    rgba.data[j + 1] = img.data[i + 1]!;
    rgba.data[j + 2] = img.data[i + 2]!;
    rgba.data[j + 3] = 255;
  }
  ctx.putImageData(rgba, 0, 0);
  return ctx;
}

/** `img` as a PNG file (the train page's sample grids). */
export function encodePngBlob(img: RgbImage): Promise<Blob> {
  return canvasOf(img).canvas.convertToBlob({ type: 'image/png' });
}

/**
 * Decodes a dropped file (or any image Blob) to 8-bit sRGB as decodeRgb does in Node: EXIF orientation
 * applied, alpha composited on white. Rejects when the browser cannot decode it; the page reports that
 * with notAnImage (in-memory.ts).
 */
export async function decodeImageBlob(blob: Blob): Promise<RgbImage> {
  const bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image', premultiplyAlpha: 'none' });
  try {
    const ctx = context(bitmap.width, bitmap.height);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, bitmap.width, bitmap.height);
    ctx.drawImage(bitmap, 0, 0);
    return readRgb(ctx, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

/**
 * The browser's PixelCodec. JPEG: the browser's own encoder at the same quality, decoded back; Chromium's
 * is libjpeg-turbo with 4:2:0 chroma like sharp's, and gave identical pixels in the tests, but a browser
 * only promises a JPEG of that quality. Resampling: drawImage with high-quality smoothing, close to but not
 * sharp's Lanczos-3.
 */
export const canvasCodec: PixelCodec = {
  async jpeg(img, quality) {
    const blob = await canvasOf(img).canvas.convertToBlob({ type: 'image/jpeg', quality: quality / 100 });
    // A browser without a JPEG encoder hands back a PNG, which would make jpeg:Q a silent no-op.
    if (blob.type !== 'image/jpeg') throw new Error(`this browser cannot encode JPEG (it gave ${blob.type})`);
    return decodeImageBlob(blob);
  },
  async resize(img, width, height) {
    if (img.width === width && img.height === height) return img;
    const ctx = context(width, height);
    ctx.imageSmoothingEnabled = true;
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(canvasOf(img).canvas, 0, 0, width, height);
    return readRgb(ctx, width, height);
  },
};
