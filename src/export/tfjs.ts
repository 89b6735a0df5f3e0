import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import '../models/instance-norm.js';
import { toFloat16 } from './float16.js';

export type Quantize = 'float16';
export const QUANTIZE_CHOICES = ['float16'] as const;

/** tfjs's converter cuts weights into 4 MiB shard files; so do we (they cache and stream well). */
export const DEFAULT_SHARD_BYTES = 4 * 1024 * 1024;

/** Names of the weight shard files: the converter's `group1-shardKofN.bin`. */
export const shardName = (k: number, n: number) => `group1-shard${k}of${n}.bin`;
const SHARD_FILE = /^group\d+-shard\d+of\d+\.bin$/;

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

/** The model's topology, weight specs and weight bytes, as `model.save` hands them to a handler. */
async function artifactsOf(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let artifacts: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (a) => {
      artifacts = a;
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(a) };
    }),
  );
  if (!artifacts) throw new Error('tfjs handed no model artifacts to save');
  return artifacts;
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
  return { specs: out, data: concat(parts) };
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/**
 * Writes `model` as a TensorFlow.js LayersModel: `model.json` (format 'layers-model', the topology,
 * one weights-manifest group whose shard paths are relative to model.json) and the weight shards,
 * the layout `tf.loadLayersModel(url)` fetches in a browser. `quantize: 'float16'` halves the weights;
 * tfjs dequantizes them to float32 when it loads them. Files are renamed into place, and shards of
 * an earlier export into the same folder that this one does not use are removed.
 */
export async function writeLayersModel(
  model: tfl.LayersModel,
  dir: string,
  opts: TfjsExportOptions = {},
): Promise<TfjsExport> {
  const shardBytes = opts.shardBytes ?? DEFAULT_SHARD_BYTES;
  if (!(shardBytes > 0)) throw new Error(`shard size must be positive (got ${shardBytes})`);
  await mkdir(dir, { recursive: true });
  const artifacts = await artifactsOf(model);
  let specs = artifacts.weightSpecs ?? [];
  let data = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
  if (opts.quantize === 'float16') {
    ({ specs, data } = quantizeFloat16(specs, data.buffer as ArrayBuffer));
  }
  const n = Math.max(1, Math.ceil(data.byteLength / shardBytes));
  const shards = Array.from({ length: n }, (_, i) => shardName(i + 1, n));
  const json: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy: opts.convertedBy ?? 'pix2pix-ts',
    weightsManifest: [{ paths: shards, weights: specs }],
  };
  const written: string[] = [];
  try {
    for (const [i, name] of shards.entries()) {
      const tmp = join(dir, `${name}.tmp`);
      await writeFile(tmp, data.subarray(i * shardBytes, Math.min((i + 1) * shardBytes, data.byteLength)));
      written.push(tmp);
    }
    await writeFile(join(dir, 'model.json.tmp'), JSON.stringify(json));
    written.push(join(dir, 'model.json.tmp'));
    for (const name of shards) await rename(join(dir, `${name}.tmp`), join(dir, name));
    await rename(join(dir, 'model.json.tmp'), join(dir, 'model.json'));
  } catch (e) {
    await Promise.all(written.map((p) => rm(p, { force: true })));
    throw e;
  }
  const stale = (await readdir(dir)).filter((f) => SHARD_FILE.test(f) && !shards.includes(f));
  await Promise.all(stale.map((f) => rm(join(dir, f), { force: true })));
  return {
    files: ['model.json', ...shards],
    shards,
    weightBytes: data.byteLength,
    weightDtype: opts.quantize === 'float16' ? 'float16' : 'float32',
    weightCount: specs.length,
  };
}
