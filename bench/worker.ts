/**
 * One bench configuration in its own process, so that its peak RSS is its own: times the full
 * pix2pix training step (G and D forward/backward, both Adam updates) or generator inference of the
 * 256x256 reference model on one backend, and prints one JSON line.
 * `onnxruntime` (infer only) exports the same generator to ONNX (src/export/onnx.ts) and runs it in
 * onnxruntime-node on the CPU with as many threads as the machine has cores, as PyTorch gets.
 * `webgpu adapter` prints the adapter's description only, so the bench can name it (and judge it) before
 * it plans its runs.
 * Usage: node --import tsx bench/worker.ts <native|wasm|webgpu|cpu|onnxruntime> <train|infer> <batch> <warmup> <reps> [microBatch]
 *        node --import tsx bench/worker.ts webgpu adapter
 */
import { cpus } from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-layers';
import { type BackendChoice, setupBackend } from '../src/backend/index.js';
import { describeAdapter } from '../src/backend/webgpu.js';
import { generate } from '../src/models/fused.js';
import { DEFAULT_CONFIG } from '../src/train/config.js';
import { createTrainState, disposeTrainState, type TrainState, trainStep } from '../src/train/step.js';

export interface WorkerResult {
  backend: string;
  kind: 'train' | 'infer';
  batch: number;
  /** Micro-batch of the gradient accumulation (0: the whole batch at once). */
  micro_batch: number;
  ms_per_image: number;
  ms_per_step: number;
  times_ms: number[];
  warmup_ms: number[];
  peak_rss_mb: number;
  /** The WebGPU adapter (describeAdapter), and whether it is a software one, when the backend is webgpu. */
  adapter?: string;
  software?: boolean;
  /** Per-kernel milliseconds over the timed steps, where the native backend's profiler was on. */
  kernels?: Array<{ kernel: string; ms: number; calls: number }>;
}

/** What `webgpu adapter` prints: the adapter, and the binding limit `train` plans micro-batches by. */
export interface AdapterProbe {
  adapter: string;
  software: boolean;
  max_binding_bytes: number;
}

const SIZE = 256;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main() {
  const [backend, kind, batchArg, warmupArg, repsArg, microArg] = process.argv.slice(2);
  const batch = Number(batchArg);
  const warmup = Number(warmupArg ?? 1);
  const reps = Number(repsArg ?? 3);
  const ort = backend === 'onnxruntime';
  if (ort && kind !== 'infer') throw new Error('onnxruntime runs inference only');
  const { name, adapter } = await setupBackend((ort ? 'cpu' : backend) as BackendChoice);
  const gpu = adapter ? { adapter: describeAdapter(adapter), software: adapter.software } : {};
  if (kind === 'adapter') {
    if (!adapter) throw new Error(`backend '${name}' has no GPU adapter`);
    const probe: AdapterProbe = {
      adapter: describeAdapter(adapter),
      software: adapter.software,
      max_binding_bytes: adapter.maxStorageBufferBindingSize,
    };
    process.stdout.write(`${JSON.stringify(probe)}\n`);
    return;
  }
  const microBatch = Number(microArg ?? 0);
  const config = { ...DEFAULT_CONFIG, size: SIZE, microBatch };
  const state = createTrainState(config);
  const a = tf.tidy(() => tf.randomUniform([batch, SIZE, SIZE, 3], -1, 1, 'float32', 1)) as tf.Tensor4D;
  const b = tf.tidy(() => tf.randomUniform([batch, SIZE, SIZE, 3], -1, 1, 'float32', 2)) as tf.Tensor4D;
  const run = ort
    ? await onnxRuntimeInference(state, a)
    : kind === 'train'
      ? async () => {
          await trainStep(state, a, b);
        }
      : async () => {
          const y = tf.tidy(() => generate(state.G, a));
          await y.data();
          y.dispose();
        };
  const fence = name === 'webgpu' ? gpuIdle : async () => {};
  const time = async () => {
    const t = performance.now();
    await run();
    await fence();
    return performance.now() - t;
  };
  const repeat = async (n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await time());
    return out;
  };
  const warm = await repeat(warmup);
  const profile = name === 'native' ? await import('../src/backend/native.js') : null;
  profile?.nativeKernelTimes(true);
  const times = await repeat(reps);
  const med = median(times);
  const result: WorkerResult = {
    backend: ort ? 'onnxruntime' : name,
    kind: kind as 'train' | 'infer',
    batch,
    micro_batch: microBatch,
    ms_per_image: med / batch,
    ms_per_step: med,
    times_ms: times,
    warmup_ms: warm,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
    ...gpu,
  };
  const kernels = profile?.nativeKernelTimes();
  if (kernels?.length) {
    result.kernels = kernels.map((k) => ({ kernel: k.kernel, ms: k.ms / reps, calls: k.calls / reps }));
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/**
 * Waits until the GPU has run everything queued. A training step resolves once its losses are read,
 * before its Adam updates have run on the GPU: without this each timed step would carry the previous
 * step's updates instead of its own. PyTorch's CUDA anchor synchronises after each step likewise.
 */
async function gpuIdle(): Promise<void> {
  const b = tf.backend() as unknown as {
    ensureCommandEncoderReady(): void;
    endComputePassEncoder(): void;
    submitQueue(): void;
    queue: GPUQueue;
  };
  // As tfjs does before its own reads: a compute pass still open would make the submit invalid.
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  b.submitQueue();
  await b.queue.onSubmittedWorkDone();
}

/**
 * A function running G's ONNX export on `x` in onnxruntime-node (a dev dependency: imported here
 * only). The tfjs networks are disposed once exported, so the peak RSS is ONNX Runtime's own (the
 * model's bytes and the session), as for a user who loads an exported file.
 */
async function onnxRuntimeInference(state: TrainState, x: tf.Tensor4D): Promise<() => Promise<void>> {
  const ort = await import('onnxruntime-node');
  const { layersModelToOnnx } = await import('../src/export/onnx.js');
  const bytes = (await layersModelToOnnx(state.G)).bytes;
  const input = new ort.Tensor('float32', Float32Array.from(x.dataSync()), x.shape);
  disposeTrainState(state);
  const session = await ort.InferenceSession.create(bytes, {
    intraOpNumThreads: cpus().length,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
  });
  return async () => {
    const out = await session.run({ input });
    out['output']!.dispose();
  };
}

try {
  await main();
} catch (e) {
  // One line the bench prints as the reason (an uncaught error's last stderr line is Node's version).
  process.stdout.write(`${JSON.stringify({ error: (e as Error).message.split('\n')[0] })}\n`);
  process.exitCode = 1;
}
