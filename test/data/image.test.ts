import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { crop, decodeRgb, encodePng, luma } from '../../src/data/image.js';
import { patternPixels } from './helpers.js';

const raw = (w: number, h: number, channels: 1 | 3 | 4 = 3) => ({ raw: { width: w, height: h, channels } });

test('EXIF orientation is applied: a 40x20 JPEG tagged "rotate 90" decodes as 20x40, turned clockwise', async () => {
  const pixels = patternPixels(40, 20);
  const jpeg = await sharp(pixels, raw(40, 20))
    .jpeg({ quality: 100 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const img = await decodeRgb(jpeg);
  assert.deepEqual([img.width, img.height], [20, 40]);
  // Clockwise: the source's bottom-left pixel (x 0, y 19) lands at the top-left.
  const src = [...pixels.subarray((19 * 40 + 0) * 3, (19 * 40 + 0) * 3 + 3)];
  const got = [...img.data.subarray(0, 3)];
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(got[c]! - src[c]!) < 12, `${got} vs ${src}`);
});

test('alpha is composited on white, grayscale becomes three equal channels, 16-bit becomes 8-bit', async () => {
  const rgba = Buffer.alloc(4 * 4 * 4);
  for (let i = 0; i < 16; i++) rgba.set(i < 8 ? [255, 0, 0, 0] : [0, 0, 255, 255], i * 4);
  const a = await decodeRgb(
    await sharp(rgba, raw(4, 4, 4))
      .png()
      .toBuffer(),
  );
  assert.deepEqual([...a.data.subarray(0, 3)], [255, 255, 255]);
  assert.deepEqual([...a.data.subarray(45, 48)], [0, 0, 255]);

  const grayPng = await sharp(Buffer.alloc(64, 90), raw(8, 8, 1))
    .toColourspace('b-w')
    .png()
    .toBuffer();
  assert.equal((await sharp(grayPng).metadata()).channels, 1);
  const g = await decodeRgb(grayPng);
  assert.equal(g.data.length, 8 * 8 * 3);
  assert.ok(g.data.every((v) => v === 90));

  const p16 = await sharp(patternPixels(8, 8), raw(8, 8)).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(p16).metadata()).depth, 'ushort');
  const d = await decodeRgb(p16);
  const ref = patternPixels(8, 8);
  for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(d.data[i]! - ref[i]!) <= 1);
});

test('truncated and non-image data are rejected', async () => {
  const png = await sharp(patternPixels(32, 32), raw(32, 32)).png().toBuffer();
  await assert.rejects(decodeRgb(png.subarray(0, png.length / 2)));
  await assert.rejects(decodeRgb(Buffer.from('hello, not an image')));
});

test('encodePng is lossless and byte-stable', async () => {
  const img = { width: 16, height: 8, data: new Uint8Array(patternPixels(16, 8, 2)) };
  const a = await encodePng(img);
  assert.deepEqual(await encodePng(img), a);
  assert.deepEqual((await decodeRgb(a)).data, img.data);
});

test('crop and luma', () => {
  const img = { width: 5, height: 4, data: new Uint8Array(patternPixels(5, 4)) };
  const c = crop(img, 1, 2, 3, 2);
  assert.deepEqual([c.width, c.height], [3, 2]);
  assert.deepEqual([...c.data.subarray(0, 3)], [...img.data.subarray((2 * 5 + 1) * 3, (2 * 5 + 1) * 3 + 3)]);
  assert.deepEqual(
    [...c.data.subarray(15, 18)],
    [...img.data.subarray((3 * 5 + 3) * 3, (3 * 5 + 3) * 3 + 3)],
  );
  const y = luma({ width: 1, height: 1, data: new Uint8Array([255, 0, 0]) });
  assert.ok(Math.abs(y[0]! - 76.245) < 1e-3);
});
