import { createHash } from 'node:crypto';
import sharp from 'sharp';

import { crop, luma, newImage, type PixelCodec, type RgbImage } from './rgb.js';

export { crop, luma, newImage, type RgbImage };

const raw = (img: RgbImage) => ({ raw: { width: img.width, height: img.height, channels: 3 as const } });

const fromSharp = ({ data, info }: { data: Buffer; info: sharp.OutputInfo }): RgbImage => ({
  width: info.width,
  height: info.height,
  data: new Uint8Array(data.buffer, data.byteOffset, data.length),
});

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
  return fromSharp({ data, info });
}

/** PNG bytes of an image; sharp writes no metadata by default, so equal pixels give equal bytes. */
export function encodePng(img: RgbImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png({ compressionLevel: 6, adaptiveFiltering: false })
    .toBuffer();
}

export function sha256(buf: Uint8Array): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** The codec of the data pipeline in Node: libjpeg-turbo and Lanczos-3 resampling, through sharp. */
export const sharpCodec: PixelCodec = {
  async jpeg(img, quality) {
    const bytes = await sharp(img.data, raw(img)).jpeg({ quality, chromaSubsampling: '4:2:0' }).toBuffer();
    return fromSharp(await sharp(bytes).raw().toBuffer({ resolveWithObject: true }));
  },
  async resize(img, width, height) {
    if (img.width === width && img.height === height) return img;
    return fromSharp(
      await sharp(img.data, raw(img))
        .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
        .raw()
        .toBuffer({ resolveWithObject: true }),
    );
  },
};
