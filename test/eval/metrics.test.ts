import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { setupBackend } from '../../src/backend/index.js';
import { addonPath } from '../../src/backend/native-addon.js';
import { type ImageMetrics, imageMetrics, mean, uint8Metrics } from '../../src/eval/metrics.js';
import { rng } from '../helpers.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'metrics');

/**
 * scikit-image's values for the fixture pairs (64x64 RGB crops of three photos, see
 * test/fixtures/metrics/README.md), printed by test/fixtures/metrics/reference.py with scikit-image
 * 0.19.3 (Debian bookworm's python3-skimage): peak_signal_noise_ratio(data_range=255),
 * structural_similarity(channel_axis=-1, gaussian_weights=True, sigma=1.5,
 * use_sample_covariance=False, data_range=255), and mean |x - y|.
 */
const REFERENCE = [
  { clean: 'seeding-clean', degraded: 'seeding-noise', psnr: 26.613963, ssim: 0.77731785, mae: 9.51318359 },
  { clean: 'sunset-clean', degraded: 'sunset-blur', psnr: 28.263327, ssim: 0.78328037, mae: 6.13671875 },
  {
    clean: 'freespace-clean',
    degraded: 'freespace-jpeg',
    psnr: 21.985726,
    ssim: 0.65089904,
    mae: 15.34895833,
  },
];
const PSNR_TOL = 1e-3;
const SSIM_TOL = 1e-4;
const MAE_TOL = 1e-4;

/** A fixture PNG as raw RGB bytes. */
async function loadPng(name: string): Promise<{ data: Uint8Array; h: number; w: number }> {
  const { data, info } = await sharp(join(FIXTURES, `${name}.png`))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { data: new Uint8Array(data), h: info.height, w: info.width };
}

function randomImage(h: number, w: number, seed: number, lo = 0, hi = 255): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: h * w * 3 }, () => lo + Math.floor(r() * (hi - lo + 1)));
}

/**
 * Independent float64 SSIM on HWC RGB arrays, straight from the definition: the 11x11 window is the
 * outer product of the normalised 1-D Gaussian (sigma 1.5, radius 5), slid over every 'valid'
 * position, population (co)variances, mean over the map, then over the channels.
 */
function ssimReference(x: ArrayLike<number>, y: ArrayLike<number>, h: number, w: number): number {
  const g = Array.from({ length: 11 }, (_, i) => Math.exp(-((i - 5) ** 2) / (2 * 1.5 * 1.5)));
  const s = g.reduce((a, b) => a + b, 0);
  const g1 = g.map((v) => v / s);
  const [c1, c2] = [(0.01 * 255) ** 2, (0.03 * 255) ** 2];
  let total = 0;
  for (let c = 0; c < 3; c++) {
    let sum = 0;
    for (let i = 0; i + 11 <= h; i++) {
      for (let j = 0; j + 11 <= w; j++) {
        let [mx, my, mxx, myy, mxy] = [0, 0, 0, 0, 0];
        for (let a = 0; a < 11; a++) {
          for (let b = 0; b < 11; b++) {
            const k = g1[a]! * g1[b]!;
            const idx = ((i + a) * w + (j + b)) * 3 + c;
            const [xv, yv] = [x[idx]!, y[idx]!];
            mx += k * xv;
            my += k * yv;
            mxx += k * xv * xv;
            myy += k * yv * yv;
            mxy += k * xv * yv;
          }
        }
        const [vx, vy, vxy] = [mxx - mx * mx, myy - my * my, mxy - mx * my];
        sum += ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      }
    }
    total += sum / ((h - 10) * (w - 10));
  }
  return total / 3;
}

function assertClose(got: number, want: number, tol: number, what: string): void {
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} (tolerance ${tol})`);
}

function assertSameMetrics(got: ImageMetrics, want: ImageMetrics, tol: number, what: string): void {
  for (const k of ['psnr', 'ssim', 'mae'] as const) {
    assert.equal(got[k].length, want[k].length, `${what} ${k} length`);
    got[k].forEach((v, i) => {
      assertClose(v, want[k][i]!, tol, `${what} ${k}[${i}]`);
    });
  }
}

/** Checks that `f` leaves no tensor behind (also when it throws). */
async function noLeak<T>(f: () => Promise<T>): Promise<T> {
  const before = tf.memory().numTensors;
  try {
    return await f();
  } finally {
    assert.equal(tf.memory().numTensors, before, 'tensors left behind');
  }
}

const nativeSkip = addonPath() == null ? 'native addon not built (npm run build:native)' : false;
const BACKENDS = [
  { name: 'cpu', skip: false },
  { name: 'wasm', skip: false },
  { name: 'native', skip: nativeSkip },
] as const;

/** Each backend's metrics of the three fixture pairs, batched, to compare the backends at the end. */
const byBackend = new Map<string, ImageMetrics>();

let pairs: { clean: Uint8Array; degraded: Uint8Array; h: number; w: number }[] = [];

before(async () => {
  pairs = await Promise.all(
    REFERENCE.map(async (r) => {
      const [c, d] = [await loadPng(r.clean), await loadPng(r.degraded)];
      assert.deepEqual([d.h, d.w], [c.h, c.w]);
      return { clean: c.data, degraded: d.data, h: c.h, w: c.w };
    }),
  );
});

/** Fixture pairs as [n, h, w, 3] int32 batches (all fixtures are 64x64). */
function fixtureBatch(which: number[]): [tf.Tensor4D, tf.Tensor4D] {
  const { h, w } = pairs[0]!;
  const stack = (k: 'clean' | 'degraded') =>
    tf.tensor4d(
      Int32Array.from(which.flatMap((i) => Array.from(pairs[i]![k]))),
      [which.length, h, w, 3],
      'int32',
    );
  return [stack('clean'), stack('degraded')];
}

for (const backend of BACKENDS) {
  describe(`image metrics on the ${backend.name} backend`, { skip: backend.skip }, () => {
    before(async () => {
      const { name } = await setupBackend(backend.name);
      assert.equal(name, backend.name);
      assert.equal(tf.getBackend(), backend.name);
    });

    it('identical images: PSNR +Infinity, SSIM 1, MAE 0; a constant offset of 10: 28.13 dB, MAE 10', async () => {
      const [h, w] = [24, 20];
      const a = randomImage(h, w, 1, 0, 245);
      const x = tf.tensor4d(a, [1, h, w, 3], 'int32');
      const same = await noLeak(() => uint8Metrics(x, x));
      assert.equal(same.psnr[0], Number.POSITIVE_INFINITY);
      assertClose(same.ssim[0]!, 1, 1e-6, 'ssim');
      assert.equal(same.mae[0], 0);
      const y = tf.tensor4d(
        a.map((v) => v + 10),
        [1, h, w, 3],
        'int32',
      );
      const shifted = await noLeak(() => uint8Metrics(x, y));
      assertClose(shifted.psnr[0]!, 28.13, 0.01, 'psnr'); // 10 log10(255^2 / 100) = 28.1308
      assertClose(shifted.psnr[0]!, 10 * Math.log10(255 ** 2 / 100), 1e-4, 'psnr');
      assertClose(shifted.mae[0]!, 10, 1e-6, 'mae');
      assertClose(shifted.ssim[0]!, ssimReference(a, y.dataSync(), h, w), 1e-5, 'ssim');
      tf.dispose([x, y]);
    });

    it("matches scikit-image's PSNR, SSIM and MAE on real photo pairs (noise, blur, JPEG)", async () => {
      for (const [i, ref] of REFERENCE.entries()) {
        const [x, y] = fixtureBatch([i]);
        const m = await noLeak(() => uint8Metrics(x, y));
        assertClose(m.psnr[0]!, ref.psnr, PSNR_TOL, `${ref.degraded} psnr`);
        assertClose(m.ssim[0]!, ref.ssim, SSIM_TOL, `${ref.degraded} ssim`);
        assertClose(m.mae[0]!, ref.mae, MAE_TOL, `${ref.degraded} mae`);
        // Symmetric in its arguments.
        assertSameMetrics(await noLeak(() => uint8Metrics(y, x)), m, 1e-6, `${ref.degraded} swapped`);
        tf.dispose([x, y]);
      }
    });

    it('a batch of the three pairs gives the per-image values of one pair at a time', async () => {
      const [x, y] = fixtureBatch([0, 1, 2]);
      const batched = await noLeak(() => uint8Metrics(x, y));
      byBackend.set(backend.name, batched);
      const single: ImageMetrics = { psnr: [], ssim: [], mae: [] };
      for (let i = 0; i < 3; i++) {
        const [xi, yi] = fixtureBatch([i]);
        const m = await uint8Metrics(xi, yi);
        single.psnr.push(m.psnr[0]!);
        single.ssim.push(m.ssim[0]!);
        single.mae.push(m.mae[0]!);
        tf.dispose([xi, yi]);
      }
      assertSameMetrics(batched, single, 1e-6, 'batched vs single');
      // float32 input gives the same as int32.
      const [xf, yf] = [tf.cast(x, 'float32'), tf.cast(y, 'float32')] as tf.Tensor4D[];
      assertSameMetrics(await noLeak(() => uint8Metrics(xf!, yf!)), batched, 1e-6, 'float32 vs int32');
      tf.dispose([x, y, xf!, yf!]);
    });

    it('imageMetrics on [-1, 1] images equals uint8Metrics on their uint8 versions', async () => {
      const [x, y] = fixtureBatch([0, 1, 2]);
      const want = await uint8Metrics(x, y);
      // [-1, 1] values that round back to the same bytes ((v+1)*127.5 + 0.5, floored), with a jitter
      // of up to 0.45 of a level either way; and out-of-range values that clip to 0 and 255.
      const r = rng(7);
      const toUnit = (t: tf.Tensor4D) =>
        tf.tensor4d(
          Float32Array.from(t.dataSync(), (v) => {
            if (v === 0 && r() < 0.1) return -1.2;
            if (v === 255 && r() < 0.1) return 1.2;
            return (v + (r() - 0.5) * 0.9) / 127.5 - 1;
          }),
          t.shape,
        );
      const [ux, uy] = [toUnit(x), toUnit(y)];
      const got = await noLeak(() => imageMetrics(ux, uy));
      assert.deepEqual(got, want);
      tf.dispose([x, y, ux, uy]);
    });

    it("SSIM's 'valid' window on small and non-square images matches a float64 reference", async () => {
      for (const [h, w, seed] of [
        [11, 11, 3],
        [13, 17, 4],
        [19, 12, 5],
      ] as const) {
        const [a, b] = [randomImage(h, w, seed), randomImage(h, w, seed + 100)];
        // A correlated pair: b halfway towards a.
        const c = b.map((v, i) => Math.round((v + a[i]!) / 2));
        const [x, y] = [tf.tensor4d(a, [1, h, w, 3], 'int32'), tf.tensor4d(c, [1, h, w, 3], 'int32')];
        const m = await noLeak(() => uint8Metrics(x, y));
        assertClose(m.ssim[0]!, ssimReference(a, c, h, w), 1e-5, `${h}x${w} ssim`);
        let [se, ae] = [0, 0];
        a.forEach((v, i) => {
          se += (v - c[i]!) ** 2;
          ae += Math.abs(v - c[i]!);
        });
        assertClose(m.psnr[0]!, 10 * Math.log10(255 ** 2 / (se / a.length)), 1e-4, `${h}x${w} psnr`);
        assertClose(m.mae[0]!, ae / a.length, 1e-5, `${h}x${w} mae`);
        tf.dispose([x, y]);
      }
    });

    it('rejects mismatched shapes, images under 11x11 and non-RGB images, leaving no tensors', async () => {
      const t = (shape: [number, number, number, number]) => tf.zeros(shape, 'int32') as tf.Tensor4D;
      const cases: [tf.Tensor4D, tf.Tensor4D, RegExp][] = [
        [t([1, 16, 16, 3]), t([1, 16, 17, 3]), /one shape.*\[1,16,16,3\].*\[1,16,17,3\]/],
        [t([2, 16, 16, 3]), t([1, 16, 16, 3]), /one shape/],
        [t([1, 10, 16, 3]), t([1, 10, 16, 3]), /at least 11x11.*16x10/],
        [t([1, 16, 10, 3]), t([1, 16, 10, 3]), /at least 11x11/],
        [t([1, 16, 16, 1]), t([1, 16, 16, 1]), /3 channels/],
      ];
      for (const [x, y, message] of cases) {
        await noLeak(() => assert.rejects(() => uint8Metrics(x, y), message));
        await noLeak(() => assert.rejects(() => imageMetrics(x, y), message));
        tf.dispose([x, y]);
      }
      // The messages are one line.
      const [x, y] = [t([1, 8, 8, 3]), t([1, 8, 9, 3])];
      await assert.rejects(
        () => uint8Metrics(x, y),
        (e: Error) => !e.message.includes('\n'),
      );
      tf.dispose([x, y]);
    });
  });
}

describe('image metrics across backends', () => {
  after(() => {
    byBackend.clear();
  });
  it('every backend gives the same numbers as cpu', async () => {
    const cpu = byBackend.get('cpu');
    assert.ok(cpu, 'cpu results');
    assert.ok(byBackend.has('wasm'), 'wasm results');
    for (const [name, m] of byBackend) assertSameMetrics(m, cpu, 1e-5, `${name} vs cpu`);
  });
});

describe('mean', () => {
  it('averages, Infinity when any value is', async () => {
    assert.equal(mean([1, 2, 6]), 3);
    assert.equal(mean([30, Number.POSITIVE_INFINITY, 20]), Number.POSITIVE_INFINITY);
    assert.equal(mean([0.5]), 0.5);
  });
});
