// The bytes of a saved tfjs layers model, with no Node import: the browser's train page builds its
// downloads from them, and models/io.ts's saveModel writes the same bytes to disk.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { FileBytes } from '../util/zip.js';
import './instance-norm.js';
import './residual.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_FILE = 'weights.bin';

/** The model's topology, weight specs and weight bytes, as `model.save` hands them to a handler. */
export async function modelArtifacts(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
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

/** model.json of a layers model whose weights are the shard files `paths`, in the order tfjs reads them. */
export function layersModelJson(
  artifacts: tf.io.ModelArtifacts,
  paths: string[],
  weights: tf.io.WeightsManifestEntry[],
  convertedBy: string,
): string {
  const json: tf.io.ModelJSON = {
    modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tfl.version_layers}`,
    convertedBy,
    weightsManifest: [{ paths, weights }],
  };
  return JSON.stringify(json);
}

/**
 * `weights.bin` then `model.json`: the tfjs layers-model format with one weight file, the layout
 * `tf.loadLayersModel` fetches in a browser and saveModel writes. Weights come first because a
 * model.json is only whole once the weights it names are (saveModel renames them in this order).
 */
export async function modelFiles(model: tfl.LayersModel): Promise<FileBytes[]> {
  const artifacts = await modelArtifacts(model);
  const weights = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
  return [
    { path: WEIGHTS_FILE, data: new Uint8Array(weights) },
    {
      path: MODEL_JSON,
      data: new TextEncoder().encode(
        layersModelJson(artifacts, [WEIGHTS_FILE], artifacts.weightSpecs ?? [], 'pix2pix-ts'),
      ),
    },
  ];
}
