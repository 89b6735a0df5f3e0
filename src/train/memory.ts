import { freemem, totalmem } from 'node:os';
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
  /** For tests; default: os.totalmem() and os.freemem(). */
  memory?: { total: number; free: number };
}): MicroBatchChoice {
  const { total, free } = opts.memory ?? { total: totalmem(), free: freemem() };
  const budget = opts.backend === 'wasm' ? WASM_ACTIVATION_BUDGET : Math.min(total / 4, free / 2);
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
  const chunks = Math.ceil(opts.batchSize / fits);
  const microBatch = Math.ceil(opts.batchSize / chunks);
  return {
    microBatch,
    reason: `gradients of each batch of ${opts.batchSize} computed ${microBatch} pairs at a time (--micro-batch ${microBatch}: ~${gb(perPair * microBatch)} of activations, budget ${gb(budget)} ${where})`,
  };
}
