import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { addonPath, loadAddon } from '../../src/backend/native-addon.js';
import { nativeSkip, randomArray, relErr } from './native-helpers.js';

/**
 * The addon's argument checks (native/src/addon.cc): every bad argument from JS is one TypeError or
 * RangeError naming the function and the argument, raised before any kernel touches memory, and the
 * process carries on. The functions are called raw, past NativeAddon's types, as a bug in a caller
 * would.
 */
type Raw = Record<string, (...args: unknown[]) => unknown>;
const raw = (): Raw => loadAddon() as unknown as Raw;

const F = (n: number) => new Float32Array(n);

/** A small convolution: x [1, 5, 5, 2], filter 3x3 2->3, stride 2, valid: y [1, 2, 2, 3]. */
const CONV = { n: 1, ih: 5, iw: 5, ic: 2, oh: 2, ow: 2, oc: 3, k: 3, s: 2 };
function convParams(over: Partial<Record<'sh' | 'sw' | 'dh' | 'pt' | 'mode', number>> = {}): number[] {
  const c = CONV;
  const { sh = c.s, sw = c.s, dh = 1, pt = 0, mode = 1 } = over;
  return [c.n, c.ih, c.iw, c.ic, c.oh, c.ow, c.oc, c.k, c.k, sh, sw, pt, 0, dh, 1, mode];
}
const X_N = CONV.n * CONV.ih * CONV.iw * CONV.ic;
const W_N = CONV.k * CONV.k * CONV.ic * CONV.oc;
const Y_N = CONV.n * CONV.oh * CONV.ow * CONV.oc;

/** dx of CONV in plain loops (NHWC, HWIO): each dy element scatters through the filter. */
function convBackwardDataRef(dy: Float32Array, w: Float32Array): Float64Array {
  const c = CONV;
  const dx = new Float64Array(X_N);
  for (let oh = 0; oh < c.oh; oh++)
    for (let ow = 0; ow < c.ow; ow++)
      for (let kh = 0; kh < c.k; kh++)
        for (let kw = 0; kw < c.k; kw++)
          for (let i = 0; i < c.ic; i++)
            for (let o = 0; o < c.oc; o++) {
              const ih = oh * c.s + kh;
              const iw = ow * c.s + kw;
              dx[(ih * c.iw + iw) * c.ic + i]! +=
                dy[(oh * c.ow + ow) * c.oc + o]! * w[((kh * c.k + kw) * c.ic + i) * c.oc + o]!;
            }
  return dx;
}

/** PyTorch's Adam step in double, the addon's reference. */
function adamRef(
  w: Float32Array,
  g: Float32Array,
  lr: number,
  b1: number,
  b2: number,
  eps: number,
  t: number,
) {
  return Float64Array.from(w, (wi, i) => {
    const m = (1 - b1) * g[i]!;
    const v = (1 - b2) * g[i]! * g[i]!;
    return wi - ((lr / (1 - b1 ** t)) * m) / (Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps);
  });
}

/** Calls adam with its 10 arguments, any of them replaced. */
function adamArgs(over: Record<number, unknown> = {}, n = 4): unknown[] {
  const args: unknown[] = [F(n), F(n), F(n), F(n), n, 1e-3, 0.5, 0.999, 1e-8, 1];
  for (const [i, v] of Object.entries(over)) args[Number(i)] = v;
  return args;
}

describe('native addon argument checks', { skip: nativeSkip }, () => {
  test('adam: a step of 0, NaN, 2.5 or none is refused and leaves the weights alone', () => {
    const a = raw();
    const w = randomArray(4, 1);
    const before = w.slice();
    const call = (over: Record<number, unknown>) => () =>
      a['adam']!(...adamArgs({ 0: w, 1: F(4).fill(1), ...over }));
    assert.throws(call({ 9: 0 }), {
      name: 'RangeError',
      message: /^adam: step must be an integer >= 1 \(got 0\)$/,
    });
    assert.throws(call({ 9: Number.NaN }), {
      name: 'RangeError',
      message: /^adam: step must .* \(got NaN\)$/,
    });
    assert.throws(call({ 9: 2.5 }), { name: 'RangeError', message: /^adam: step must .* \(got 2\.5\)$/ });
    assert.throws(call({ 9: undefined }), {
      name: 'TypeError',
      message: /^adam: step must be a number \(got undefined\)$/,
    });
    assert.throws(() => a['adam']!(...adamArgs({ 0: w }).slice(0, 9)), {
      name: 'TypeError',
      message: /^adam: expected 10 arguments \(got 9\)$/,
    });
    // The other hyper-parameters that would put Inf or NaN into the weights.
    assert.throws(call({ 6: 1 }), {
      name: 'RangeError',
      message: /^adam: beta1 must be in \[0, 1\) \(got 1\)$/,
    });
    assert.throws(call({ 7: -0.1 }), { name: 'RangeError', message: /^adam: beta2 must be in \[0, 1\)/ });
    assert.throws(call({ 5: Number.POSITIVE_INFINITY }), {
      name: 'RangeError',
      message: /^adam: lr must be a finite number \(got Infinity\)$/,
    });
    assert.throws(call({ 8: -1e-8 }), { name: 'RangeError', message: /^adam: epsilon must be >= 0/ });
    assert.deepEqual(w, before, 'a refused update writes nothing');
  });

  test('float data must be a Float32Array: Int32Array, Uint8Array, Array and DataView are TypeErrors', () => {
    const a = raw();
    assert.throws(() => a['fill']!(new Int32Array(4), 1, 4), {
      name: 'TypeError',
      message: /^fill: out must be a Float32Array \(got Int32Array\)$/,
    });
    assert.throws(() => a['unary']!(0, 0, new Uint8Array(4), F(4), 4), {
      name: 'TypeError',
      message: /^unary: x must be a Float32Array \(got Uint8Array\)$/,
    });
    assert.throws(() => a['adam']!(...adamArgs({ 2: [0, 0, 0, 0] })), {
      name: 'TypeError',
      message: /^adam: m must be a Float32Array \(got Array\)$/,
    });
    assert.throws(() => a['addN']!([F(4), new Float64Array(4)], F(4), 4), {
      name: 'TypeError',
      message: /^addN: xs\[1\] must be a Float32Array \(got Float64Array\)$/,
    });
    assert.throws(() => a['convForward']!(convParams(), F(X_N), new Int32Array(W_N), null, F(Y_N)), {
      name: 'TypeError',
      message: /^convForward: filter must be a Float32Array \(got Int32Array\)$/,
    });
    assert.throws(() => a['fill']!(new DataView(new ArrayBuffer(16)), 1, 4), {
      name: 'TypeError',
      message: /\(got DataView\)$/,
    });
    // And the bool side: select's condition and a comparison's output are tfjs's Uint8Array bytes.
    assert.throws(() => a['select']!(F(2), F(2), F(2), F(2), 2), {
      name: 'TypeError',
      message: /^select: cond must be a Uint8Array \(got Float32Array\)$/,
    });
    assert.throws(() => a['binary']!(32, F(2), [2], F(2), [2], F(2), [2]), {
      name: 'TypeError',
      message: /^binary: out must be a Uint8Array \(got Float32Array\)$/,
    });
  });

  test('a Float32Array shorter than its shape says is a RangeError', () => {
    const a = raw();
    const short = (fn: string, arg: string, need: number, got: number, call: () => unknown) =>
      assert.throws(call, {
        name: 'RangeError',
        message: new RegExp(`^${fn}: ${arg} must have at least ${need} elements \\(got ${got}\\)$`),
      });
    short('convForward', 'x', X_N, X_N - 1, () =>
      a['convForward']!(convParams(), F(X_N - 1), F(W_N), null, F(Y_N)),
    );
    short('convForward', 'bias', 3, 2, () => a['convForward']!(convParams(), F(X_N), F(W_N), F(2), F(Y_N)));
    short('convBackwardWeights', 'dw', W_N, 1, () =>
      a['convBackwardWeights']!(convParams(), F(X_N), F(Y_N), F(1)),
    );
    short('binary', 'b', 6, 3, () => a['binary']!(0, F(6), [2, 3], F(3), [2, 3], F(6), [2, 3]));
    short('reduceSum', 'out', 8, 4, () => a['reduceSum']!(F(64), 2, 8, 4, F(4), false));
    short('adam', 'v', 4, 3, () => a['adam']!(...adamArgs({ 3: F(3) })));
    short('inormActForward', 'rs', 6, 5, () => a['inormActForward']!(F(24), 2, 4, 3, 1e-5, 0.2, F(24), F(5)));
    short('leakyBackward', 'h', 8, 7, () => a['leakyBackward']!(F(8), F(7), 8, 0.2, F(8)));
    short('copyBox', 'dst', 12, 11, () =>
      a['copyBox']!(F(12), [3, 4], [0, 0], F(11), [3, 4], [0, 0], [3, 4]),
    );
    short('concatRows', 'xs\\[1\\]', 10, 9, () => a['concatRows']!([F(6), F(9)], [3, 5], 2, F(16)));
    short('concatRows', 'out', 16, 15, () => a['concatRows']!([F(6), F(10)], [3, 5], 2, F(15)));
    assert.throws(() => a['concatRows']!([F(6)], [3, 5], 2, F(16)), {
      message: /^concatRows: xs and widths must have the same length$/,
    });
    // A typed array over a transferred (detached) buffer has no elements left.
    const gone = F(4);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    short('fill', 'out', 4, 0, () => a['fill']!(gone, 1, 4));
  });

  test('conv: stride 0 and other bad params are RangeErrors, in every layout mode', () => {
    const a = raw();
    for (const mode of [0, 1, 2, 3, 4]) {
      // Mode 4's GEMM + col2im backward-data divides by the strides: stride 0 was a SIGFPE there.
      assert.throws(() => a['convBackwardData']!(convParams({ sh: 0, mode }), F(Y_N), F(W_N), F(X_N)), {
        name: 'RangeError',
        message: /^convBackwardData: params\[9\] \(sh\) must be an integer >= 1 \(got 0\)$/,
      });
      assert.throws(() => a['convForward']!(convParams({ sw: 0, mode }), F(X_N), F(W_N), null, F(Y_N)), {
        name: 'RangeError',
        message: /^convForward: params\[10\] \(sw\) must be an integer >= 1 \(got 0\)$/,
      });
    }
    assert.throws(() => a['convBackwardWeights']!(convParams({ dh: 0 }), F(X_N), F(Y_N), F(W_N)), {
      name: 'RangeError',
      message: /params\[13\] \(dh\) must be an integer >= 1 \(got 0\)$/,
    });
    assert.throws(() => a['convImpl']!(convParams({ pt: -1 })), {
      name: 'RangeError',
      message: /^convImpl: params\[11\] \(padTop\) must be an integer >= 0 \(got -1\)$/,
    });
    assert.throws(() => a['convImpl']!(convParams({ mode: 5 })), {
      name: 'RangeError',
      message: /^convImpl: params\[15\] \(layoutMode\) must be an integer in \[0, 4\] \(got 5\)$/,
    });
    assert.throws(() => a['convImpl']!(convParams().slice(0, 15)), {
      name: 'RangeError',
      message: /^convImpl: params must have 16 elements \(got 15\)$/,
    });
    assert.throws(() => a['convImpl']!(new Float64Array(convParams())), {
      name: 'TypeError',
      message: /^convImpl: params must be an Array \(got Float64Array\)$/,
    });
    // A constant filter's id: an integer >= 0 where given (0 or absent: none), >= 1 to forget.
    assert.throws(() => a['convForward']!(convParams(), F(X_N), F(W_N), null, F(Y_N), -1), {
      name: 'RangeError',
      message: /^convForward: weightsId must be an integer >= 0 \(got -1\)$/,
    });
    assert.throws(() => a['convBackwardData']!(convParams(), F(Y_N), F(W_N), F(X_N), 1.5), {
      name: 'RangeError',
      message: /^convBackwardData: weightsId must be an integer >= 0 \(got 1\.5\)$/,
    });
    assert.throws(() => a['convForgetWeights']!(0), {
      name: 'RangeError',
      message: /^convForgetWeights: weightsId must be an integer >= 1 \(got 0\)$/,
    });
  });

  test('a non-number where a number is expected is a TypeError', () => {
    const a = raw();
    assert.throws(() => a['unary']!(0, 0, F(4), F(4), '4'), {
      name: 'TypeError',
      message: /^unary: n must be a number \(got string\)$/,
    });
    assert.throws(() => a['fill']!(F(4), null, 4), {
      name: 'TypeError',
      message: /^fill: value must be a number \(got null\)$/,
    });
    assert.throws(() => a['adam']!(...adamArgs({ 5: 1n })), {
      name: 'TypeError',
      message: /^adam: lr must be a number \(got bigint\)$/,
    });
    const p: unknown[] = convParams();
    p[9] = '2';
    assert.throws(() => a['convForward']!(p, F(X_N), F(W_N), null, F(Y_N)), {
      name: 'TypeError',
      message: /^convForward: params\[9\] \(sh\) must be a number \(got string\)$/,
    });
    assert.throws(() => a['binary']!(0, F(2), [{}], F(2), [2], F(2), [2]), {
      name: 'TypeError',
      message: /^binary: aShape\[0\] must be a number \(got object\)$/,
    });
    assert.throws(() => a['reduceSum']!(F(4), 1, 4, 1, F(1), 1), {
      name: 'TypeError',
      message: /^reduceSum: mean must be a boolean \(got 1\)$/,
    });
  });

  test('sizes must be whole and in range, op codes known, shapes consistent', () => {
    const a = raw();
    const range = (call: () => unknown, message: RegExp) =>
      assert.throws(call, { name: 'RangeError', message });
    range(() => a['fill']!(F(4), 0, 2.5), /^fill: n must be an integer >= 0 \(got 2\.5\)$/);
    range(() => a['fill']!(F(4), 0, -1), /^fill: n must be an integer >= 0 \(got -1\)$/);
    range(
      () => a['select']!(new Uint8Array(4), F(4), F(4), F(4), Number.NaN),
      /^select: n must .* \(got NaN\)$/,
    );
    range(() => a['unary']!(99, 0, F(4), F(4), 4), /^unary: op must be an integer in \[0, 17\] \(got 99\)$/);
    range(
      () => a['unary']!(11, Number.NaN, F(4), F(4), 4),
      /^unary: alpha must be a finite number \(got NaN\)$/,
    );
    range(() => a['binary']!(9, F(1), [1], F(1), [1], F(1), [1]), /^binary: op must be a binary op code/);
    range(
      () => a['binary']!(0, F(3), [3], F(2), [2], F(3), [3]),
      /^binary: aShape and bShape do not broadcast/,
    );
    range(
      () => a['binary']!(0, F(1), [1, 1, 1, 1, 1, 1, 1, 1, 1], F(1), [1], F(1), [1]),
      /aShape must have at most 8/,
    );
    range(() => a['copyBox']!(F(4), [4], [2], F(4), [4], [0], [3]), /^copyBox: box out of bounds in dim 0$/);
    range(
      () => a['copyBox']!(F(4), [4], [0], F(4), [4, 1], [0], [3]),
      /^copyBox: .* must have the same length$/,
    );
    range(() => a['addN']!([], F(4), 4), /^addN: xs must have at least 1 element \(got 0\)$/);
    range(
      () => a['inormActForward']!(F(4), 1, 0, 4, 1e-5, null, F(4), F(4)),
      /^inormActForward: hw must .* >= 1/,
    );
    range(() => a['inormActBackward']!(F(4), F(4), F(4), 1, 1, 4, -0.2, F(4)), /alpha must be > 0 or null/);
    range(() => a['leakyBackward']!(F(4), F(4), 4, 0, F(4)), /^leakyBackward: alpha must be > 0 \(got 0\)$/);
    range(() => a['peak']!(0), /^peak: secondsEach must be in \(0, 60\] \(got 0\)$/);
    range(() => a['peak']!(0.01, 1e6), /^peak: threads must be an integer in \[0, 1024\] \(got 1000000\)$/);
  });

  test('several bad arguments, or a getter that throws, give one clean error and no abort', () => {
    const path = addonPath();
    assert.ok(path);
    // In a child process: raising a second JS exception while one is pending aborts the process
    // (node-addon-api's napi_throw fatal error), which here would take the test runner with it.
    const script = `
      const a = require(${JSON.stringify(path)});
      const F = (n) => new Float32Array(n);
      const out = [];
      const t = (f) => { try { f(); out.push('no error'); } catch (e) { out.push(e.name + ': ' + e.message); } };
      t(() => a.unary('x', 'y', 'z', F(1), 'n'));
      t(() => a.fill(new Int32Array(1), 'v', -1));
      t(() => a.adam(0, 0, 0, 0, 'n', NaN, 2, 2, -1, 0));
      const shape = [2, 2];
      Object.defineProperty(shape, 1, { get() { throw new Error('getter threw'); } });
      t(() => a.binary(0, 'not an array', shape, F(1), [1], F(1), [1]));
      t(() => a.convForward([1, 5, 5, 2, 2, 2, 3, 3, 3, 0, 0, 0, 0, 0, 0, 9], 1, 2, 3, 4));
      const y = F(2); a.fill(y, 3, 2);
      out.push(Array.from(y).join(','));
      console.log(JSON.stringify(out));
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    assert.equal(r.signal, null, `child killed by ${r.signal}: ${r.stderr.slice(0, 300)}`);
    assert.equal(r.status, 0, r.stderr.slice(0, 300));
    assert.deepEqual(JSON.parse(r.stdout), [
      // The first bad argument checked is the one reported.
      'TypeError: unary: op must be a number (got string)',
      'TypeError: fill: value must be a number (got string)',
      'TypeError: adam: n must be a number (got string)',
      // The getter's own exception was pending: it is the error, and nothing is thrown over it.
      'Error: getter threw',
      'RangeError: convForward: params[9] (sh) must be an integer >= 1 (got 0)',
      '3,3',
    ]);
  });

  test('after refused calls the addon still computes right (Adam, GEMM backward-data, broadcast add)', () => {
    const a = raw();
    // Refusals first, on the same arrays the valid calls then use.
    const w = randomArray(64, 2);
    const g = randomArray(64, 3);
    const m = F(64);
    const v = F(64);
    assert.throws(() => a['adam']!(w, g, m, v, 64, 1e-2, 0.5, 0.999, 1e-8, 0), RangeError);
    assert.throws(() => a['adam']!(w, g, new Int32Array(64), v, 64, 1e-2, 0.5, 0.999, 1e-8, 1), TypeError);
    const dy = randomArray(Y_N, 4);
    const fw = randomArray(W_N, 5);
    const dx = F(X_N);
    assert.throws(() => a['convBackwardData']!(convParams({ sh: 0, mode: 4 }), dy, fw, dx), RangeError);
    assert.throws(() => a['convBackwardData']!(convParams({ mode: 4 }), dy, fw, F(X_N - 1)), RangeError);

    const wantW = adamRef(w, g, 1e-2, 0.5, 0.999, 1e-8, 3);
    a['adam']!(w, g, m, v, 64, 1e-2, 0.5, 0.999, 1e-8, 3);
    assert.ok(relErr(wantW, w) < 1e-6, `adam: relative error ${relErr(wantW, w)}`);

    a['convBackwardData']!(convParams({ mode: 4 }), dy, fw, dx);
    const wantDx = convBackwardDataRef(dy, fw);
    assert.ok(relErr(wantDx, dx) < 1e-5, `convBackwardData mode 4: relative error ${relErr(wantDx, dx)}`);

    const x = randomArray(6, 6);
    const b = randomArray(3, 7);
    const sum = F(6);
    a['binary']!(0, x, [2, 3], b, [3], sum, [2, 3]);
    assert.deepEqual(
      sum,
      Float32Array.from(x, (xi, i) => xi + b[i % 3]!),
    );
  });
});
