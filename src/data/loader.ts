import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { type Logger, silentLogger, UserError } from '../util/log.js';
import { listPairs } from './check.js';
import { readDatasetInfo } from './dataset.js';
import { applyDegradation, type Degradation, parseDegradation } from './degrade.js';
import { crop, type RgbImage } from './image.js';
import { Rng } from './rng.js';
import { DIRECTIONS, type LoaderOptions, type PairBatch, type PairSource, type Split } from './types.js';

export { checkDataset } from './check.js';

/** What one pair of one epoch gets: the same crop and flip for both sides, so they stay aligned. */
interface ItemPlan {
  name: string;
  epoch: number;
  /** Side of the resized image the crop is cut from (== the output side when not cropping). */
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
  /** Side of the batches' images: the crop side, or the whole (resized) image. */
  readonly side: number;
  private readonly degrade?: Degradation[];

  constructor(
    readonly dir: string,
    readonly split: Split,
    private readonly names: string[],
    private readonly opts: LoaderOptions,
    private readonly log: Logger,
  ) {
    this.augment = opts.augment && split === 'train';
    this.side = opts.cropSize ?? opts.size;
    this.degrade = split === 'train' && opts.degrade?.length ? opts.degrade : undefined;
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
    const jitter = this.augment && (this.opts.crop ?? true);
    const flip = this.augment && (this.opts.flip ?? true);
    const resize = jitter ? Math.floor(size * (this.opts.jitter ?? 1.12)) : size;
    // Without cropSize this draws exactly what it always did (the jitter crop's place, then the flip).
    const crop = jitter || this.side < resize;
    // --scale-jitter's side per pair, from its own stream, so that without it nothing else draws differently.
    const shrink = this.degrade && (this.opts.scaleJitter ?? 1) < 1 ? this.shrinkRange() : undefined;
    const shrinkRng = Rng.derive(seed, 'scale-jitter', epoch);
    const items = names.map((name) => {
      const side = shrink ? shrink.min + shrinkRng.int(shrink.max - shrink.min + 1) : resize;
      const cut = crop || side > this.side;
      return {
        name,
        epoch,
        resize: side,
        left: cut ? rng.int(side - this.side + 1) : 0,
        top: cut ? rng.int(side - this.side + 1) : 0,
        flip: flip && rng.next() < 0.5,
      };
    });
    const out: ItemPlan[][] = [];
    for (let i = 0; i < items.length; i += batchSize) out.push(items.slice(i, i + batchSize));
    if (this.opts.dropLast && out.length && out[out.length - 1]!.length < batchSize) out.pop();
    return out;
  }

  /** The sides --scale-jitter shrinks a pair to: from scaleJitter x size (not below the crop) to size. */
  private shrinkRange(): { min: number; max: number } {
    const max = this.opts.size;
    return { min: Math.min(max, Math.max(this.side, Math.round(max * this.opts.scaleJitter!))), max };
  }

  /** One side of a pair: a file, or pixels already decoded (a degradation drawn on the fly). */
  private async decodeSide(
    input: string | RgbImage,
    p: ItemPlan,
    into: Float32Array,
    offset: number,
  ): Promise<void> {
    const size = this.side;
    const source =
      typeof input === 'string'
        ? sharp(input, { failOn: 'truncated' })
        : sharp(input.data, { raw: { width: input.width, height: input.height, channels: 3 } });
    // fit 'fill' ignores aspect, as pix2pix's own loader does: dataset images are square already, and a
    // foreign non-square set is better stretched than cropped away.
    let img = source.resize(p.resize, p.resize, { fit: 'fill' });
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
    toUnit(data, into, offset);
  }

  /**
   * `--degrade-on-the-fly`: B decoded once at its stored size, A drawn from it with a generator of
   * (seed, epoch, name) alone, so batching, prefetch order and resuming never change what is drawn.
   */
  private async decodeDegraded(p: ItemPlan, a: Float32Array, b: Float32Array, offset: number) {
    const steps = this.degrade!;
    const { data, info } = await sharp(join(this.dir, this.split, 'B', p.name), { failOn: 'truncated' })
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    let clean: RgbImage = {
      width: info.width,
      height: info.height,
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
    };
    // --scale-jitter: the clean side shrunk before anything is drawn, so the noise keeps its own scale.
    if (p.resize < info.width && (this.opts.scaleJitter ?? 1) < 1) clean = await shrinkRgb(clean, p.resize);
    const rng = Rng.derive(this.opts.seed, 'degrade-on-the-fly', p.epoch, p.name);
    if (clean.width === p.resize && clean.height === p.resize && steps.every((s) => s.pixelwise)) {
      // No resampling to do and a per-pixel degradation: cut the crop in place and draw the noise for
      // it alone (a 128 px crop of a 256 px image: a quarter of the draws, and no sharp pipeline).
      // Sharp's decode-resize-crop path cost more CPU than the denoise preset's step itself.
      const crop = cropRgb(clean, p, this.side);
      toUnit((await applyDegradation(steps, crop, rng)).data, a, offset);
      toUnit(crop.data, b, offset);
      return;
    }
    const degraded = await applyDegradation(steps, clean, rng);
    await Promise.all([this.decodeSide(degraded, p, a, offset), this.decodeSide(clean, p, b, offset)]);
  }

  private async decode(batch: ItemPlan[]): Promise<Decoded> {
    const t0 = performance.now();
    const px = this.side * this.side * 3;
    const a = new Float32Array(batch.length * px);
    const b = new Float32Array(batch.length * px);
    const ok = await Promise.all(
      batch.map(async (p, i) => {
        // Both sides settle before the pair is judged: with Promise.all, a side that fails fast would
        // let compaction move other pairs into this slot while the other side is still writing to it.
        const sides = await Promise.allSettled(
          this.degrade
            ? [this.decodeDegraded(p, a, b, i * px)]
            : [
                this.decodeSide(join(this.dir, this.split, 'A', p.name), p, a, i * px),
                this.decodeSide(join(this.dir, this.split, 'B', p.name), p, b, i * px),
              ],
        );
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
      const size = this.side;
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
  if (opts.cropSize !== undefined && !(posInt(opts.cropSize) && opts.cropSize <= opts.size)) {
    throw new UserError(
      `crop size must be a positive integer <= the image size ${opts.size}, got ${opts.cropSize}`,
    );
  }
  if (opts.scaleJitter !== undefined && !(opts.scaleJitter > 0 && opts.scaleJitter <= 1))
    throw new UserError(`scale jitter must be in (0, 1], got ${opts.scaleJitter}`);
  if (opts.jitter !== undefined && !(opts.jitter >= 1))
    throw new UserError(`jitter must be >= 1, got ${opts.jitter}`);
  if (!DIRECTIONS.includes(opts.direction)) {
    throw new UserError(`direction must be one of ${DIRECTIONS.join(', ')}, got ${opts.direction}`);
  }
}

/**
 * The degradation `--degrade-on-the-fly` re-draws: the one dataset.json records for a dataset whose A
 * side `prepare` (or `demo`) made from B. Any other dataset is a one-line UserError saying why.
 */
export async function onTheFlyDegradation(dir: string): Promise<Degradation[]> {
  const info = await readDatasetInfo(dir);
  const spec = info?.options.degrade;
  const why = !info
    ? 'it has no dataset.json'
    : info.kind !== 'photos' && info.kind !== 'synthetic'
      ? `its A side is real data (dataset.json kind '${info.kind}'${spec ? `, with ${spec} applied on top` : ''}), not made from B`
      : typeof spec !== 'string' || spec === ''
        ? 'its dataset.json records no degradation'
        : undefined;
  if (why) {
    throw new UserError(
      `--degrade-on-the-fly needs a dataset whose A side pix2pix prepare made from B with a synthetic degradation (e.g. --task denoise), and ${dir} is not one: ${why}`,
    );
  }
  return parseDegradation(spec as string);
}

/** Whether re-drawing `steps` can give another A: only the noises draw random numbers. */
export const isRandomDegradation = (steps: Degradation[]): boolean =>
  steps.some((s) => /^(gaussian|poisson|saltpepper):/.test(s.spec));

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

/** 8-bit values to [-1, 1] floats at `offset` of `into`. */
/** `img` resampled to side x side (sharp's default Lanczos 3, which averages when shrinking). */
async function shrinkRgb(img: RgbImage, side: number): Promise<RgbImage> {
  const data = await sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(side, side, { fit: 'fill' })
    .raw({ depth: 'uchar' })
    .toBuffer();
  return { width: side, height: side, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

function toUnit(data: Uint8Array, into: Float32Array, offset: number): void {
  for (let i = 0; i < data.length; i++) into[offset + i] = data[i]! / 127.5 - 1;
}

/** The side x side crop at (p.left, p.top) of `img`, mirrored when p.flip: what sharp's extract + flop give. */
export function cropRgb(
  img: RgbImage,
  p: { left: number; top: number; flip: boolean },
  side: number,
): RgbImage {
  const out = crop(img, p.left, p.top, side, side);
  if (p.flip) {
    const d = out.data;
    for (let row = 0; row < side * side * 3; row += side * 3) {
      for (let l = row, r = row + (side - 1) * 3; l < r; l += 3, r -= 3) {
        for (let k = 0; k < 3; k++) [d[l + k], d[r + k]] = [d[r + k]!, d[l + k]!];
      }
    }
  }
  return out;
}
