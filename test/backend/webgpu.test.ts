import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { setupBackend } from '../../src/backend/index.js';
import { describeAdapter } from '../../src/backend/webgpu.js';
import { withDropoutSeed } from '../../src/models/fused.js';
import { DEFAULT_CONFIG } from '../../src/train/config.js';
import {
  applyStep,
  createTrainState,
  disposeTrainState,
  type ModelConfig,
  type StepLosses,
  stepGradients,
} from '../../src/train/step.js';
import { rng } from '../helpers.js';
import { CPU_REF, registerCpuReference } from './cpu-reference.js';
import { assertSameStep } from './step-compare.js';
import { useSoftwareGpu, webgpuSkip } from './webgpu-helpers.js';

const SIZE = 32;
// Enough steps for the losses to drift and for a leak to show (a fraction of a second each with ndf 8).
const STEPS = 10;

/**
 * Smooth random inputs and a fixed colour mapping as targets, as plain arrays for either backend
 * (made on cpu: webgpu in Node has no synchronous read).
 */
async function pairData(seed: number, batch: number): Promise<{ a: Float32Array; b: Float32Array }> {
  await tf.setBackend('cpu');
  const r = rng(seed);
  const small = Float32Array.from({ length: batch * 8 * 8 * 3 }, () => r() * 2 - 1);
  return tf.tidy(() => {
    const a = tf.image.resizeBilinear(tf.tensor4d(small, [batch, 8, 8, 3]), [SIZE, SIZE]);
    const b = tf.reverse(tf.neg(a), 3);
    return { a: a.dataSync() as Float32Array, b: b.dataSync() as Float32Array };
  });
}

interface Run {
  losses: StepLosses[];
  /** The first step's gradients, per update, in variable order (names differ between two models). */
  grads: Float32Array[][];
  /** tfjs's count and bytes, and the backend's own (GPU buffers on webgpu), after step 2 and the last. */
  memory: { after2: tf.MemoryInfo; afterLast: tf.MemoryInfo };
  leaked: number;
}

/**
 * `steps` training steps of `config` on `backend` from the same initial weights (the initialisers and
 * the dropout masks are seeded and drawn in JS, the same on every backend) and the same batch.
 */
async function runOn(
  backend: string,
  config: ModelConfig,
  opts: { steps: number; batch: number; adversarial?: boolean },
): Promise<Run> {
  const { steps, batch, adversarial = true } = opts;
  const { a, b } = await pairData(3, batch);
  await tf.setBackend(backend);
  const start = tf.memory().numTensors;
  const s = createTrainState(config);
  const at = tf.tensor4d(a, [batch, SIZE, SIZE, 3]);
  const bt = tf.tensor4d(b, [batch, SIZE, SIZE, 3]);
  const run: Run = { losses: [], grads: [], memory: {} as Run['memory'], leaked: 0 };
  for (let i = 1; i <= steps; i++) {
    const pending = withDropoutSeed(100 + i, () => stepGradients(s, at, bt, adversarial));
    if (i === 1) {
      for (const u of pending.updates) {
        const vars = u.opt.variables;
        run.grads.push(
          await Promise.all(vars.map(async (v) => (await u.grads[v.name]!.data()) as Float32Array)),
        );
      }
    }
    run.losses.push(await applyStep(pending));
    if (i === 2) run.memory.after2 = tf.memory();
    if (i === steps) run.memory.afterLast = tf.memory();
  }
  tf.dispose([at, bt]);
  disposeTrainState(s);
  run.leaked = tf.memory().numTensors - start;
  return run;
}

function assertSameStepAsCpu(gpu: Run, cpu: Run): void {
  assertSameStep(
    { losses: gpu.losses[0]!, grads: gpu.grads },
    { losses: cpu.losses[0]!, grads: cpu.grads },
    'webgpu',
  );
}

describe('webgpu backend (software adapter)', { skip: webgpuSkip }, () => {
  before(async () => {
    registerCpuReference();
    useSoftwareGpu();
    const { name, adapter } = await setupBackend('webgpu');
    assert.equal(name, 'webgpu');
    assert.ok(adapter?.software, `SwiftShader is a software adapter: ${adapter && describeAdapter(adapter)}`);
  });

  // The reference recipe at 32 px, ngf and ndf 8: dropout (seeded masks), instance norm, our Adam.
  const reference: ModelConfig = { ...DEFAULT_CONFIG, size: SIZE, ngf: 8, ndf: 8 };

  // The cpu backend is the reference throughout (CPU_REF: its own kernels but a faster filter
  // gradient, checked against cpu's own in native-step.test.ts; cpu's takes ~8 s a step here).
  it('one G+D step matches cpu: losses within 1e-3, gradients within 1e-2 of their norms (batch 2 as two micro-batches)', async () => {
    const config = { ...reference, microBatch: 1 };
    const cpu = await runOn(CPU_REF, config, { steps: 1, batch: 2 });
    const gpu = await runOn('webgpu', config, { steps: 1, batch: 2 });
    assertSameStepAsCpu(gpu, cpu);
    assert.equal(gpu.leaked, 0);
  });

  it(`${STEPS} steps track cpu's losses; tfjs's tensors and bytes and the GPU buffers in use stay where they were`, async () => {
    const ref = await runOn(CPU_REF, reference, { steps: STEPS, batch: 1 });
    const gpu = await runOn('webgpu', reference, { steps: STEPS, batch: 1 });
    for (const [i, l] of gpu.losses.entries()) {
      const c = ref.losses[i]!;
      for (const k of ['gGan', 'gL1', 'd'] as const) {
        assert.ok(
          Math.abs(l[k] - c[k]) <= 0.02 * Math.abs(c[k]) + 1e-3,
          `step ${i + 1} ${k}: webgpu ${l[k]}, cpu ${c[k]}`,
        );
      }
    }
    assert.ok(gpu.losses.at(-1)!.gL1 < gpu.losses[0]!.gL1, 'L1 falls');
    const { after2, afterLast } = gpu.memory;
    assert.equal(afterLast.numTensors, after2.numTensors);
    assert.equal(afterLast.numBytes, after2.numBytes);
    const gpuBytes = (m: tf.MemoryInfo) => (m as unknown as { numBytesInGPU: number }).numBytesInGPU;
    assert.equal(gpuBytes(afterLast), gpuBytes(after2), 'GPU buffers in use');
    assert.equal(gpu.leaked, 0);
  });

  it('the denoise recipe (residual on a blur, no dropout) in an L1 warm-up step matches cpu', async () => {
    const denoise: ModelConfig = { ...reference, dropout: false, residual: true, residualBlur: 1.5 };
    const cpu = await runOn(CPU_REF, denoise, { steps: 1, batch: 1, adversarial: false });
    const gpu = await runOn('webgpu', denoise, { steps: 1, batch: 1, adversarial: false });
    assertSameStepAsCpu(gpu, cpu);
  });

  it('a device error reported late (here a buffer over the size limit) fails the next step before any weight moves', async () => {
    await tf.setBackend('webgpu');
    const s = createTrainState({ ...reference, dropout: false });
    const at = tf.zeros([1, SIZE, SIZE, 3]) as tf.Tensor4D;
    const before = await Promise.all(s.optG.variables.map(async (v) => Float32Array.from(await v.data())));
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    device.createBuffer({ size: 2 ** 50, usage: GPUBufferUsage.STORAGE });
    await assert.rejects(applyStep(stepGradients(s, at, at)), (e: Error) => {
      assert.match(e.message, /^(WebGPU error: |the GPU ran out of memory)/);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    });
    const after = await Promise.all(s.optG.variables.map(async (v) => Float32Array.from(await v.data())));
    after.forEach((w, i) => {
      assert.deepEqual(w, before[i], `G weight ${i}`);
    });
    assert.equal(s.optG.step, 0);
    at.dispose();
    disposeTrainState(s);
  });

  // Last in this file: the device stays lost for the rest of the process.
  it('a lost device fails the next step with one line naming the loss, before any weight moves', async () => {
    await tf.setBackend('webgpu');
    const s = createTrainState({ ...reference, dropout: false });
    const at = tf.zeros([1, SIZE, SIZE, 3]) as tf.Tensor4D;
    (tf.backend() as unknown as { device: GPUDevice }).device.destroy();
    await assert.rejects(applyStep(stepGradients(s, at, at)), (e: Error) => {
      assert.match(e.message, /^the WebGPU device was lost \(destroyed: /);
      assert.ok(!e.message.includes('\n'), 'one line');
      return true;
    });
    assert.equal(s.optG.step, 0, 'no update applied');
  });
});
