// The files of a TensorFlow.js LayersModel export as bytes, with no Node import: tfjs.ts writes them
// for `pix2pix export`, and the browser's train page offers the same files as its model download.
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { layersModelJson, MODEL_JSON, modelArtifacts } from '../models/model-files.js';
import { concatBytes, type FileBytes } from '../util/zip.js';
import { toFloat16 } from './float16.js';

export type Quantize = 'float16';
export const QUANTIZE_CHOICES = ['float16'] as const;

/** tfjs's converter cuts weights into 4 MiB shard files; so do we (they cache and stream well). */
export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

/** Names of the weight shard files: the converter's `group1-shardKofN.bin`. */
export const shardName = (k: number, n: number) => `group1-shard${k}of${n}.bin`;
export const SHARD_FILE = /^group\d+-shard\d+of\d+\.bin$/;

export interface TfjsExportOptions {
  quantize?: Quantize;
  shardBytes?: number;
  /** Written as model.json's `convertedBy`. */
  convertedBy?: string;
}

export interface TfjsExport {
  /** model.json and the shards, relative to the folder. */
  files: string[];
  shards: string[];
  /** Bytes of weight data over all shards. */
  weightBytes: number;
  weightDtype: 'float32' | 'float16';
  weightCount: number;
}

/** Re-encodes float32 weights as float16 with the manifest's quantization entry, which tfjs decodes on load. */
function quantizeFloat16(
  specs: tf.io.WeightsManifestEntry[],
  data: ArrayBuffer,
): { specs: tf.io.WeightsManifestEntry[]; data: Uint8Array<ArrayBuffer> } {
  const parts: Uint8Array[] = [];
  const out: tf.io.WeightsManifestEntry[] = [];
  let offset = 0;
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.quantization || spec.dtype !== 'float32') {
      throw new Error(
        `weight ${spec.name} is ${spec.dtype}${spec.quantization ? ', already quantized' : ''}`,
      );
    }
    const values = new Float32Array(data.slice(offset, offset + count * 4));
    offset += count * 4;
    const half = toFloat16(values);
    parts.push(new Uint8Array(half.buffer));
    out.push({ ...spec, quantization: { dtype: 'float16' } });
  }
  if (offset !== data.byteLength) throw new Error('weight data and weight specs disagree in size');
  return { specs: out, data: concatBytes(parts) };
}

/**
 * `model` as a TensorFlow.js LayersModel: the weight shards, then `model.json` (format
 * 'layers-model', the topology, one weights-manifest group whose shard paths are relative to
 * model.json), the layout `tf.loadLayersModel(url)` fetches in a browser. `quantize: 'float16'`
 * halves the weights; tfjs dequantizes them to float32 when it loads them.
 */
export async function layersModelFiles(
  model: tfl.LayersModel,
  opts: TfjsExportOptions = {},
): Promise<TfjsExport & { entries: FileBytes[] }> {
  const shardBytes = opts.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!(shardBytes > 0)) throw new Error(`shard size must be positive (got ${shardBytes})`);
  const artifacts = await modelArtifacts(model);
  let specs = artifacts.weightSpecs ?? [];
  let data = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
  if (opts.quantize === 'float16') {
    ({ specs, data } = quantizeFloat16(specs, data.buffer as ArrayBuffer));
  }
  const n = Math.max(1, Math.ceil(data.byteLength / shardBytes));
  const shards = Array.from({ length: n }, (_, i) => shardName(i + 1, n));
  const entries: FileBytes[] = shards.map((path, i) => ({
    path,
    data: data.subarray(i * shardBytes, Math.min((i + 1) * shardBytes, data.byteLength)),
  }));
  const json = layersModelJson(artifacts, shards, specs, opts.convertedBy ?? 'pix2pix-ts');
  entries.push({ path: MODEL_JSON, data: new TextEncoder().encode(json) });
  return {
    entries,
    files: [MODEL_JSON, ...shards],
    shards,
    weightBytes: data.byteLength,
    weightDtype: opts.quantize === 'float16' ? 'float16' : 'float32',
    weightCount: specs.length,
  };
}
