// A checkpoint's files as bytes, with no Node import: the one definition of the checkpoint layout.
// checkpoint.ts writes them to disk (fsync, rename, `latest`); the browser's train page puts them in
// the run folder it offers as a download, which `pix2pix train --resume` then continues.
import { modelFiles } from '../models/model-files.js';
import { sha256HexAsync } from '../util/sha256.js';
import type { FileBytes } from '../util/zip.js';
import type { Adam, AdamSnapshot } from './adam.js';
import type { TrainState } from './step.js';

export interface CheckpointMeta {
  epoch: number;
  /** Global step count when the checkpoint was written. */
  step: number;
  time: string;
  /** Wall time spent training (not evaluating) since the run began, over all its resumes. */
  trainSeconds?: number;
  /** Training images seen since the run began. */
  images?: number;
  /**
   * Batches of `epoch` done when the checkpoint was written mid-epoch (`--save-every-steps`, or a
   * signal); absent when the epoch was complete. A resume continues with the next batch.
   */
  batchInEpoch?: number;
  /** Byte length and SHA-256 of every other file of the checkpoint, checked when it is loaded. */
  files?: Record<string, { bytes: number; sha256: string }>;
}

export const CHECKPOINT_META = 'meta.json';
export const GENERATOR_DIR = 'generator';
export const DISCRIMINATOR_DIR = 'discriminator';
export const OPTIMIZER_G = 'optimizer-g';
export const OPTIMIZER_D = 'optimizer-d';
/** Only resuming needs these (twice the models' size): checkpoint.ts keeps them in the latest checkpoint only. */
export const OPTIMIZER_FILES = [OPTIMIZER_G, OPTIMIZER_D].flatMap((o) => [`${o}.bin`, `${o}.json`]);

export const checkpointName = (epoch: number) => `epoch-${String(epoch).padStart(4, '0')}`;

/** A mid-epoch checkpoint's folder: kept only until a newer checkpoint is durable. */
export const midEpochName = (meta: Pick<CheckpointMeta, 'epoch' | 'step'>) =>
  `${checkpointName(meta.epoch)}-step-${String(meta.step).padStart(8, '0')}`;

/** The folder name under checkpoints/ of the checkpoint `meta` describes: mid-epoch or the epoch's own. */
export const checkpointDirName = (meta: Pick<CheckpointMeta, 'epoch' | 'step' | 'batchInEpoch'>) =>
  meta.batchInEpoch ? midEpochName(meta) : checkpointName(meta.epoch);

const utf8 = (text: string) => new TextEncoder().encode(text);

/** `NAME.bin`, the moments as float32 (m then v, in variable order), and `NAME.json`, step and shapes. */
async function* optimizerFiles(opt: Adam, name: string): AsyncGenerator<FileBytes> {
  const { step, shapes, flat } = await opt.snapshot();
  yield { path: `${name}.bin`, data: new Uint8Array(flat.buffer, flat.byteOffset, flat.byteLength) };
  yield { path: `${name}.json`, data: utf8(JSON.stringify({ step, shapes })) };
}

/** The optimizer state that optimizerFiles wrote, from the text of `NAME.json` and the bytes of `NAME.bin`. */
export function parseOptimizerFiles(json: string, bin: Uint8Array): AdamSnapshot {
  const { step, shapes } = JSON.parse(json) as { step: number; shapes: number[][] };
  if (bin.byteLength % 4) throw new Error(`optimizer state of ${bin.byteLength} bytes is not float32`);
  // A Float32Array view needs 4-byte alignment; a copy where the bytes sit elsewhere.
  const bytes = bin.byteOffset % 4 ? bin.slice() : bin;
  return { step, shapes, flat: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
}

/** Lowercase hex SHA-256 of a file's bytes. */
export type Sha256Hex = (data: Uint8Array) => string | Promise<string>;

/**
 * The files of a checkpoint of `s`, one at a time (a caller that writes each before asking for the
 * next holds one file in memory, not the whole checkpoint): `generator/` and `discriminator/` (as
 * modelFiles), `optimizer-g.bin/.json`, `optimizer-d.bin/.json`, and last `meta.json`: `meta` with
 * the byte length and SHA-256 of every other file, the list that loading checks. `sha256` defaults
 * to WebCrypto's (Node passes node:crypto's, several times faster there).
 */
export async function* checkpointFiles(
  s: Pick<TrainState, 'G' | 'D' | 'optG' | 'optD'>,
  meta: CheckpointMeta,
  sha256: Sha256Hex = sha256HexAsync,
): AsyncGenerator<FileBytes> {
  const files: NonNullable<CheckpointMeta['files']> = {};
  const parts = async function* () {
    for (const [model, dir] of [
      [s.G, GENERATOR_DIR],
      [s.D, DISCRIMINATOR_DIR],
    ] as const) {
      for (const f of await modelFiles(model)) yield { path: `${dir}/${f.path}`, data: f.data };
    }
    yield* optimizerFiles(s.optG, OPTIMIZER_G);
    yield* optimizerFiles(s.optD, OPTIMIZER_D);
  };
  for await (const f of parts()) {
    files[f.path] = { bytes: f.data.byteLength, sha256: await sha256(f.data) };
    yield f;
  }
  const { files: _, ...rest } = meta;
  const listed = Object.fromEntries(
    Object.keys(files)
      .sort()
      .map((k) => [k, files[k]!]),
  );
  yield { path: CHECKPOINT_META, data: utf8(JSON.stringify({ ...rest, files: listed }, null, 2)) };
}
