import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canny } from '../../src/data/canny.js';
import { Rng } from '../../src/data/rng.js';

const opts = { sigma: 1.4, low: 40, high: 100 };

/** A w x w image of `bg` with a filled square [a, b) x [a, b) of `fg`. */
function square(w: number, a: number, b: number, bg: number, fg: number): Float32Array {
  const img = new Float32Array(w * w).fill(bg);
  for (let y = a; y < b; y++) for (let x = a; x < b; x++) img[y * w + x] = fg;
  return img;
}

test('a square gives a thin closed outline on its border and nothing elsewhere', () => {
  const w = 48;
  const e = canny(square(w, 12, 36, 20, 200), w, w, opts);
  let onBorder = 0;
  for (let y = 0; y < w; y++) {
    for (let x = 0; x < w; x++) {
      if (!e[y * w + x]) continue;
      // Every edge pixel lies within a pixel of the square's boundary (between 11.5 and 35.5).
      const dx = Math.min(Math.abs(x - 11.5), Math.abs(x - 35.5));
      const dy = Math.min(Math.abs(y - 11.5), Math.abs(y - 35.5));
      const nearVertical = dx <= 1 && y >= 10 && y <= 37;
      const nearHorizontal = dy <= 1 && x >= 10 && x <= 37;
      assert.ok(nearVertical || nearHorizontal, `stray edge at ${x},${y}`);
      onBorder++;
    }
  }
  // Four sides of 24 px, one pixel thick (corners may be trimmed by the smoothing).
  assert.ok(onBorder >= 80 && onBorder <= 110, `edge pixels ${onBorder}`);
  // Thin: along the middle row, the left side has exactly one edge pixel.
  const row = 24;
  assert.equal([...e.slice(row * w, row * w + 24)].filter(Boolean).length, 1);
});

test('a flat image and a faint step have no edges; hysteresis keeps weak pixels only next to strong ones', () => {
  const w = 32;
  assert.equal(
    canny(new Float32Array(w * w).fill(90), w, w, opts).reduce((s, v) => s + v, 0),
    0,
  );
  // A step of 10 grey levels peaks near 23 on the gradient, under `low`.
  assert.equal(
    canny(square(w, 8, 24, 100, 110), w, w, opts).reduce((s, v) => s + v, 0),
    0,
  );
  // A step of 30 peaks near 68: between the thresholds, so weak, and with no strong seed it is dropped...
  assert.equal(
    canny(square(w, 8, 24, 100, 130), w, w, opts).reduce((s, v) => s + v, 0),
    0,
  );
  // ...but kept when low and high bracket it from below.
  assert.ok(
    canny(square(w, 8, 24, 100, 130), w, w, { sigma: 1.4, low: 20, high: 60 }).reduce((s, v) => s + v, 0) >
      40,
  );
});

test('smoothing suppresses noise: gaussian noise of sigma 10 on a flat image gives few edges', () => {
  const w = 64;
  const r = new Rng(2);
  const img = new Float32Array(w * w).map(() => 128 + 10 * r.normal());
  const n = canny(img, w, w, opts).reduce((s, v) => s + v, 0);
  assert.ok(n < w * w * 0.01, `${n} edge pixels`);
});
