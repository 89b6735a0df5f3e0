import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { listPairs } from './check.js';
import { Rng } from './rng.js';
import { DIRECTIONS, type LoaderOptions, type PairBatch, type PairSource, type Split } from './types.js';

export { checkDataset } from './check.js';

/** What one pair of one epoch gets: the same crop and flip for both sides, so they stay aligned. */
interface ItemPlan {
  name: string;
  /** Side of the resized image the crop is cut from (== size when not cropping). */
  resize: number;
  left: number;
  top: number;
  flip: boolean;
}

interface Decoded {
  a: Float32Array;
  b: Float32Array;
  names: string[];
  ms: number;
}

export interface LoaderStats {
  /** Batches decoded so far, over all epochs. */
  batches: number;
  /** Sum of wall time spent decoding and augmenting batches (they overlap the consumer). */
  decodeMs: number;
  /** Time the consumer spent waiting for a batch that was not ready yet. */
  waitMs: number;
  /** Most batches decoded or decoding ahead of the consumer at once: never above `prefetch`. */
  maxAhead: number;
  /** Pairs skipped because they could not be decoded. */
  skipped: number;
}

/**
 * Streams one split of a dataset as [-1, 1] NHWC float batches. Decoding, resizing, cropping and flipping
 * run in sharp (libvips on libuv's threadpool), up to `prefetch` batches ahead of the consumer, so a
 * training step overlaps the decoding of the next batches; only those batches are ever held in memory.
 * Tensors are made at hand-over, so a consumer that stops early leaves none behind.
 */
export class PairLoader implements PairSource {
  readonly stats: LoaderStats = { batches: 0, decodeMs: 0, waitMs: 0, maxAhead: 0, skipped: 0 };
  private readonly augment: boolean;

  constructor(
    readonly dir: string,
    readonly split: Split,
    private readonly names: string[],
    private readonly opts: LoaderOptions,
    private readonly log: Logger,
  ) {
    this.augment = opts.augment && split === 'train';
  }

  get length(): number {
    return this.names.length;
  }

  /** Number of batches per epoch under `dropLast`. */
  get batchCount(): number {
    const n = this.names.length / this.opts.batchSize;
    return this.opts.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  /** The epoch's pairs in order with their augmentation, fixed by (seed, epoch) alone. */
  plan(epoch: number): ItemPlan[][] {
    const { size, seed, batchSize } = this.opts;
    const names = [...this.names];
    if (this.opts.shuffle ?? this.split === 'train')
      Rng.derive(seed, 'order', this.split, epoch).shuffle(names);
    const rng = Rng.derive(seed, 'augment', epoch);
    const crop = this.augment && (this.opts.crop ?? true);
    const flip = this.augment && (this.opts.flip ?? true);
    const resize = crop ? Math.floor(size * (this.opts.jitter ?? 1.12)) : size;
    const items = names.map((name) => ({
      name,
      resize,
      left: crop ? rng.int(resize - size + 1) : 0,
      top: crop ? rng.int(resize - size + 1) : 0,
      flip: flip && rng.next() < 0.5,
    }));
    const out: ItemPlan[][] = [];
    for (let i = 0; i < items.length; i += batchSize) out.push(items.slice(i, i + batchSize));
    if (this.opts.dropLast && out.length && out[out.length - 1]!.length < batchSize) out.pop();
    return out;
  }

  private async decodeSide(path: string, p: ItemPlan, into: Float32Array, offset: number): Promise<void> {
    const size = this.opts.size;
    // fit 'fill' ignores aspect, as pix2pix's own loader does: dataset images are square already, and a
    // foreign non-square set is better stretched than cropped away.
    let img = sharp(path, { failOn: 'truncated' }).resize(p.resize, p.resize, { fit: 'fill' });
    if (p.resize !== size) img = img.extract({ left: p.left, top: p.top, width: size, height: size });
    if (p.flip) img = img.flop();
    const { data, info } = await img
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.width !== size || info.height !== size || info.channels !== 3) {
      throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}`);
    }
    for (let i = 0; i < data.length; i++) into[offset + i] = data[i]! / 127.5 - 1;
  }

  private async decode(batch: ItemPlan[]): Promise<Decoded> {
    const t0 = performance.now();
    const px = this.opts.size * this.opts.size * 3;
    const a = new Float32Array(batch.length * px);
    const b = new Float32Array(batch.length * px);
    const ok = await Promise.all(
      batch.map(async (p, i) => {
        // Both sides settle before the pair is judged: with Promise.all, a side that fails fast would
        // let compaction move other pairs into this slot while the other side is still writing to it.
        const sides = await Promise.allSettled([
          this.decodeSide(join(this.dir, this.split, 'A', p.name), p, a, i * px),
          this.decodeSide(join(this.dir, this.split, 'B', p.name), p, b, i * px),
        ]);
        const failed = sides.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (!failed) return true;
        this.stats.skipped++;
        this.log.warn(`skipping pair ${this.split}/${p.name}: ${(failed.reason as Error).message}`);
        return false;
      }),
    );
    let n = 0;
    const names: string[] = [];
    for (let i = 0; i < batch.length; i++) {
      if (!ok[i]) continue;
      // Compacts survivors to the front; copyWithin is a no-op while nothing has been skipped.
      a.copyWithin(n * px, i * px, (i + 1) * px);
      b.copyWithin(n * px, i * px, (i + 1) * px);
      names.push(batch[i]!.name);
      n++;
    }
    return { a: a.subarray(0, n * px), b: b.subarray(0, n * px), names, ms: performance.now() - t0 };
  }

  /** The epoch's batches in order; `from` skips the first ones without decoding them (a resume mid-epoch). */
  async *batches(epoch: number, from = 0): AsyncIterable<PairBatch> {
    const plan = this.plan(epoch).slice(from);
    const prefetch = Math.max(1, this.opts.prefetch ?? 2);
    const queue: Promise<Decoded>[] = [];
    let next = 0;
    const fill = (): void => {
      while (queue.length < prefetch && next < plan.length) {
        const p = this.decode(plan[next++]!);
        // A consumer that stops early never awaits these; keep that from being an unhandled rejection.
        p.catch(() => {});
        queue.push(p);
      }
      this.stats.maxAhead = Math.max(this.stats.maxAhead, queue.length);
    };
    fill();
    let yielded = 0;
    while (queue.length) {
      const t0 = performance.now();
      const d = await queue.shift()!;
      this.stats.waitMs += performance.now() - t0;
      this.stats.batches++;
      this.stats.decodeMs += d.ms;
      fill();
      if (d.names.length === 0) continue;
      const { size } = this.opts;
      const shape: [number, number, number, number] = [d.names.length, size, size, 3];
      const ta = tf.tensor4d(d.a, shape);
      const tb = tf.tensor4d(d.b, shape);
      yielded++;
      yield this.opts.direction === 'BtoA'
        ? { a: tb, b: ta, names: d.names }
        : { a: ta, b: tb, names: d.names };
    }
    if (yielded === 0 && plan.length > 0) {
      throw new UserError(
        `no pair of ${join(this.dir, this.split)} could be decoded (see the warnings above)`,
      );
    }
  }
}

function validate(opts: LoaderOptions): void {
  const posInt = (v: number): boolean => Number.isInteger(v) && v > 0;
  if (!posInt(opts.batchSize))
    throw new UserError(`batch size must be a positive integer, got ${opts.batchSize}`);
  if (!posInt(opts.size)) throw new UserError(`image size must be a positive integer, got ${opts.size}`);
  if (opts.jitter !== undefined && !(opts.jitter >= 1))
    throw new UserError(`jitter must be >= 1, got ${opts.jitter}`);
  if (!DIRECTIONS.includes(opts.direction)) {
    throw new UserError(`direction must be one of ${DIRECTIONS.join(', ')}, got ${opts.direction}`);
  }
}

/**
 * Opens one split of a dataset folder (dataset.json + train/{A,B} + test/{A,B}, or the bare folders).
 * Cheap: it lists names only; call checkDataset first for the full validation.
 */
export async function openPairs(
  dir: string,
  split: Split,
  opts: LoaderOptions,
  log: Logger = silentLogger,
): Promise<PairLoader> {
  validate(opts);
  const names = await listPairs(dir, split);
  return new PairLoader(dir, split, names, opts, log);
}
