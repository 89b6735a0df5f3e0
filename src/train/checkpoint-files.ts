// A checkpoint's files as bytes from a TrainState, with no Node import (its names and meta.json are
// src/run's). src/run/checkpoints.ts writes them to disk (fsync, rename, `latest`); the browser's
// train page puts them in the run folder it offers as a download, which `pix2pix train --resume` then continues.
import { modelFiles } from '../models/model-files.js';
import {
  CHECKPOINT_META,
  DISCRIMINATOR_DIR,
  GENERATOR_DIR,
  OPTIMIZER_D,
  OPTIMIZER_G,
} from '../run/layout.js';
import type { CheckpointMeta } from '../run/records.js';
import { sha256HexAsync } from '../util/sha256.js';
import type { FileBytes } from '../util/zip.js';
import type { Adam, AdamSnapshot } from './adam.js';
import type { TrainState } from './step.js';

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
