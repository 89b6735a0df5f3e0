import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import './instance-norm.js';
import './residual.js';
import { MODEL_JSON, modelFiles } from './model-files.js';

/**
 * Writes `model.json` + `weights.bin` in the tfjs layers-model format (modelFiles: the bytes the
 * browser's downloads hold too). tfjs has no file:// handler without tfjs-node, hence this one. The
 * files are written under temporary names and renamed, so a crash never leaves a half-written model.
 */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const files = await modelFiles(model);
  for (const f of files) await writeFile(join(dir, `${f.path}.tmp`), f.data);
  for (const f of files) await rename(join(dir, `${f.path}.tmp`), join(dir, f.path));
}

/**
 * Loads a tfjs layers model from a directory: one saveModel wrote, or an export (model.json + several
 * weight shards, float16-quantized ones too: tfjs dequantizes them as it loads).
 */
export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(join(dir, MODEL_JSON), 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${join(dir, MODEL_JSON)}: ${(e as Error).message}`);
  }
  const manifest = json.weightsManifest ?? [];
  const buffers = await Promise.all(
    manifest.flatMap((group) => group.paths.map((p) => readFile(join(dir, p)))),
  );
  const weightData = tf.io.CompositeArrayBuffer.join(
    buffers.map((b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  );
  return tfl.loadLayersModel(
    tf.io.fromMemory({
      modelTopology: json.modelTopology,
      weightSpecs: manifest.flatMap((g) => g.weights),
      weightData,
    }),
  );
}
