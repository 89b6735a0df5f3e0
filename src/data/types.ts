import type * as tf from '@tensorflow/tfjs-core';
import type { Degradation } from './degrade.js';

/** One batch of aligned pairs, NHWC in [-1, 1]. The consumer disposes `a` and `b`. */
export interface PairBatch {
  /** Condition (input side). */
  a: tf.Tensor4D;
  /** Target side. */
  b: tf.Tensor4D;
  /** File names (without folder) of the pairs in the batch, in order. */
  names: string[];
}

export type Split = 'train' | 'test';

/** AtoB: A is the condition (input) and B the target; BtoA swaps the sides. */
export const DIRECTIONS = ['AtoB', 'BtoA'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export interface LoaderOptions {
  batchSize: number;
  /** Side of the square crop fed to the networks. */
  size: number;
  /** Train-time augmentation: resize to 1.12x then random crop, and horizontal flip. */
  augment: boolean;
  /** Seeds the per-epoch order and the augmentation. */
  seed: number;
  /** Drop the last partial batch (otherwise it is kept, smaller). */
  dropLast: boolean;
  /** AtoB: A is the condition; BtoA swaps the sides. */
  direction: Direction;
  /** Batches decoded ahead of the consumer (default 2); memory is about (prefetch + 1) batches. */
  prefetch?: number;
  /** With `augment`: the resize-to-`jitter`x-then-random-crop part (default true). */
  crop?: boolean;
  /** With `augment`: the random horizontal flip (default true). */
  flip?: boolean;
  /** With `augment` and `crop`: scale before the random crop (default 1.12, i.e. 286 px for 256). */
  jitter?: number;
  /** Shuffle per epoch (default: train yes, test no, so test batches keep file-name order). */
  shuffle?: boolean;
  /**
   * Side of random square crops cut from each (resized, jittered) pair, at a fresh place every epoch:
   * the batches are cropSize px. Default: `size`, whole images.
   */
  cropSize?: number;
  /**
   * Train split only: A is not read but re-made from B with these steps each time a pair is loaded,
   * seeded by (seed, epoch, pair name), at the stored resolution before any resize, crop or flip.
   */
  degrade?: Degradation[];
  /**
   * With `degrade`, train split only: each pair's clean side is first shrunk to a random side from
   * `scaleJitter` x `size` (never below the crop) up to `size`, then degraded and cropped, so the noise
   * is drawn at the shrunk scale and only the content gets denser. Default 1: no shrinking.
   */
  scaleJitter?: number;
}

/** A split of a dataset that streams batches; memory stays bounded whatever its size. */
export interface PairSource {
  /** Number of pairs in the split. */
  readonly length: number;
  /** Batches of one epoch, in an order fixed by (seed, epoch); `from` skips the first ones. */
  batches(epoch: number, from?: number): AsyncIterable<PairBatch>;
}

/** `format` field of every dataset.json this project writes. */
export const DATASET_FORMAT = 'pix2pix-ts-dataset';

/** How a dataset was made: `photos` degrades clean photos into A; the pair kinds read both sides. */
export type DatasetKind = 'photos' | 'aligned' | 'folders' | 'synthetic';

/** One pair: `<split>/A/<name>` and `<split>/B/<name>`. */
export interface DatasetFile {
  name: string;
  /** `name` of the entry in `sources` it was cut from. */
  source: string;
  /** SHA-256 (hex) of the A and B PNG files. */
  a: string;
  b: string;
  /** Byte lengths of the A and B files: the fast check when hashing is skipped. */
  bytes: [number, number];
}

export interface DatasetSource {
  /** Stem the pair names start with (`<name>-<tile>.png`). */
  name: string;
  /** Path relative to the `--from` folder (for `folders`, the A side's); absent for synthetic data. */
  file?: string;
  /** SHA-256 of that source file (for `folders`, of A and B concatenated as hex: `<a>:<b>`). */
  sha256?: string;
  split: Split;
  /** Pairs this source gave. */
  pairs: number;
}

/** The dataset.json written next to `train/` and `test/`. */
export interface DatasetInfo {
  format: typeof DATASET_FORMAT;
  version: 1;
  kind: DatasetKind;
  /** Width and height, in pixels, of every image. */
  size: number;
  seed: number;
  /**
   * Requested fraction of the pairs sent to train. Whole sources are assigned to one side, chosen so the
   * pairs come as close to it as the sources' pair counts allow; `achievedSplit` is what came out.
   */
  split: number;
  /**
   * Achieved fraction of the pairs in train, `counts.train / (counts.train + counts.test)` rounded to 4
   * decimals (so the test fraction is 1 minus it). Absent when there are no pairs, and in datasets
   * written before it was recorded.
   */
  achievedSplit?: number;
  /** The options that shaped the data (from, task, degrade, stride, ...). */
  options: Record<string, string | number | boolean | null>;
  counts: { train: number; test: number; sources: number; skipped: number; flatTiles: number };
  sources: DatasetSource[];
  /** Inputs left out, each with its reason. */
  skipped: { file: string; reason: string }[];
  files: { train: DatasetFile[]; test: DatasetFile[] };
}
