import { createHash } from 'node:crypto';
import sharp from 'sharp';

import { newImage, type RgbImage } from './rgb.js';

export { newImage, type RgbImage };

/**
 * Decodes any image sharp reads to 8-bit sRGB: EXIF orientation applied, alpha composited on white
 * (transparent regions of product shots and icons are white in spirit, and black would invent edges),
 * grayscale and CMYK converted, 16-bit reduced to 8.
 */
export async function decodeRgb(input: string | Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(input, { failOn: 'truncated' })
    .rotate()
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.length),
  };
}

/** PNG bytes of an image; sharp writes no metadata by default, so equal pixels give equal bytes. */
export function encodePng(img: RgbImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
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

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** Rec. 601 luma, the usual definition for "grayscale" photos. */
export function luma(img: RgbImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n);
  const d = img.data;
  for (let i = 0; i < n; i++) out[i] = 0.299 * d[3 * i]! + 0.587 * d[3 * i + 1]! + 0.114 * d[3 * i + 2]!;
  return out;
}
