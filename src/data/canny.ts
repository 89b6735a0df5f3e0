import { blurPlanes } from './filters.js';

export interface CannyOptions {
  /** Gaussian pre-smoothing. */
  sigma: number;
  /** Hysteresis thresholds on the Sobel gradient magnitude (L2) of the smoothed [0,255] luma. */
  low: number;
  high: number;
}

/**
 * Canny's edge detector: Gaussian smoothing, Sobel gradients, non-maximum suppression along the
 * gradient direction (quantised to 4 directions), then hysteresis: pixels above `high` seed edges
 * that grow through 8-connected pixels above `low`. For scale: after smoothing with sigma, a clean step
 * of height h peaks at about 8h / (sigma * sqrt(2 pi)) — 2.3h at sigma 1.4 — so the defaults 40/100
 * keep steps of roughly 18/44 grey levels. Returns 1 on edge pixels, 0 elsewhere.
 */
export function canny(gray: Float32Array, w: number, h: number, opts: CannyOptions): Uint8Array {
  const s = blurPlanes(gray, w, h, 1, opts.sigma);
  const at = (x: number, y: number): number =>
    s[Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))]!;
  const mag = new Float32Array(w * h);
  const dir = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const gx =
        at(x + 1, y - 1) +
        2 * at(x + 1, y) +
        at(x + 1, y + 1) -
        at(x - 1, y - 1) -
        2 * at(x - 1, y) -
        at(x - 1, y + 1);
      const gy =
        at(x - 1, y + 1) +
        2 * at(x, y + 1) +
        at(x + 1, y + 1) -
        at(x - 1, y - 1) -
        2 * at(x, y - 1) -
        at(x + 1, y - 1);
      mag[y * w + x] = Math.hypot(gx, gy);
      // Angle folded into [0, 180) and binned: 0 = horizontal gradient, 1 = 45°, 2 = vertical, 3 = 135°.
      let a = (Math.atan2(gy, gx) * 180) / Math.PI;
      if (a < 0) a += 180;
      dir[y * w + x] = a < 22.5 || a >= 157.5 ? 0 : a < 67.5 ? 1 : a < 112.5 ? 2 : 3;
    }
  }
  const OFFSETS: [number, number][] = [
    [1, 0],
    [1, 1],
    [0, 1],
    [-1, 1],
  ];
  const m = (x: number, y: number): number => (x < 0 || y < 0 || x >= w || y >= h ? 0 : mag[y * w + x]!);
  // 2 = strong, 1 = weak candidate, 0 = suppressed.
  const cls = new Uint8Array(w * h);
  const stack: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = mag[i]!;
      if (v < opts.low) continue;
      const [dx, dy] = OFFSETS[dir[i]!]!;
      // Ties go to one side only (>= vs >) so a plateau keeps a 1-pixel line instead of none or two.
      if (v < m(x + dx, y + dy) || v <= m(x - dx, y - dy)) continue;
      if (v >= opts.high) {
        cls[i] = 2;
        stack.push(i);
      } else {
        cls[i] = 1;
      }
    }
  }
  while (stack.length) {
    const i = stack.pop()!;
    const x = i % w;
    const y = (i - x) / w;
    for (let dy = -1; dy <= 1; dy++) {
      for (let dx = -1; dx <= 1; dx++) {
        const xx = x + dx;
        const yy = y + dy;
        if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
        const j = yy * w + xx;
        if (cls[j] === 1) {
          cls[j] = 2;
          stack.push(j);
        }
      }
    }
  }
  const out = new Uint8Array(w * h);
  for (let i = 0; i < out.length; i++) out[i] = cls[i] === 2 ? 1 : 0;
  return out;
}
