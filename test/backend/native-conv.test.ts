import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type ConvLayer, discriminatorLayers, generatorLayers } from '../../bench/conv-layers.js';
import { loadAddon } from '../../src/backend/native-addon.js';
import { nativeSkip, randomArray, rng } from './native-helpers.js';

/**
 * Every convolution of the 256x256 models (G, patch16 and patch70 D) at the batch sizes training
 * uses, through the addon exactly as the kernels call it, in each layout mode. The cpu backend
 * would take minutes on these shapes, so the reference is a float64 sum at sampled outputs: every
 * spatial corner (where padding matters) and random interior points.
 */
const TOL = 1e-4;
const SAMPLES = 48;

interface Problem {
  l: ConvLayer;
  n: number;
  x: Float32Array;
  w: Float32Array;
  dy: Float32Array;
}

const params = (p: Problem, mode: number) => {
  const { l, n } = p;
  return [n, l.ih, l.ih, l.ic, l.oh, l.oh, l.oc, l.k, l.k, l.stride, l.stride, l.pad, l.pad, 1, 1, mode];
};

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Sample indices over dims: all corners of the two spatial dims, then random points. */
function samples(dims: number[], spatial: [number, number], seed: number): number[][] {
  const r = rng(seed);
  const pts: number[][] = [];
  for (const hi of [0, dims[spatial[0]]! - 1]) {
    for (const wi of [0, dims[spatial[1]]! - 1]) {
      const p = dims.map((d) => Math.floor(r() * d));
      p[spatial[0]] = hi;
      p[spatial[1]] = wi;
      pts.push(p);
    }
  }
  while (pts.length < SAMPLES) pts.push(dims.map((d) => Math.floor(r() * d)));
  return pts;
}

function checkForward(p: Problem, y: Float32Array) {
  const { l, n, x, w } = p;
  let err = 0;
  for (const [b, oh, ow, oc] of samples([n, l.oh, l.oh, l.oc], [1, 2], 1)) {
    let s = 0;
    for (let kh = 0; kh < l.k; kh++) {
      const ih = oh! * l.stride - l.pad + kh;
      if (ih < 0 || ih >= l.ih) continue;
      for (let kw = 0; kw < l.k; kw++) {
        const iw = ow! * l.stride - l.pad + kw;
        if (iw < 0 || iw >= l.ih) continue;
        const xo = ((b! * l.ih + ih) * l.ih + iw) * l.ic;
        const wo = (kh * l.k + kw) * l.ic * l.oc + oc!;
        for (let ic = 0; ic < l.ic; ic++) s += x[xo + ic]! * w[wo + ic * l.oc]!;
      }
    }
    err = Math.max(err, Math.abs(s - y[((b! * l.oh + oh!) * l.oh + ow!) * l.oc + oc!]!));
  }
  return err / maxAbs(y);
}

function checkBackwardData(p: Problem, dx: Float32Array) {
  const { l, n, w, dy } = p;
  let err = 0;
  for (const [b, ih, iw, ic] of samples([n, l.ih, l.ih, l.ic], [1, 2], 2)) {
    let s = 0;
    for (let kh = 0; kh < l.k; kh++) {
      const t = ih! + l.pad - kh;
      if (t < 0 || t % l.stride !== 0 || t / l.stride >= l.oh) continue;
      const oh = t / l.stride;
      for (let kw = 0; kw < l.k; kw++) {
        const u = iw! + l.pad - kw;
        if (u < 0 || u % l.stride !== 0 || u / l.stride >= l.oh) continue;
        const ow = u / l.stride;
        const dyo = ((b! * l.oh + oh) * l.oh + ow) * l.oc;
        const wo = ((kh * l.k + kw) * l.ic + ic!) * l.oc;
        for (let oc = 0; oc < l.oc; oc++) s += dy[dyo + oc]! * w[wo + oc]!;
      }
    }
    err = Math.max(err, Math.abs(s - dx[((b! * l.ih + ih!) * l.ih + iw!) * l.ic + ic!]!));
  }
  return err / maxAbs(dx);
}

function checkBackwardWeights(p: Problem, dw: Float32Array) {
  const { l, n, x, dy } = p;
  let err = 0;
  for (const [kh, kw, ic, oc] of samples([l.k, l.k, l.ic, l.oc], [0, 1], 3)) {
    let s = 0;
    for (let b = 0; b < n; b++) {
      for (let oh = 0; oh < l.oh; oh++) {
        const ih = oh * l.stride - l.pad + kh!;
        if (ih < 0 || ih >= l.ih) continue;
        for (let ow = 0; ow < l.oh; ow++) {
          const iw = ow * l.stride - l.pad + kw!;
          if (iw < 0 || iw >= l.ih) continue;
          s +=
            x[((b * l.ih + ih) * l.ih + iw) * l.ic + ic!]! * dy[((b * l.oh + oh) * l.oh + ow) * l.oc + oc!]!;
        }
      }
    }
    err = Math.max(err, Math.abs(s - dw[((kh! * l.k + kw!) * l.ic + ic!) * l.oc + oc!]!));
  }
  return err / maxAbs(dw);
}

const LAYERS = [
  ...generatorLayers(256),
  ...discriminatorLayers(256, 'patch16'),
  ...discriminatorLayers(256, 'patch70').map((l) => ({ ...l, name: `70 ${l.name}` })),
];

describe('native convolutions at the 256x256 models shapes (float64 reference at sampled points)', {
  skip: nativeSkip,
}, () => {
  // Every kernel the tuner can pick (so whichever it picks is checked), at batch 1 and 2 on every
  // layer (2: the batch index in every kernel's addressing), and at 16 on the layers with small maps
  // (oneDNN's choice of kernel depends on the batch there; large maps at 16 would take the reference
  // sums too long).
  const runs: Array<{ batch: number; modes: number[]; filter: (l: ConvLayer) => boolean }> = [
    { batch: 1, modes: [1, 2, 3, 4], filter: () => true },
    { batch: 2, modes: [1, 2, 3, 4], filter: () => true },
    { batch: 16, modes: [1, 2, 3, 4], filter: (l) => l.oh <= 8 },
  ];
  for (const run of runs) {
    test(`batch ${run.batch}, layout modes ${run.modes.join(',')}`, () => {
      const addon = loadAddon();
      const worst = { f: 0, d: 0, w: 0 };
      for (const [i, l] of LAYERS.filter(run.filter).entries()) {
        const n = run.batch;
        const p: Problem = {
          l,
          n,
          x: randomArray(n * l.ih * l.ih * l.ic, 1000 + i),
          w: randomArray(l.k * l.k * l.ic * l.oc, 2000 + i),
          dy: randomArray(n * l.oh * l.oh * l.oc, 3000 + i),
        };
        for (const mode of run.modes) {
          const what = `${l.model} ${l.name} batch ${n} mode ${mode}`;
          const dx = new Float32Array(p.x.length);
          addon.convBackwardData(params(p, mode), p.dy, p.w, dx);
          const e = { f: 0, d: checkBackwardData(p, dx), w: 0 };
          // Mode 4 (GEMM + col2im) is a backward-data kernel; the other passes run it as plain (1).
          if (mode !== 4) {
            const y = new Float32Array(p.dy.length);
            addon.convForward(params(p, mode), p.x, p.w, null, y);
            const dw = new Float32Array(p.w.length);
            addon.convBackwardWeights(params(p, mode), p.x, p.dy, dw);
            e.f = checkForward(p, y);
            e.w = checkBackwardWeights(p, dw);
          }
          for (const k of ['f', 'd', 'w'] as const) {
            assert.ok(e[k] < TOL, `${what} ${k}: relative error ${e[k].toExponential(2)}`);
            worst[k] = Math.max(worst[k], e[k]);
          }
        }
      }
      assert.ok(worst.f > 0 || worst.d > 0, 'the check compared something');
    });
  }
});

describe('constant filters (weightsId) in the layouts that read tfjs arrays as they are', {
  skip: nativeSkip,
}, () => {
  test('plain and GEMM + col2im keep no copy and give the per-call results', () => {
    const addon = loadAddon();
    // G's down3 at 32 px: [n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, dh, dw, mode].
    const shape = [1, 8, 8, 64, 4, 4, 128, 4, 4, 2, 2, 1, 1, 1, 1];
    const x = randomArray(8 * 8 * 64, 1);
    const w = randomArray(4 * 4 * 64 * 128, 2);
    const dy = randomArray(4 * 4 * 128, 3);
    const before = addon.convKeptWeightBytes();
    for (const mode of [1, 4]) {
      const run = (id?: number) => {
        const y = new Float32Array(dy.length);
        const dx = new Float32Array(x.length);
        addon.convForward([...shape, mode], x, w, null, y, id);
        addon.convBackwardData([...shape, mode], dy, w, dx, id);
        return { y, dx };
      };
      assert.deepEqual(run(9), run());
      assert.equal(addon.convKeptWeightBytes(), before, `mode ${mode}`);
    }
    addon.convForgetWeights(9);
  });
});
