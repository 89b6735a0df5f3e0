import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone registers no gradients; tfjs-layers, which the app uses, registers them.
import '@tensorflow/tfjs-layers';
import { registerWasmBackend } from '../../src/backend/wasm.js';
import { type PhaseStrategy, setPhaseStrategy } from '../../src/backend/wasm-conv-backprop-input.js';
import { relErr } from '../helpers.js';
import { type ConvCase, conv } from './conv-cases.js';

/** Max abs error over max abs reference value. float32 sums in another order stay near 1e-6. */
const TOL = 1e-4;

/**
 * Every conv of the models at 64 px, with channels cut where the same kernel/stride/pad/spatial
 * class is already covered at full width; batch 2 and 4 where cheap.
 */
const MODEL_CONVS: ConvCase[] = [
  // UNet down: 4x4 stride 2 'same'.
  conv('G down 3->64', [1, 16, 16, 3], [4, 4, 3, 64], 2, 'same'),
  conv('G down 3->64 b4', [4, 16, 16, 3], [4, 4, 3, 64], 2, 'same'),
  conv('G down 64->128 b2', [2, 8, 8, 64], [4, 4, 64, 64], 2, 'same'),
  conv('G down 128->256 4x4->2x2', [1, 4, 4, 128], [4, 4, 128, 256], 2, 'same'),
  conv('G down 256->512 2x2->1x1', [1, 2, 2, 256], [4, 4, 256, 512], 2, 'same'),
  conv('G down 512->128 2x2->1x1 b2', [2, 2, 2, 512], [4, 4, 512, 128], 2, 'same'),
  conv('down on a 1x1 map', [2, 1, 1, 16], [4, 4, 16, 8], 2, 'same'),
  // patch16: ZeroPadding2D(1) + 3x3 stride 2 'valid' (rows past the last tap are dropped), then 3x3 s1.
  conv('D16 6->64 b4', [4, 18, 18, 6], [3, 3, 6, 64], 2, 'valid'),
  conv('D16 64->128', [1, 10, 10, 64], [3, 3, 64, 128], 2, 'valid'),
  conv('D16 128->256', [1, 6, 6, 128], [3, 3, 128, 256], 2, 'valid'),
  conv('D16 256->512 ->1x1', [1, 4, 4, 256], [3, 3, 256, 512], 2, 'valid'),
  conv('D16 head 512->1 b2', [2, 4, 4, 512], [3, 3, 512, 1], 1, 'same'),
  // patch70: 4x4 s2 'same' as above, then ZeroPadding2D(1) + 4x4 stride 1 'valid'.
  conv('D70 6->64 b2', [2, 16, 16, 6], [4, 4, 6, 64], 2, 'same'),
  conv('D70 s1 64->32', [1, 6, 6, 64], [4, 4, 64, 32], 1, 'valid'),
  conv('D70 head 512->1 b2', [2, 5, 5, 512], [4, 4, 512, 1], 1, 'valid'),
];

/** Shapes no model has, for the general paths: odd sizes, other strides, explicit and large pads. */
const OTHER_CONVS: ConvCase[] = [
  conv('odd size same', [2, 9, 7, 3], [4, 4, 3, 5], 2, 'same'),
  conv('1x1 filter stride 2', [1, 11, 9, 2], [1, 1, 2, 3], 2, 'valid'),
  conv('strides 3x2', [1, 11, 9, 2], [3, 2, 2, 3], [3, 2], 'valid'),
  conv('explicit pads', [1, 11, 9, 2], [3, 3, 2, 3], 2, [
    [0, 0],
    [2, 1],
    [0, 3],
    [0, 0],
  ]),
  conv('pads past the filter', [1, 7, 7, 2], [3, 3, 2, 3], 2, [
    [0, 0],
    [5, 0],
    [0, 4],
    [0, 0],
  ]),
  conv('stride 4 on 2x2', [1, 2, 2, 3], [4, 4, 3, 4], 4, 'same'),
];

interface UpCase {
  name: string;
  x: number[];
  /** conv2dTranspose filter: [kh, kw, outChannels, inChannels]. */
  filter: number[];
  bias: boolean;
}

/** UNet up convs: Conv2DTranspose 4x4 stride 2 'same' (output twice the input). */
const UP_CONVS: UpCase[] = [
  { name: 'G up 512->128 1x1->2x2 b2', x: [2, 1, 1, 512], filter: [4, 4, 128, 512], bias: false },
  { name: 'G up 1024->64 2x2->4x4', x: [1, 2, 2, 1024], filter: [4, 4, 64, 1024], bias: false },
  { name: 'G up 128->32 4x4->8x8', x: [1, 4, 4, 128], filter: [4, 4, 32, 128], bias: false },
  { name: 'G up 64->32 8x8->16x16 b2', x: [2, 8, 8, 64], filter: [4, 4, 32, 64], bias: false },
  { name: 'G up 128->3 16x16->32x32 with bias', x: [1, 16, 16, 128], filter: [4, 4, 3, 128], bias: true },
];

let seed = 12345;
function random(shape: number[]): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    out[i] = seed / 2 ** 32 - 0.5;
  }
  return out;
}

function outShape(c: ConvCase): number[] {
  return tf.backend_util.computeConv2DInfo(
    c.x as [number, number, number, number],
    c.filter as [number, number, number, number],
    c.strides,
    1,
    c.pad,
  ).outShape;
}

function relError(actual: Float32Array, expected: Float32Array): number {
  assert.ok(
    expected.some((v) => v !== 0),
    'reference is all zeros: the comparison would prove nothing',
  );
  return relErr(expected, actual);
}

function dataIds(): number {
  return (tf.backend() as unknown as { numDataIds(): number }).numDataIds();
}

/** Runs f on one backend; returns each output's data and shape. On wasm, also checks nothing leaked. */
async function run(
  backend: 'cpu' | 'wasm',
  f: () => tf.Tensor[],
): Promise<{ data: Float32Array; shape: number[] }[]> {
  await tf.setBackend(backend);
  const tensors = tf.memory().numTensors;
  const ids = dataIds();
  const outs = tf.tidy(f);
  const result = outs.map((t) => ({ data: t.dataSync() as Float32Array, shape: t.shape }));
  tf.dispose(outs);
  if (backend === 'wasm') {
    assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
    assert.equal(dataIds(), ids, 'wasm buffers leaked (kernel intermediates)');
  }
  return result;
}

async function assertSame(label: string, f: () => tf.Tensor[]): Promise<void> {
  const expected = await run('cpu', f);
  const actual = await run('wasm', f);
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.deepEqual(actual[i].shape, expected[i].shape, `${label} output ${i} shape`);
    const err = relError(actual[i].data, expected[i].data);
    assert.ok(err < TOL, `${label} output ${i}: relative error ${err.toExponential(2)} >= ${TOL}`);
  }
}

function backpropFilter(c: ConvCase, x: Float32Array, dy: Float32Array): () => tf.Tensor[] {
  return () => [
    tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor(x, c.x), dy: tf.tensor(dy, outShape(c)) }, {
      strides: c.strides,
      pad: c.pad,
      dataFormat: 'NHWC',
      filterShape: c.filter,
    } as never) as tf.Tensor,
  ];
}

function backpropInput(c: ConvCase, dy: Float32Array, w: Float32Array): () => tf.Tensor[] {
  return () => [
    tf
      .engine()
      .runKernel('Conv2DBackpropInput', { dy: tf.tensor(dy, outShape(c)), filter: tf.tensor(w, c.filter) }, {
        strides: c.strides,
        pad: c.pad,
        dataFormat: 'NHWC',
        inputShape: c.x,
      } as never) as tf.Tensor,
  ];
}

before(async () => {
  await registerWasmBackend();
  assert.ok(await tf.setBackend('wasm'));
});

after(() => setPhaseStrategy('auto'));

describe('wasm Conv2DBackpropFilter', () => {
  for (const c of [...MODEL_CONVS, ...OTHER_CONVS]) {
    test(c.name, async () => {
      await assertSame(c.name, backpropFilter(c, random(c.x), random(outShape(c))));
    });
  }

  test('rejects a dy that does not fit the conv', async () => {
    await tf.setBackend('wasm');
    const c = MODEL_CONVS[0];
    const wrong = outShape(c).map((d, i) => (i === 1 ? d + 1 : d));
    assert.throws(
      () =>
        tf.tidy(() =>
          tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.zeros(c.x), dy: tf.zeros(wrong) }, {
            strides: c.strides,
            pad: c.pad,
            dataFormat: 'NHWC',
            filterShape: c.filter,
          } as never),
        ),
      /does not match/,
    );
  });
});

describe('wasm Conv2DBackpropInput', () => {
  // Each phase runs as either an XNNPACK conv or a GEMM, picked by cost: check both on every shape.
  for (const strategy of ['conv', 'gemm'] as PhaseStrategy[]) {
    for (const c of [...MODEL_CONVS, ...OTHER_CONVS]) {
      test(`${c.name} (${strategy})`, async () => {
        setPhaseStrategy(strategy);
        try {
          await assertSame(c.name, backpropInput(c, random(outShape(c)), random(c.filter)));
        } finally {
          setPhaseStrategy('auto');
        }
      });
    }
  }

  test('NCHW falls back to the stock kernel', async () => {
    const c = conv('nchw', [2, 3, 9, 8], [4, 4, 3, 5], 2, 'same');
    const dyShape = [2, 5, 5, 4];
    const dy = random(dyShape);
    const w = random(c.filter);
    await assertSame('nchw dx', () => [
      tf
        .engine()
        .runKernel('Conv2DBackpropInput', { dy: tf.tensor(dy, dyShape), filter: tf.tensor(w, c.filter) }, {
          strides: 2,
          pad: 'same',
          dataFormat: 'NCHW',
          inputShape: c.x,
        } as never) as tf.Tensor,
    ]);
  });
});

test('Conv2DBackpropFilter takes NCHW', async () => {
  const xShape = [2, 3, 9, 8];
  const dyShape = [2, 5, 5, 4];
  const x = random(xShape);
  const dy = random(dyShape);
  await assertSame('nchw dW', () => [
    tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor(x, xShape), dy: tf.tensor(dy, dyShape) }, {
      strides: 2,
      pad: 'same',
      dataFormat: 'NCHW',
      filterShape: [4, 4, 3, 5],
    } as never) as tf.Tensor,
  ]);
});

describe('tf.grads of conv2d (dx via Conv2DBackpropInput, dW via Conv2DBackpropFilter)', () => {
  for (const c of MODEL_CONVS) {
    test(c.name, async () => {
      const x = random(c.x);
      const w = random(c.filter);
      const r = random(outShape(c));
      await assertSame(c.name, () => {
        const weight = tf.tensor(r, outShape(c));
        const loss = (a: tf.Tensor, b: tf.Tensor) =>
          tf.sum(tf.mul(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.strides, c.pad), weight));
        return tf.grads(loss)([tf.tensor(x, c.x), tf.tensor(w, c.filter)]);
      });
    });
  }

  test('ZeroPadding2D + conv as the patch discriminators chain them', async () => {
    const xShape = [2, 8, 8, 6];
    const x = random(xShape);
    const w = random([3, 3, 6, 8]);
    const r = random([2, 4, 4, 8]);
    await assertSame('pad+conv', () => {
      const loss = (a: tf.Tensor, b: tf.Tensor) => {
        const padded = tf.pad(a as tf.Tensor4D, [
          [0, 0],
          [1, 1],
          [1, 1],
          [0, 0],
        ]);
        const y = tf.conv2d(padded, b as tf.Tensor4D, 2, 'valid');
        return tf.sum(tf.mul(y, tf.tensor(r, y.shape)));
      };
      return tf.grads(loss)([tf.tensor(x, xShape), tf.tensor(w, [3, 3, 6, 8])]);
    });
  });
});

describe('conv2dTranspose forward (Conv2DBackpropInput) and its tf.grads (Conv2D, Conv2DBackpropFilter)', () => {
  for (const c of UP_CONVS) {
    test(c.name, async () => {
      const [n, h, w, cin] = c.x;
      const out: [number, number, number, number] = [n, 2 * h, 2 * w, c.filter[2]];
      const x = random(c.x);
      const f = random(c.filter);
      const b = random([c.filter[2]]);
      const r = random(out);
      await assertSame(c.name, () => {
        const forward = (a: tf.Tensor, k: tf.Tensor, bias: tf.Tensor) => {
          const y = tf.conv2dTranspose(a as tf.Tensor4D, k as tf.Tensor4D, out, 2, 'same');
          return c.bias ? tf.add(y, bias) : y;
        };
        const inputs = [tf.tensor(x, c.x), tf.tensor(f, c.filter), tf.tensor(b, [c.filter[2]])];
        const y = forward(inputs[0], inputs[1], inputs[2]);
        const loss = (a: tf.Tensor, k: tf.Tensor, bias: tf.Tensor) =>
          tf.sum(tf.mul(forward(a, k, bias), tf.tensor(r, out)));
        const grads = tf.grads(loss)(c.bias ? inputs : inputs.slice(0, 2));
        assert.equal(cin, c.filter[3]);
        return [y, ...grads];
      });
    });
  }
});

test('registerWasmBackend is idempotent and keeps the kernels working', async () => {
  await registerWasmBackend();
  await registerWasmBackend();
  const c = UP_CONVS[0];
  const dy = random(c.x);
  const w = random(c.filter);
  const asConv = conv('again', [c.x[0], 2, 2, c.filter[2]], c.filter, 2, 'same');
  await assertSame('after re-register', backpropInput(asConv, dy, w));
});
