import assert from 'node:assert/strict';
import { test } from 'node:test';
import { blurPlanes, gaussianKernel } from '../../src/data/filters.js';

test('gaussianKernel is normalised, symmetric and has the requested spread', () => {
  const k = gaussianKernel(2);
  const r = (k.length - 1) / 2;
  assert.equal(r, 6);
  assert.ok(Math.abs(k.reduce((s, v) => s + v, 0) - 1) < 1e-12);
  let variance = 0;
  for (let i = -r; i <= r; i++) {
    assert.ok(Math.abs(k[i + r]! - k[r - i]!) < 1e-15);
    variance += k[i + r]! * i * i;
  }
  // Truncation at 3 sigma trims the variance by about 3%.
  assert.ok(Math.abs(Math.sqrt(variance) - 2) < 0.08, `std ${Math.sqrt(variance)}`);
});

test('blurPlanes keeps a flat image flat and spreads a step like the Gaussian CDF', () => {
  const w = 40;
  const h = 3;
  const flat = new Float32Array(w * h * 2).fill(77);
  for (const v of blurPlanes(flat, w, h, 2, 1.5)) assert.ok(Math.abs(v - 77) < 1e-4);
  const step = new Float32Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 20; x < w; x++) step[y * w + x] = 100;
  const out = blurPlanes(step, w, h, 1, 2);
  // The step sits between pixels 19 and 20, so pixel 20 is half a pixel past it: Phi(0.25) = 0.599.
  assert.ok(Math.abs(out[w + 20]! - 59.9) < 1, `${out[w + 20]}`);
  assert.ok(Math.abs(out[w + 19]! - 40.1) < 1, `${out[w + 19]}`);
  // Two and a half sigma past the edge: Phi(1.25) = 0.894.
  assert.ok(Math.abs(out[w + 22]! - 89.4) < 1.5, `${out[w + 22]}`);
});
