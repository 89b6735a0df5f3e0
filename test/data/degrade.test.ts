import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import {
  applyDegradation,
  parseDegradation,
  resolveDegradation,
  TASK_DEGRADATIONS,
} from '../../src/data/degrade.js';
import { gaussianKernel } from '../../src/data/filters.js';
import { newImage, type RgbImage } from '../../src/data/image.js';
import { Rng } from '../../src/data/rng.js';
import { UserError } from '../../src/util/log.js';
import { patternPixels } from './helpers.js';

function grey(size: number, v: number): RgbImage {
  const img = newImage(size, size);
  img.data.fill(v);
  return img;
}

function pattern(size: number): RgbImage {
  return { width: size, height: size, data: new Uint8Array(patternPixels(size, size, 3)) };
}

function diffStats(a: RgbImage, b: RgbImage): { mean: number; sigma: number; psnr: number } {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    s += d;
    s2 += d * d;
  }
  const n = a.data.length;
  const mse = s2 / n;
  return { mean: s / n, sigma: Math.sqrt(mse - (s / n) ** 2), psnr: 10 * Math.log10((255 * 255) / mse) };
}

const run = (spec: string, img: RgbImage, seed = 1): Promise<RgbImage> =>
  applyDegradation(parseDegradation(spec), img, new Rng(seed));

test('gaussian:25 on mid-grey: measured sigma within 5% of 25 and PSNR near 20.17 dB', async () => {
  const clean = grey(96, 128);
  const noisy = await run('gaussian:25', clean);
  const { mean, sigma, psnr } = diffStats(noisy, clean);
  assert.ok(Math.abs(sigma - 25) < 25 * 0.05, `sigma ${sigma}`);
  assert.ok(Math.abs(mean) < 1, `mean ${mean}`);
  // 20 log10(255 / 25) = 20.17 dB; rounding to integers adds 1/12 to the variance, a negligible amount.
  assert.ok(Math.abs(psnr - 20 * Math.log10(255 / 25)) < 0.25, `psnr ${psnr}`);
  assert.ok(noisy.data.every((v) => Number.isInteger(v) && v >= 0 && v <= 255));
});

test('gaussian noise is clipped to [0, 255] and seeded', async () => {
  const dark = await run('gaussian:50', grey(32, 5));
  assert.ok(dark.data.some((v) => v === 0));
  assert.deepEqual(await run('gaussian:10', pattern(16), 4), await run('gaussian:10', pattern(16), 4));
  assert.notDeepEqual(await run('gaussian:10', pattern(16), 4), await run('gaussian:10', pattern(16), 5));
});

test('gaussian:LOW-HIGH draws one sigma per image from [LOW, HIGH]; a fixed sigma draws as before', async () => {
  const clean = grey(64, 128);
  const sigmas = [];
  for (let seed = 1; seed <= 12; seed++)
    sigmas.push(diffStats(await run('gaussian:5-50', clean, seed), clean).sigma);
  // Measured over 12k values: within 5% of the drawn sigma, so every one lies in [4.75, 52.5].
  assert.ok(
    sigmas.every((s) => s > 4.75 && s < 52.5),
    sigmas.join(', '),
  );
  assert.ok(
    Math.max(...sigmas) - Math.min(...sigmas) > 15,
    `one sigma per image, spread: ${sigmas.join(', ')}`,
  );
  assert.equal(parseDegradation('gaussian:5-50')[0]!.spec, 'gaussian:5-50');
  // The fixed sigma's draw is unchanged: gaussian:10 is the normal stream times 10, nothing drawn before.
  const rng = new Rng(3);
  const want = pattern(8).data.map((v) => Math.min(255, Math.max(0, Math.round(v + 10 * rng.normal()))));
  assert.deepEqual((await run('gaussian:10', pattern(8), 3)).data, want);
  for (const bad of ['gaussian:50-5', 'gaussian:5-5']) {
    assert.throws(() => parseDegradation(bad), /a sigma range LOW-HIGH needs LOW < HIGH/);
  }
});

test('poisson:PEAK has variance (255/PEAK)^2 * lambda around the clean value', async () => {
  for (const peak of [30, 1000]) {
    const clean = grey(96, 128);
    const { mean, sigma } = diffStats(await run(`poisson:${peak}`, clean), clean);
    const lambda = (128 / 255) * peak;
    const expected = (255 / peak) * Math.sqrt(lambda);
    assert.ok(Math.abs(sigma / expected - 1) < 0.05, `peak ${peak}: sigma ${sigma}, expected ${expected}`);
    assert.ok(Math.abs(mean) < 1, `peak ${peak}: mean ${mean}`);
  }
});

test('saltpepper:P turns a fraction P of pixels black or white, all channels together', async () => {
  const clean = grey(128, 128);
  const out = await run('saltpepper:0.1', clean);
  let black = 0;
  let white = 0;
  const n = 128 * 128;
  for (let i = 0; i < n; i++) {
    const px = [...out.data.subarray(3 * i, 3 * i + 3)];
    if (px.every((v) => v === 0)) black++;
    else if (px.every((v) => v === 255)) white++;
    else assert.deepEqual(px, [128, 128, 128]);
  }
  const frac = (black + white) / n;
  assert.ok(Math.abs(frac - 0.1) < 0.01, `fraction ${frac}`);
  assert.ok(Math.abs(black / (black + white) - 0.5) < 0.05, `black share ${black / (black + white)}`);
});

test('jpeg:Q loses more at lower quality, and is deterministic', async () => {
  const clean = pattern(64);
  const q90 = await run('jpeg:90', clean);
  const q10 = await run('jpeg:10', clean);
  const p90 = diffStats(q90, clean).psnr;
  const p10 = diffStats(q10, clean).psnr;
  assert.ok(Number.isFinite(p90) && p90 > p10 + 3, `psnr q90 ${p90}, q10 ${p10}`);
  assert.deepEqual(await run('jpeg:10', clean), q10);
});

test('jpeg:Q in Node is sharp at quality Q with 4:2:0 chroma, decoded back (as before the codec was injected)', async () => {
  const clean = pattern(48);
  const raw = { width: 48, height: 48, channels: 3 as const };
  const bytes = await sharp(clean.data, { raw }).jpeg({ quality: 30, chromaSubsampling: '4:2:0' }).toBuffer();
  const direct = new Uint8Array(await sharp(bytes).raw().toBuffer());
  assert.deepEqual((await run('jpeg:30', clean)).data, direct);
});

test('blur:SIGMA shrinks white noise by the kernel factor and keeps the mean', async () => {
  const r = new Rng(6);
  const size = 96;
  const clean = newImage(size, size);
  for (let i = 0; i < clean.data.length; i++) clean.data[i] = r.int(256);
  const out = await run('blur:2', clean);
  const std = (img: RgbImage): [number, number] => {
    const m = img.data.reduce((s, v) => s + v, 0) / img.data.length;
    return [m, Math.sqrt(img.data.reduce((s, v) => s + (v - m) ** 2, 0) / img.data.length)];
  };
  const [m0, s0] = std(clean);
  const [m1, s1] = std(out);
  // A separable kernel k scales the std of white noise by sum(k^2) (one factor sqrt(sum k^2) per axis).
  const k = gaussianKernel(2);
  const factor = k.reduce((s, v) => s + v * v, 0);
  assert.ok(Math.abs(s1 / s0 / factor - 1) < 0.1, `ratio ${s1 / s0}, expected ${factor}`);
  assert.ok(Math.abs(m1 - m0) < 1);
});

test('gray gives equal channels holding Rec. 601 luma', async () => {
  const clean = pattern(16);
  const out = await run('gray', clean);
  for (let i = 0; i < 16 * 16; i++) {
    const [r, g, b] = clean.data.subarray(3 * i, 3 * i + 3);
    const y = 0.299 * r! + 0.587 * g! + 0.114 * b!;
    assert.equal(out.data[3 * i], out.data[3 * i + 1]);
    assert.equal(out.data[3 * i], out.data[3 * i + 2]);
    assert.ok(Math.abs(out.data[3 * i]! - y) <= 0.5);
  }
});

test('edges draws Canny edges black on white', async () => {
  const img = grey(32, 30);
  for (let y = 8; y < 24; y++)
    for (let x = 8; x < 24; x++) img.data.fill(220, (y * 32 + x) * 3, (y * 32 + x) * 3 + 3);
  const out = await run('edges', img);
  const values = new Set(out.data);
  assert.deepEqual(
    [...values].sort((a, b) => a - b),
    [0, 255],
  );
  const black = out.data.filter((v) => v === 0).length / 3;
  assert.ok(black > 40 && black < 80, `${black} edge pixels`);
  assert.equal(out.data[(2 * 32 + 2) * 3], 255);
});

test('steps joined by + apply left to right with one random stream', async () => {
  const clean = pattern(32);
  const rng = new Rng(8);
  const manual = await applyDegradation(
    parseDegradation('gaussian:10'),
    await applyDegradation(parseDegradation('blur:1'), clean, rng),
    rng,
  );
  assert.deepEqual(await run('blur:1+gaussian:10', clean, 8), manual);
  assert.notDeepEqual(await run('gaussian:10+blur:1', clean, 8), manual);
  assert.equal(
    parseDegradation(' blur:1 + gray ')
      .map((s) => s.spec)
      .join('+'),
    'blur:1+gray',
  );
  assert.equal(
    parseDegradation('edges')
      .map((s) => s.spec)
      .join('+'),
    'edges:1.4,40,100',
  );
});

test('bad specs are UserErrors that name the problem', () => {
  const cases: [string, RegExp][] = [
    ['sharpen:2', /unknown degradation 'sharpen'.*gaussian/],
    ['gaussian', /'gaussian' needs 1 numeric argument.*gaussian:25/],
    ['gaussian:abc', /'gaussian:abc' needs 1 numeric/],
    ['gaussian:-3', /sigma must be >= 0/],
    ['jpeg:0', /quality must be an integer in 1\.\.100/],
    ['jpeg:50.5', /quality must be an integer/],
    ['saltpepper:1.5', /probability must be in \[0, 1\]/],
    ['poisson:0', /peak must be > 0/],
    ['blur:0', /sigma must be in/],
    ['gray:3', /'gray:3' needs 0 numeric/],
    ['edges:1,50,10', /low <= high/],
    ['blur:1++gray', /empty degradation/],
    ['', /empty degradation/],
  ];
  for (const [spec, msg] of cases) {
    assert.throws(
      () => parseDegradation(spec),
      (e: Error) => e instanceof UserError && msg.test(e.message),
      spec,
    );
  }
});

test('tasks pick default degradations; an explicit --degrade wins', () => {
  assert.equal(resolveDegradation('denoise', undefined), 'gaussian:25');
  assert.equal(resolveDegradation('colorize', undefined), 'gray');
  assert.equal(resolveDegradation('denoise', 'jpeg:30'), 'jpeg:30');
  assert.equal(resolveDegradation(undefined, undefined), undefined);
  assert.throws(() => resolveDegradation('paint', undefined), /unknown task 'paint'/);
  for (const spec of Object.values(TASK_DEGRADATIONS)) assert.ok(parseDegradation(spec).length > 0);
});
