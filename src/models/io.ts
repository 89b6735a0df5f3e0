import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import './instance-norm.js';
import './residual.js';

const WEIGHTS_FILE = 'weights.bin';

/**
 * Writes `model.json` + `weights.bin` in the tfjs layers-model format, the layout `tf.loadLayersModel`
 * fetches in a browser. tfjs has no file:// handler without tfjs-node, hence this one. The files are
 * written under temporary names and renamed, so a crash never leaves a half-written model.
 */
export async function saveModel(model: tfl.LayersModel, dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
        format: 'layers-model',
        generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
        convertedBy: 'pix2pix-ts',
        weightsManifest: [{ paths: [WEIGHTS_FILE], weights: artifacts.weightSpecs ?? [] }],
      };
      await writeFile(join(dir, `${WEIGHTS_FILE}.tmp`), new Uint8Array(weights));
      await writeFile(join(dir, 'model.json.tmp'), JSON.stringify(json));
      await rename(join(dir, `${WEIGHTS_FILE}.tmp`), join(dir, WEIGHTS_FILE));
      await rename(join(dir, 'model.json.tmp'), join(dir, 'model.json'));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
}

/** Loads a model written by saveModel (or any single-shard tfjs layers model) from a directory. */
export async function loadModel(dir: string): Promise<tfl.LayersModel> {
  let json: tf.io.ModelJSON;
  try {
    json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${join(dir, 'model.json')}: ${(e as Error).message}`);
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
