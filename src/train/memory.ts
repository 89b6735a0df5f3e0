import type { NormKind } from '../models/layers.js';
import { UserError } from '../util/log.js';

/**
 * Bytes of activations and intermediate gradients one 256 px pair holds during a training step,
 * measured with `pix2pix bench` (peak RSS at batch 4 and 16, whole batch: 2223 and 5326 MB on
 * native, so ~260 MB a pair; WASM: 2.1 GB at batch 4). Rounded up, and scaled by the pixel count for
 * other sizes: the deep 512-channel levels make small images relatively dearer, so this errs high.
 */
const BYTES_PER_PAIR_256: Record<string, number> = { native: 300e6, cpu: 300e6, wasm: 560e6 };
/** WASM's memory is a 4 GB heap, of which the networks, their gradients and Adam's moments take ~1.2 GB. */
const WASM_ACTIVATION_BUDGET = 2.4e9;

export interface MicroBatchChoice {
  microBatch: number;
  /** One line saying why, for the log. */
  reason: string;
}

/** The micro-batch that cuts `batch` into the fewest equal chunks of at most `fits` pairs. */
function equalChunks(batch: number, fits: number): number {
  return Math.ceil(batch / Math.ceil(batch / fits));
}

/**
 * A rough bound on the memory one training step holds: each parameter as weight, gradient and
 * Adam's two moments (16 bytes), plus `pairs` pairs' activations at the CPU backends' measured rate
 * (errs high). For the train page, which shows it before a GPU of unknown size is asked for it.
 */
export function stepMemoryBytes(o: { params: number; size: number; pairs: number }): number {
  return o.params * 16 + BYTES_PER_PAIR_256.native! * (o.size / 256) ** 2 * o.pairs;
}

/**
 * The largest micro-batch whose activations fit the memory a step can use: on WASM its heap, elsewhere
 * a quarter of the machine's memory or half of what is free, whichever is less (peak RSS then stays
 * well under half the machine). The batch is then cut into equal chunks. Batch norm needs the whole
 * batch at once, so a batch norm batch that does not fit is refused rather than silently changed.
 */
export function chooseMicroBatch(opts: {
  backend: string;
  size: number;
  batchSize: number;
  norm: NormKind;
  ngf?: number;
  ndf?: number;
  fullRes?: boolean;
  /**
   * The machine's memory (os.totalmem(), os.freemem()); the CPU backends need it. Passed in, so the
   * browser's worker can bundle this module (no node:os).
   */
  memory?: { total: number; free: number };
  /** The WebGPU adapter's binding limit, on webgpu. */
  gpu?: { maxStorageBufferBindingSize: number };
}): MicroBatchChoice {
  if (opts.gpu) return chooseGpuMicroBatch({ ...opts, gpu: opts.gpu });
  let budget = WASM_ACTIVATION_BUDGET;
  if (opts.backend !== 'wasm') {
    if (!opts.memory) throw new Error(`choosing a micro-batch on ${opts.backend} needs the machine's memory`);
    budget = Math.min(opts.memory.total / 4, opts.memory.free / 2);
  }
  const perPair = (BYTES_PER_PAIR_256[opts.backend] ?? BYTES_PER_PAIR_256.native!) * (opts.size / 256) ** 2;
  const fits = Math.max(1, Math.floor(budget / perPair));
  const gb = (x: number) => `${(x / 1e9).toFixed(1)} GB`;
  const where = opts.backend === 'wasm' ? 'of the 4 GB WASM heap' : 'of this machine';
  if (fits >= opts.batchSize) {
    return {
      microBatch: opts.batchSize,
      reason: `the whole batch of ${opts.batchSize} fits (~${gb(perPair * opts.batchSize)} of activations; budget ${gb(budget)} ${where})`,
    };
  }
  if (opts.norm === 'batch') {
    throw new UserError(
      `a batch of ${opts.batchSize} at ${opts.size} px needs ~${gb(perPair * opts.batchSize)} of activations, more than the ${gb(budget)} ${where} allows, and --norm batch cannot split it: use --norm instance or a smaller --batch-size`,
    );
  }
  const microBatch = equalChunks(opts.batchSize, fits);
  return {
    microBatch,
    reason: `gradients of each batch of ${opts.batchSize} computed ${microBatch} pairs at a time (--micro-batch ${microBatch}: ~${gb(perPair * microBatch)} of activations, budget ${gb(budget)} ${where})`,
  };
}

/**
 * On WebGPU, which reports no memory size: the largest micro-batch whose biggest single tensor fits
 * the adapter's binding limit (a kernel cannot bind more). That tensor is a feature map at half the
 * side with max(2 ngf, ndf) channels (G's outermost concat, D's first layer; with --full-res G's
 * concat is at the full side), doubled for the kernels' temporaries. A device that runs out of
 * memory beyond that is reported after the step's read, before any update (src/backend/webgpu.ts),
 * with the advice to lower --micro-batch.
 */
function chooseGpuMicroBatch(opts: {
  size: number;
  batchSize: number;
  norm: NormKind;
  ngf?: number;
  ndf?: number;
  fullRes?: boolean;
  gpu: { maxStorageBufferBindingSize: number };
}): MicroBatchChoice {
  const limit = opts.gpu.maxStorageBufferBindingSize;
  const { ngf = 64, ndf = 64 } = opts;
  // The larger of G's outermost concat and D's first stage, and the option that sets it.
  const g = (opts.fullRes ? opts.size : opts.size / 2) ** 2 * 2 * ngf;
  const d = (opts.size / 2) ** 2 * ndf;
  const byNgf = g >= d;
  const largest = 2 * Math.max(g, d) * 4;
  const option = byNgf ? 'ngf' : 'ndf';
  const mib = (x: number) => `${Math.round(x / 2 ** 20)} MiB`;
  if (largest > limit) {
    throw new UserError(
      `the model is too big for this WebGPU adapter: one ${opts.size} px pair at ${option} ${byNgf ? ngf : ndf} makes a ~${mib(largest)} tensor and the adapter binds at most ${mib(limit)}; lower the size or ${option}`,
    );
  }
  const fits = Math.floor(limit / largest);
  const why = `WebGPU reports no memory size; the adapter binds at most ${mib(limit)} and a pair's largest tensor is ~${mib(largest)}`;
  if (fits >= opts.batchSize) {
    return {
      microBatch: opts.batchSize,
      reason: `the whole batch of ${opts.batchSize} (${why}); if the GPU runs out of memory, give --micro-batch`,
    };
  }
  if (opts.norm === 'batch') {
    throw new UserError(
      `a batch of ${opts.batchSize} at ${opts.size} px makes tensors larger than the ${mib(limit)} this WebGPU adapter can bind, and --norm batch cannot split it: use --norm instance or a smaller --batch-size`,
    );
  }
  const microBatch = equalChunks(opts.batchSize, fits);
  return {
    microBatch,
    reason: `gradients of each batch of ${opts.batchSize} computed ${microBatch} pairs at a time (--micro-batch ${microBatch}: ${why})`,
  };
}
