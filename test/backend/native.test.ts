import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { adamKernelFor, tfjsAdamKernel } from '../../src/backend/adam-kernel.js';
import { loadAddon, NativeBackend } from '../../src/backend/native.js';
import { setConvLayoutMode } from '../../src/backend/native-kernels.js';
import { srcModule, TREE_NODE_FLAGS } from '../helpers.js';
import { type ConvCase, conv } from './conv-cases.js';
import { assertSame, nativeSkip, randomArray, relErr, setupNative, sizeOf } from './native-helpers.js';

/** Max abs error over max abs reference: float32 sums in another order stay near 1e-6. */
const CONV_TOL = 1e-4;
/** Element-wise maths: the cpu backend computes in double and rounds, the addon in float. */
const ELT_TOL = 1e-6;

/**
 * Each kernel/stride/pad class of the models, at small maps and reduced channels (the full-size
 * shapes are checked in native-conv.test.ts against a float64 reference), batch 1 to 4.
 */
const CONVS: ConvCase[] = [
  conv('G down 4x4/2 same 3->16', [1, 16, 16, 3], [4, 4, 3, 16], 2, 'same'),
  conv('G down 4x4/2 same 3->64 b4', [4, 8, 8, 3], [4, 4, 3, 64], 2, 'same'),
  conv('G down 32->48 b2', [2, 8, 8, 32], [4, 4, 32, 48], 2, 'same'),
  conv('G down 2x2->1x1', [2, 2, 2, 64], [4, 4, 64, 32], 2, 'same'),
  conv('G down 1x1 map', [1, 1, 1, 16], [4, 4, 16, 8], 2, 'same'),
  conv('D16 pad+3x3/2 valid 6->16 b3', [3, 18, 18, 6], [3, 3, 6, 16], 2, 'valid'),
  conv('D16 3x3/2 valid ->1x1', [1, 4, 4, 32], [3, 3, 32, 64], 2, 'valid'),
  conv('D16 head 3x3/1 same ->1', [2, 4, 4, 64], [3, 3, 64, 1], 1, 'same'),
  conv('D70 4x4/1 valid', [1, 7, 7, 32], [4, 4, 32, 16], 1, 'valid'),
  conv('D70 head 4x4/1 valid ->1 b2', [2, 5, 5, 64], [4, 4, 64, 1], 1, 'valid'),
  conv('odd size same', [2, 9, 7, 3], [4, 4, 3, 5], 2, 'same'),
  conv('strides 3x2', [1, 11, 9, 2], [3, 2, 2, 3], [3, 2], 'valid'),
  conv('explicit pads', [1, 11, 9, 2], [3, 3, 2, 3], 2, [
    [0, 0],
    [2, 1],
    [0, 3],
    [0, 0],
  ]),
  conv('numeric pad', [1, 6, 6, 4], [3, 3, 4, 8], 1, 1),
];

/**
 * 0 = per-layer tuned (what the models run), 1 plain NHWC, 2 blocked, 3 plain activations +
 * blocked weights, 4 GEMM + col2im backward-data (plain for the other passes).
 */
const MODES = [0, 1, 2, 3, 4];

function convOutShape(c: ConvCase): number[] {
  const info = tf.backend_util.computeConv2DInfo(
    c.x as [number, number, number, number],
    c.filter as [number, number, number, number],
    c.strides,
    1,
    c.pad as 'same',
  );
  return info.outShape;
}

describe('native backend kernels vs cpu', { skip: nativeSkip }, () => {
  before(setupNative);
  after(() => setConvLayoutMode(0));

  test('registers as a tfjs backend with the cpu kernels it does not replace', async () => {
    assert.ok(await tf.setBackend('native'));
    assert.ok(tf.backend() instanceof NativeBackend);
    for (const k of [
      'Conv2D',
      'Conv2DBackpropInput',
      'Conv2DBackpropFilter',
      'Transpose',
      'Cast',
      'Reshape',
    ]) {
      assert.ok(tf.getKernel(k, 'native'), `${k} registered`);
    }
    assert.notEqual(adamKernelFor('native'), tfjsAdamKernel);
  });

  for (const mode of MODES) {
    test(`Conv2D, FusedConv2D, Conv2DBackpropInput, Conv2DBackpropFilter (layout mode ${mode})`, async () => {
      setConvLayoutMode(mode);
      for (const [i, c] of CONVS.entries()) {
        const xv = randomArray(sizeOf(c.x), 10 + i);
        const wv = randomArray(sizeOf(c.filter), 20 + i);
        const oshape = convOutShape(c);
        const dyv = randomArray(sizeOf(oshape), 30 + i);
        const bv = randomArray(c.filter[3]!, 40 + i);
        await assertSame(
          () => {
            const x = tf.tensor4d(xv, c.x as [number, number, number, number]);
            const w = tf.tensor4d(wv, c.filter as [number, number, number, number]);
            const dy = tf.tensor4d(dyv, oshape as [number, number, number, number]);
            const b = tf.tensor1d(bv);
            const pad = c.pad as 'same';
            return [
              tf.conv2d(x, w, c.strides, pad),
              tf.fused.conv2d({ x, filter: w, strides: c.strides, pad, bias: b }),
              tf.fused.conv2d({
                x,
                filter: w,
                strides: c.strides,
                pad,
                bias: b,
                activation: 'leakyrelu',
                leakyreluAlpha: 0.2,
              }),
              tf.fused.conv2d({ x, filter: w, strides: c.strides, pad, activation: 'relu' }),
              // conv2dTranspose is Conv2DBackpropInput with the transposed conv's input as dy.
              tf.conv2dTranspose(dy, w, c.x as [number, number, number, number], c.strides, pad),
              tf
                .engine()
                .runKernel(
                  'Conv2DBackpropFilter',
                  { x, dy },
                  { strides: c.strides, pad, dataFormat: 'NHWC', filterShape: c.filter },
                ) as tf.Tensor,
            ];
          },
          CONV_TOL,
          `${c.name} (mode ${mode})`,
        );
      }
    });
  }

  test('conv gradients through tf.grads, as training takes them', async () => {
    setConvLayoutMode(0);
    const xv = randomArray(2 * 8 * 8 * 16, 1);
    const wv = randomArray(4 * 4 * 16 * 32, 2);
    const tv = randomArray(4 * 4 * 16 * 32, 3);
    await assertSame(
      () => {
        const x = tf.tensor4d(xv, [2, 8, 8, 16]);
        const w = tf.tensor4d(wv, [4, 4, 16, 32]);
        const wt = tf.tensor4d(tv, [4, 4, 16, 32]);
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => {
          const h = tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same');
          const u = tf.conv2dTranspose(tf.leakyRelu(h, 0.2), c as tf.Tensor4D, [2, 8, 8, 16], 2, 'same');
          return tf.mean(tf.square(u));
        };
        return tf.grads(f)([x, w, wt]);
      },
      CONV_TOL,
      'grads',
    );
  });

  test('binary ops with the broadcasts the models use', async () => {
    const shapes: Array<[number[], number[]]> = [
      [
        [2, 16, 16, 64],
        [2, 16, 16, 64],
      ],
      [
        [2, 16, 16, 64],
        [2, 1, 1, 64],
      ],
      [
        [2, 1, 1, 64],
        [2, 16, 16, 64],
      ],
      [[2, 16, 16, 64], [64]],
      [[2, 16, 16, 64], []],
      [[], [3, 5]],
      [
        [4, 1, 5],
        [1, 3, 1],
      ],
      [
        [2, 16, 16, 1],
        [2, 1, 1, 3],
      ],
      // Short rows, thousands of them: several tasks, each starting mid-image (the generator's bias).
      [[2, 64, 64, 3], [3]],
      [
        [3, 70, 70, 3],
        [3, 1, 1, 3],
      ],
    ];
    const ops = [
      tf.add,
      tf.sub,
      tf.mul,
      tf.div,
      tf.maximum,
      tf.minimum,
      tf.squaredDifference,
      tf.greater,
      tf.greaterEqual,
      tf.less,
      tf.lessEqual,
      tf.equal,
      tf.notEqual,
    ];
    for (const [i, [sa, sb]] of shapes.entries()) {
      const av = randomArray(sizeOf(sa), 100 + i);
      // Some equal values, so == and >= are exercised.
      const bv = randomArray(sizeOf(sb), 200 + i).map((v, j) => (j % 7 === 0 && sizeOf(sa) > j ? av[j]! : v));
      await assertSame(
        () => {
          const a = tf.tensor(av, sa);
          const b = tf.tensor(bv, sb);
          return [...ops.map((op) => op(a, b)), tf.pow(tf.abs(a), b)];
        },
        ELT_TOL,
        `${sa} op ${sb}`,
      );
    }
  });

  test('unary ops, LeakyReLU and its gradient, Select, fills, AddN', async () => {
    const shape = [2, 32, 32, 48];
    const xv = randomArray(sizeOf(shape), 7, 3);
    xv[0] = 0;
    xv[1] = -0;
    await assertSame(
      () => {
        const x = tf.tensor(xv, shape);
        const pos = tf.add(tf.abs(x), 0.5);
        return [
          tf.neg(x),
          tf.square(x),
          tf.sqrt(pos),
          tf.rsqrt(pos),
          tf.abs(x),
          tf.exp(x),
          tf.log(pos),
          tf.log1p(pos),
          tf.tanh(x),
          tf.sigmoid(x),
          tf.relu(x),
          tf.relu6(x),
          tf.leakyRelu(x, 0.2),
          tf.leakyRelu(x, 0.01),
          tf.step(x, 0.3),
          tf.sign(x),
          tf.reciprocal(pos),
          tf.softplus(x),
          tf.elu(x),
          tf.where(tf.greater(x, 0), x, tf.mul(x, 0.2)),
          tf.ones(shape),
          tf.fill(shape, 2.5),
          tf.zerosLike(x),
          tf.onesLike(x),
          tf.addN([x, pos, x]),
          tf.grad((t: tf.Tensor) => tf.sum(tf.leakyRelu(t, 0.2)))(x),
        ];
      },
      ELT_TOL,
      'unary',
    );
  });

  test('Sum and Mean over the axes instance norm, biases and losses use', async () => {
    const shape = [3, 16, 16, 40];
    const xv = randomArray(sizeOf(shape), 9);
    const cases: Array<[number | number[] | undefined, boolean]> = [
      [[1, 2], true],
      [[1, 2], false],
      [[0, 1, 2], false],
      [undefined, false],
      [3, true],
      [0, false],
      [[0, 2], false],
      [[2, 1], true],
    ];
    await assertSame(
      () => {
        const x = tf.tensor(xv, shape);
        const y = tf.reshape(x, [3, 16, 16, 1, 40]);
        return [
          ...cases.flatMap(([axis, keep]) => [tf.sum(x, axis, keep), tf.mean(x, axis, keep)]),
          tf.mean(y, [1, 2, 3]),
          tf.moments(x, [1, 2], true).variance,
        ];
      },
      ELT_TOL,
      'reductions',
    );
  });

  test('Concat, Slice and PadV2 as the UNet skips and ZeroPadding2D use them', async () => {
    const av = randomArray(2 * 8 * 8 * 24, 11);
    const bv = randomArray(2 * 8 * 8 * 40, 12);
    const bigA = randomArray(2 * 256 * 256 * 24, 13);
    const bigB = randomArray(2 * 256 * 256 * 40, 14);
    await assertSame(
      () => {
        const a = tf.tensor4d(av, [2, 8, 8, 24]);
        const b = tf.tensor4d(bv, [2, 8, 8, 40]);
        const c = tf.concat([a, b], 3);
        return [
          c,
          tf.concat([a, a], 0),
          tf.concat([a, tf.slice(a, [0, 0, 0, 0], [2, 3, 8, 24])], 1),
          tf.concat([a, b, a], -1),
          // Over the addon's 4 M-element threshold for threads: rows split between them.
          tf.concat([tf.tensor4d(bigA, [2, 256, 256, 24]), tf.tensor4d(bigB, [2, 256, 256, 40])], 3),
          tf.slice(c, [0, 0, 0, 24], [2, 8, 8, 40]),
          tf.slice(c, [1, 2, 3, 5], [1, 4, 5, 30]),
          tf.pad(a, [
            [0, 0],
            [1, 1],
            [1, 1],
            [0, 0],
          ]),
          tf.pad(b, [
            [1, 0],
            [0, 2],
            [3, 0],
            [0, 1],
          ]),
          ...tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.concat([p, q], 3), c)))([a, b]),
        ];
      },
      0,
      'copies',
    );
  });

  test('fused Adam matches the tfjs formulation and writes in place only when data is not shared', async () => {
    await tf.setBackend('native');
    const n = 70_001;
    const hp = { lr: 2e-4, beta1: 0.5, beta2: 0.999, epsilon: 1e-8 };
    const init = [randomArray(n, 1), randomArray(n, 2, 0.01), randomArray(n, 3, 1e-4).map(Math.abs)];
    const grads = [randomArray(n, 4), randomArray(n, 5, 1e-3), randomArray(n, 6, 10)];
    const run = (kernel: typeof tfjsAdamKernel) => {
      // Inside tidy, the initial tensors die and each variable is left owning its data.
      const [w, m, v] = init.map((a) => tf.tidy(() => tf.variable(tf.tensor1d(a))));
      const ids = [w!, m!, v!].map((x) => x.dataId);
      for (const [t, g] of grads.entries()) {
        const gt = tf.tensor1d(g);
        kernel(w!, gt, m!, v!, hp, t + 1);
        gt.dispose();
      }
      const out = [w!, m!, v!].map((x) => x.dataSync().slice());
      const inPlace = [w!, m!, v!].every((x, i) => x.dataId === ids[i]);
      tf.dispose([w!, m!, v!]);
      return { out, inPlace };
    };
    const before = tf.memory().numTensors;
    const ref = run(tfjsAdamKernel);
    const got = run(adamKernelFor('native'));
    assert.ok(got.inPlace, 'the fused kernel updated w, m, v in place');
    ref.out.forEach((r, i) => {
      const e = relErr(r, got.out[i]!);
      assert.ok(e < 1e-6, `state ${i}: relative error ${e}`);
    });

    // A reshape shares the variable's data: the update must not change what the alias holds.
    const [w, m, v] = [init[0]!, new Float32Array(n), new Float32Array(n)].map((a) =>
      tf.tidy(() => tf.variable(tf.tensor1d(a))),
    ) as [tf.Variable, tf.Variable, tf.Variable];
    const alias = tf.reshape(w, [n, 1]);
    const g = tf.tensor1d(grads[0]!);
    const aliasBefore = alias.dataSync().slice();
    adamKernelFor('native')(w, g, m, v, hp, 1);
    assert.deepEqual(alias.dataSync(), aliasBefore);
    assert.notDeepEqual(w.dataSync(), aliasBefore);
    // An array read out to JS (a checkpoint being written, say) must not change under its reader:
    // both an output array of this backend (w now) and one that came in from JS (w2).
    const w2 = tf.tidy(() => tf.variable(tf.tensor1d(init[0]!.slice())));
    for (const x of [w, w2]) {
      const held = x.dataSync();
      const heldBefore = held.slice();
      adamKernelFor('native')(x, g, m, v, hp, 2);
      assert.deepEqual(held, heldBefore);
      assert.notDeepEqual(x.dataSync(), heldBefore);
    }
    tf.dispose([w, w2, alias, m, v, g]);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  });

  test('huge-page advice is taken where the kernel offers THP, and leaves the data as it was', () => {
    const thp = (() => {
      try {
        return /\[(always|madvise)\]/.test(
          readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'),
        );
      } catch {
        return false;
      }
    })();
    const addon = loadAddon();
    const x = randomArray(3 * 2 ** 20, 5);
    const copy = x.slice();
    assert.equal(addon.adviseHugePages(x, x.length), thp);
    assert.deepEqual(x, copy);
    // Nothing 2 MiB-aligned inside a 4 KiB array: no advice.
    assert.equal(addon.adviseHugePages(new Float32Array(1024), 1024), false);
    assert.throws(() => addon.adviseHugePages(new Float32Array(4), 5), RangeError);
  });

  test('registerNativeBackend throws one clear line when the addon cannot load', () => {
    const script = `import('${srcModule('backend/native')}').then(m => m.registerNativeBackend()).then(() => console.log('loaded'), e => console.log('ERR ' + e.message))`;
    const r = spawnSync(process.execPath, [...TREE_NODE_FLAGS, '-e', script], {
      env: { ...process.env, PIX2PIX_NATIVE_ADDON: '/nonexistent/pix2pix_native.node' },
      encoding: 'utf8',
    });
    const line = r.stdout.trim();
    assert.match(line, /^ERR the native addon at \/nonexistent\/pix2pix_native\.node failed to load: /);
    assert.equal(line.split('\n').length, 1);
  });
});
