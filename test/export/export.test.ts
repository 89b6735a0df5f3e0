import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { epochEvaluator } from '../../src/eval/evaluate.js';
import { type ExportMetadata, exportModel } from '../../src/export/export.js';
import { toFloat16 } from '../../src/export/float16.js';
import { decodeOnnx, layersModelToOnnx, samePads } from '../../src/export/onnx.js';
import { writeLayersModel } from '../../src/export/tfjs.js';
import { loadGenerator } from '../../src/infer/load.js';
import { unetGenerator } from '../../src/models/unet.js';
import { parseEvalCsv } from '../../src/run/records.js';
import { validateConfig } from '../../src/train/config.js';
import { train } from '../../src/train/loop.js';
import { assertOneLineError, pix2pix, rng, tempDir, useWasm } from '../helpers.js';

before(useWasm);

const SIZE = 64;
/**
 * The exported run's generator: 64 px (6 levels) at ngf 16, 1.8 M parameters (7 MB of float32, so
 * two 4 MiB shards); what is checked here does not depend on the reference's width.
 */
const NGF = 16;

/** Loads an exported model.json the way a browser does: over HTTP, shards fetched relative to model.json. */
async function loadLikeBrowser(dir: string) {
  const fetched: string[] = [];
  const base = 'http://pix2pix.test/models/g/';
  const fetchFunc = async (url: string | URL | Request) => {
    assert.ok(!(url instanceof Request));
    const u = new URL(String(url));
    fetched.push(u.href);
    assert.ok(u.href.startsWith(base), `${u.href} is under the model's folder`);
    return new Response(
      await readFile(join(dir, decodeURIComponent(u.pathname.slice(new URL(base).pathname.length)))),
    );
  };
  const model = await tfl.loadLayersModel(tf.io.http(`${base}model.json`, { fetchFunc }));
  return { model, fetched };
}

function randomInput(n: number, seed: number): tf.Tensor4D {
  const r = rng(seed);
  return tf.tensor4d(
    Float32Array.from({ length: n * SIZE * SIZE * 3 }, () => r() * 2 - 1),
    [n, SIZE, SIZE, 3],
  );
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

async function runOnnx(path: string | Uint8Array, x: tf.Tensor4D) {
  const session =
    typeof path === 'string'
      ? await ort.InferenceSession.create(path)
      : await ort.InferenceSession.create(path);
  const out = await session.run({ input: new ort.Tensor('float32', x.dataSync() as Float32Array, x.shape) });
  await session.release();
  return out.output!;
}

type OnnxAttr = { name: string; f?: number; ints?: number[] };
type OnnxNode = { opType: string; name: string; attribute?: OnnxAttr[] };

describe('export', () => {
  let root: string;
  let runDir: string;
  /** Fixed input and the checkpoint generator's output on it (dropout off). */
  let x1: tf.Tensor4D;
  let ref1: Float32Array;
  let x2: tf.Tensor4D;
  let ref2: Float32Array;
  let plain: { dir: string; metadata: ExportMetadata };

  before(async () => {
    root = await tempDir('p2p-export-');
    // onnxruntime-node's telemetry writes mat-debug-<pid>.log and .ses into $TMPDIR when its first
    // session starts, and never removes them: it (and the CLI run below) gets this file's own folder.
    process.env.TMPDIR = root;
    const data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 5, size: SIZE, seed: 3 });
    runDir = join(root, 'run');
    const config = validateConfig({
      data,
      out: runDir,
      size: SIZE,
      ngf: NGF,
      batchSize: 2,
      epochs: 1,
      maxStepsPerEpoch: 1,
      evalEvery: 1,
    });
    await train(config, false, { evaluate: epochEvaluator(config) });
    const g = await loadGenerator(runDir);
    x1 = randomInput(1, 7);
    x2 = randomInput(2, 8);
    ref1 = (g.G.predict(x1) as tf.Tensor).dataSync() as Float32Array;
    ref2 = (g.G.predict(x2) as tf.Tensor).dataSync() as Float32Array;
    g.G.dispose();
    const dir = join(root, 'export-f32');
    plain = { dir, metadata: (await exportModel(runDir, dir, { onnx: true })).metadata };
  });

  it('writes a tfjs LayersModel that reloads as a browser loads it and gives the checkpoint output exactly', async (t) => {
    const json = JSON.parse(await readFile(join(plain.dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    assert.equal(json.format, 'layers-model');
    const [group] = json.weightsManifest;
    assert.equal(json.weightsManifest.length, 1);
    assert.ok(
      group!.paths.every((p) => /^group1-shard\d+of\d+\.bin$/.test(p)),
      'relative shard paths',
    );
    const sizes = await Promise.all(group!.paths.map(async (p) => (await stat(join(plain.dir, p))).size));
    const total = sizes.reduce((a, b) => a + b, 0);
    assert.ok(sizes.every((s) => s <= 4 * 2 ** 20));
    assert.equal(group!.paths.length, Math.ceil(total / (4 * 2 ** 20)));
    assert.ok(group!.paths.length > 1, 'the 64 px generator spans several 4 MiB shards');
    assert.equal(total, plain.metadata.tfjs.weightBytes);
    assert.equal(total, plain.metadata.tfjs.params * 4);

    const { model, fetched } = await loadLikeBrowser(plain.dir);
    assert.equal(fetched.length, 1 + group!.paths.length);
    const y = model.predict(x1) as tf.Tensor;
    const d = maxAbsDiff(y.dataSync(), ref1);
    t.diagnostic(`float32 reload: max abs diff ${d}`);
    assert.equal(d, 0);
    model.dispose();
  });

  it('--quantize float16 halves the weights, tfjs dequantizes on load, output within 2e-2', async (t) => {
    const dir = join(root, 'export-f16');
    const { metadata } = await exportModel(runDir, dir, { quantize: 'float16' });
    assert.equal(metadata.tfjs.weights, 'float16');
    assert.equal(metadata.tfjs.weightBytes * 2, plain.metadata.tfjs.weightBytes);
    const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')) as tf.io.ModelJSON;
    for (const w of json.weightsManifest[0]!.weights) {
      assert.equal(w.dtype, 'float32');
      assert.deepEqual(w.quantization, { dtype: 'float16' });
    }
    assert.ok(!existsSync(join(dir, 'generator.onnx')));
    const { model } = await loadLikeBrowser(dir);
    const y = model.predict(x1) as tf.Tensor;
    const d = maxAbsDiff(y.dataSync(), ref1);
    t.diagnostic(`float16 reload: max abs diff ${d.toExponential(3)}`);
    assert.ok(d > 0 && d < 2e-2, `float16 max abs diff ${d}`);
    model.dispose();
    // The encoder rounds to nearest even and keeps subnormals and infinities, as tfjs's decoder expects.
    assert.deepEqual(
      [...toFloat16(Float32Array.from([0, -0, 1, -2, 65504, 1e6, 2 ** -24, 2 ** -25, 1 + 2 ** -11, 0.1]))],
      [0, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x7c00, 1, 0, 0x3c00, 0x2e66],
    );
  });

  it('generator.onnx runs in onnxruntime-node, NHWC, and matches tfjs within 1e-4 (batch 1 and 2)', async (t) => {
    const path = join(plain.dir, 'generator.onnx');
    const o1 = await runOnnx(path, x1);
    assert.deepEqual(o1.dims, [1, SIZE, SIZE, 3]);
    const d1 = maxAbsDiff(o1.data as Float32Array, ref1);
    const o2 = await runOnnx(path, x2);
    assert.deepEqual(o2.dims, [2, SIZE, SIZE, 3]);
    const d2 = maxAbsDiff(o2.data as Float32Array, ref2);
    t.diagnostic(
      `ONNX vs tfjs: max abs diff ${d1.toExponential(3)} (batch 1), ${d2.toExponential(3)} (batch 2)`,
    );
    assert.ok(d1 < 1e-4 && d2 < 1e-4, `${d1} ${d2}`);
  });

  it('the ONNX model declares opset >= 13, explicit pads only, LeakyRelu alphas, NHWC input with dynamic N', async () => {
    const m = decodeOnnx(await readFile(join(plain.dir, 'generator.onnx'))) as {
      irVersion: number;
      opsetImport: { domain?: string; version: number }[];
      graph: { node: OnnxNode[]; input: unknown[]; output: unknown[] };
    };
    const opset = m.opsetImport.find((o) => !o.domain)!.version;
    assert.ok(opset >= 13);
    assert.equal(plain.metadata.onnx?.opset, opset);
    const nodes = m.graph.node;
    const attrs = (n: OnnxNode) => new Map((n.attribute ?? []).map((a) => [a.name, a]));
    for (const n of nodes) {
      assert.ok(
        !attrs(n).has('auto_pad') && !attrs(n).has('output_shape'),
        `${n.name} has no implicit padding`,
      );
      if (n.opType === 'Conv' || n.opType === 'ConvTranspose') {
        assert.deepEqual(attrs(n).get('pads')?.ints, [1, 1, 1, 1], `${n.name} pads`);
      }
    }
    const leaky = nodes.filter((n) => n.opType === 'LeakyRelu');
    assert.ok(leaky.length > 0);
    for (const n of leaky) {
      const alpha = attrs(n).get('alpha')?.f;
      assert.ok(alpha !== undefined, `${n.name} carries alpha`);
      assert.ok(
        Math.abs(alpha - (n.name.startsWith('down') ? 0.2 : 0.01)) < 1e-7,
        `${n.name} alpha ${alpha}`,
      );
    }
    for (const n of nodes.filter((n) => n.opType === 'InstanceNormalization')) {
      assert.ok(Math.abs(attrs(n).get('epsilon')!.f! - 1e-5) < 1e-12);
    }
    const ops = new Set(nodes.map((n) => n.opType));
    assert.ok(!ops.has('Dropout'));
    assert.deepEqual(
      [...ops].sort(),
      ['Concat', 'Conv', 'ConvTranspose', 'InstanceNormalization', 'LeakyRelu', 'Tanh', 'Transpose'].sort(),
    );
    const dims = (v: unknown) =>
      (v as { type: { tensorType: { shape: { dim: { dimValue?: number; dimParam?: string }[] } } } }).type
        .tensorType.shape.dim;
    assert.deepEqual(dims(m.graph.input[0]), [
      { dimParam: 'N' },
      { dimValue: 64 },
      { dimValue: 64 },
      { dimValue: 3 },
    ]);
    assert.deepEqual(dims(m.graph.output[0]), [
      { dimParam: 'N' },
      { dimValue: 64 },
      { dimValue: 64 },
      { dimValue: 3 },
    ]);
    assert.equal((m.graph.input[0] as { name: string }).name, 'input');
    assert.equal((m.graph.output[0] as { name: string }).name, 'output');
  });

  it('ONNX: norm=batch (with non-trivial running statistics) and asymmetric same pads match tfjs', async (t) => {
    const G = unetGenerator({ size: 32, ngf: 8, norm: 'batch', seed: 4 });
    const r = rng(11);
    for (const l of G.layers.filter((l) => l.getClassName() === 'BatchNormalization')) {
      l.setWeights(
        l.getWeights().map((w, i) =>
          tf.tensor(
            Float32Array.from({ length: w.size }, () =>
              i === 3 ? 0.5 + r() : i === 1 || i === 2 ? r() - 0.5 : 0.8 + 0.4 * r(),
            ),
            w.shape,
          ),
        ),
      );
    }
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * 32 * 32 * 3 }, () => r() * 2 - 1),
      [2, 32, 32, 3],
    );
    const onnx = await layersModelToOnnx(G);
    assert.ok(onnx.ops.includes('BatchNormalization'));
    const ref = (G.predict(x) as tf.Tensor).dataSync();
    const out = await runOnnx(onnx.bytes, x);
    const d = maxAbsDiff(out.data as Float32Array, ref);
    t.diagnostic(`norm=batch ONNX vs tfjs: max abs diff ${d.toExponential(3)}`);
    assert.ok(d < 1e-4, String(d));
    G.dispose();

    // An odd input under 'same' pads the extra pixel at the end, as TensorFlow does.
    assert.deepEqual(samePads(64, 4, 2), [1, 1]);
    assert.deepEqual(samePads(7, 4, 2), [1, 2]);
    const inp = tfl.input({ shape: [7, 7, 2] });
    const conv = tfl.layers.conv2d({
      filters: 3,
      kernelSize: 4,
      strides: 2,
      padding: 'same',
      activation: 'sigmoid',
    });
    const small = tfl.model({ inputs: inp, outputs: conv.apply(inp) as tfl.SymbolicTensor });
    const xs = tf.randomUniform([1, 7, 7, 2], -1, 1, 'float32', 5) as tf.Tensor4D;
    const out2 = await runOnnx((await layersModelToOnnx(small)).bytes, xs);
    assert.ok(maxAbsDiff(out2.data as Float32Array, (small.predict(xs) as tf.Tensor).dataSync()) < 1e-5);
  });

  /**
   * G's ONNX export in onnxruntime within 1e-4 of `ref` (G's output on x), and its tfjs export,
   * reloaded as a browser does, exactly; disposes G and x.
   */
  async function bothExportsGive(
    G: tfl.LayersModel,
    onnxBytes: Uint8Array,
    x: tf.Tensor4D,
    ref: Float32Array,
    label: string,
    t: { diagnostic: (s: string) => void },
  ) {
    const d = maxAbsDiff((await runOnnx(onnxBytes, x)).data as Float32Array, ref);
    t.diagnostic(`${label} ONNX vs tfjs: max abs diff ${d.toExponential(3)}`);
    assert.ok(d < 1e-4, String(d));
    const dir = join(root, `export-${label}`);
    await writeLayersModel(G, dir);
    const { model } = await loadLikeBrowser(dir);
    assert.equal(maxAbsDiff((model.predict(x) as tf.Tensor).dataSync(), ref), 0);
    tf.dispose([x]);
    G.dispose();
    model.dispose();
  }

  it('a residual generator (--residual --ngf 16 --depth 4 --no-dropout): tfjs export and ONNX (Add + Clip) give its output, clipping included', async (t) => {
    const G = unetGenerator({ size: 32, ngf: 16, depth: 4, dropout: false, residual: true, seed: 6 });
    // Inputs near the range's ends, so x + r leaves [-1, 1] and the clip matters.
    const r = rng(13);
    const x = tf.tensor4d(
      Float32Array.from({ length: 2 * 32 * 32 * 3 }, () => (r() < 0.5 ? -0.95 : 0.95) + 0.1 * (r() - 0.5)),
      [2, 32, 32, 3],
    );
    const ref = (G.predict(x) as tf.Tensor).dataSync() as Float32Array;
    assert.ok(ref.some((v) => v === 1) && ref.some((v) => v === -1), 'some outputs are clipped');
    const onnx = await layersModelToOnnx(G);
    assert.ok(onnx.ops.includes('Add') && onnx.ops.includes('Clip'));
    await bothExportsGive(G, onnx.bytes, x, ref, 'residual', t);
  });

  it('a --residual-blur generator: ONNX (Pad reflect + depthwise Convs + Add + Clip) and the tfjs export give its output', async (t) => {
    const G = unetGenerator({
      size: 32,
      ngf: 16,
      depth: 4,
      dropout: false,
      residual: true,
      residualBlur: 3,
      seed: 7,
    });
    const x = tf.randomUniform([2, 32, 32, 3], -1, 1, 'float32', 14) as tf.Tensor4D;
    const ref = (G.predict(x) as tf.Tensor).dataSync() as Float32Array;
    const onnx = await layersModelToOnnx(G);
    assert.ok(onnx.ops.includes('Pad'));
    await bothExportsGive(G, onnx.bytes, x, ref, 'residual-blur', t);
  });

  it('ONNX: a layer class it does not know is a one-line error naming the layer', async () => {
    const inp = tfl.input({ shape: [8, 8, 3] });
    const pad = tfl.layers.zeroPadding2d({ name: 'my_pad', padding: 1 }).apply(inp) as tfl.SymbolicTensor;
    const m = tfl.model({ inputs: inp, outputs: pad });
    await assert.rejects(
      () => layersModelToOnnx(m),
      (e: Error) => /layer 'my_pad' of class ZeroPadding2D/.test(e.message) && !e.message.includes('\n'),
    );
  });

  it('metadata.json holds size, range, layout, direction, checkpoint, training summary and eval scores', async () => {
    const m = JSON.parse(await readFile(join(plain.dir, 'metadata.json'), 'utf8')) as ExportMetadata;
    const [row] = parseEvalCsv(await readFile(join(runDir, 'eval.csv'), 'utf8'));
    assert.equal(m.input.size, SIZE);
    assert.deepEqual(m.input.shape, [null, SIZE, SIZE, 3]);
    assert.equal(m.input.layout, 'NHWC');
    assert.deepEqual(m.input.range, [-1, 1]);
    assert.deepEqual(m.output.range, [-1, 1]);
    assert.match(m.input.fromUint8, /127\.5/);
    assert.equal(m.direction, 'AtoB');
    assert.equal(m.checkpoint.epoch, 1);
    assert.equal(m.checkpoint.step, 1);
    assert.equal(m.checkpoint.run, runDir);
    assert.deepEqual(m.scores, {
      psnr: row!.psnr,
      ssim: row!.ssim,
      mae: row!.mae,
      step: row!.step,
      evalSeconds: row!.seconds,
    });
    assert.equal(m.training?.norm, 'instance');
    assert.equal(m.training?.netD, 'patch16');
    assert.equal(m.training?.batchSize, 2);
    assert.equal(m.training?.epochs, 1);
    assert.equal(m.training?.seed, 1);
    assert.equal(m.versions.tfjs, '4.22.0');
    assert.match(m.versions.pix2pixTs, /^\d+\.\d+\.\d+/);
    assert.equal(m.tfjs.weights, 'float32');
    assert.deepEqual(m.tfjs.customLayers, ['InstanceNorm']);
    assert.equal(m.onnx?.file, 'generator.onnx');
    assert.deepEqual(m.onnx?.inputShape, ['N', SIZE, SIZE, 3]);
  });

  it('CLI: export --model RUN --onnx --json writes the files and one JSON line; a bad --model is one error line', async () => {
    const out = join(root, 'cli-export');
    const r = await pix2pix([
      'export',
      '--model',
      runDir,
      '--epoch',
      'best',
      '--out',
      out,
      '--onnx',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.equal(result.epoch, 1);
    assert.equal(result.size, SIZE);
    assert.equal(result.onnx, join(out, 'generator.onnx'));
    const files = await readdir(out);
    for (const f of ['model.json', 'metadata.json', 'generator.onnx', ...result.files]) {
      assert.ok(files.includes(f), `${f} written`);
    }
    assert.ok(!files.some((f) => f.endsWith('.tmp')));

    assertOneLineError(
      await pix2pix(['export', '--model', join(root, 'nope'), '--out', out]),
      /neither a training run \(config.json\) nor a checkpoint/,
    );
  });
});
