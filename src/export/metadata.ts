// An export folder's metadata.json and its whole file list, with no Node import: exportModel writes
// them for `pix2pix export`; the browser's train page offers the same files as its model download.
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { EXPORT_FORMAT, EXPORT_METADATA_FILE, type ExportedModelInfo } from '../infer/export-format.js';
import type { CheckpointMeta, EvalRow } from '../run/records.js';
import type { TrainConfig } from '../train/config.js';
import type { FileBytes } from '../util/zip.js';
import { layersModelFiles, type TfjsExport, type TfjsExportOptions } from './layers-model.js';
import type { OnnxExport } from './onnx.js';

export const METADATA_FILE = EXPORT_METADATA_FILE;
/** Layer classes of pix2pix-ts that tfjs-layers does not have: registered by src/models/instance-norm.ts. */
export const CUSTOM_LAYERS = ['InstanceNorm'] as const;

/** What metadata.json holds: everything a page or a program needs to feed the model and trust it. */
export interface ExportMetadata extends ExportedModelInfo {
  exportedAt: string;
  versions: { pix2pixTs: string; tfjs: string; tfjsLayers: string };
  tfjs: {
    modelJson: string;
    format: 'layers-model';
    weights: 'float32' | 'float16';
    shards: string[];
    weightBytes: number;
    params: number;
    /** Class names of custom layers that must be registered before tf.loadLayersModel. */
    customLayers: string[];
    load: string;
  };
  input: {
    name: string;
    /** NHWC; null = any batch size. */
    shape: (number | null)[];
    size: number;
    layout: 'NHWC';
    dtype: 'float32';
    channels: 'RGB';
    range: [number, number];
    fromUint8: string;
    otherSizes: string;
  };
  output: {
    shape: (number | null)[];
    layout: 'NHWC';
    dtype: 'float32';
    range: [number, number];
    toUint8: string;
  };
  training: {
    netD: string;
    norm: string;
    ganMode: string;
    lambdaL1: number;
    lr: number;
    epochs: number;
    epochsDecay: number;
    batchSize: number;
    dataset: string;
    seed: number;
    augment: boolean;
  } | null;
  /** generator.onnx's interface (OnnxExport without the bytes themselves, but their count). */
  onnx: (Omit<OnnxExport, 'bytes'> & { file: string; bytes: number }) | null;
}

/** Where an exported generator came from (a LoadedGenerator has all but the version). */
export interface ExportSource {
  /** The checkpoint folder, or what the train page calls its state. */
  checkpoint: string;
  meta: Pick<CheckpointMeta, 'epoch' | 'step' | 'time' | 'batchInEpoch'>;
  runDir?: string;
  /** The run's config: the training summary, and the direction unless `direction` says. */
  config?: TrainConfig;
  direction?: string;
  /** The checkpoint's eval.csv row, when it was evaluated. */
  scores?: EvalRow;
  /** pix2pix-ts's version (Node reads it from package.json; a page has it bundled). */
  pix2pixVersion: string;
  /** Default now. */
  exportedAt?: string;
}

function scoresOf(row?: EvalRow): ExportMetadata['scores'] {
  if (!row) return null;
  // JSON has no Infinity: identical images (PSNR infinite) are written as null.
  return {
    psnr: Number.isFinite(row.psnr) ? row.psnr : null,
    ssim: row.ssim,
    mae: row.mae,
    step: row.step,
    evalSeconds: row.seconds,
  };
}

function trainingOf(c?: TrainConfig): ExportMetadata['training'] {
  if (!c) return null;
  return {
    netD: c.netD,
    norm: c.norm,
    ganMode: c.ganMode,
    lambdaL1: c.lambdaL1,
    lr: c.lr,
    epochs: c.epochs,
    epochsDecay: c.epochsDecay,
    batchSize: c.batchSize,
    dataset: c.data,
    seed: c.seed,
    augment: c.augment,
  };
}

/** metadata.json of generator `G` exported as `tfjsOut` (onnx: null; exportModel fills it in). */
export function exportMetadata(G: tfl.LayersModel, tfjsOut: TfjsExport, src: ExportSource): ExportMetadata {
  const { meta } = src;
  const classes = new Set(G.layers.map((l) => l.getClassName()));
  const inShape = G.inputs[0]!.shape;
  const outShape = G.outputs[0]!.shape;
  const size = inShape[1];
  if (typeof size !== 'number' || inShape[2] !== size) {
    throw new Error(`the generator's input is not square (${JSON.stringify(inShape)})`);
  }
  return {
    format: EXPORT_FORMAT,
    formatVersion: 1,
    exportedAt: src.exportedAt ?? new Date().toISOString(),
    versions: { pix2pixTs: src.pix2pixVersion, tfjs: tf.version_core, tfjsLayers: tfl.version_layers },
    tfjs: {
      modelJson: 'model.json',
      format: 'layers-model',
      weights: tfjsOut.weightDtype,
      shards: tfjsOut.shards,
      weightBytes: tfjsOut.weightBytes,
      params: G.countParams(),
      customLayers: CUSTOM_LAYERS.filter((c) => classes.has(c)),
      load: "import the module that registers the custom layers (pix2pix-ts's src/models/instance-norm.ts, which the browser bundle includes), then tf.loadLayersModel('<url>/model.json'); run with model.predict (dropout off)",
    },
    input: {
      name: G.inputs[0]!.name,
      shape: inShape,
      size,
      layout: 'NHWC',
      dtype: 'float32',
      channels: 'RGB',
      range: [-1, 1],
      fromUint8: 'x = v / 127.5 - 1 for each uint8 RGB value v',
      otherSizes: `the model takes exactly ${size}x${size}; for other sizes use pix2pix translate, which reflect-pads or tiles with blending (never resizes)`,
    },
    output: {
      shape: outShape,
      layout: 'NHWC',
      dtype: 'float32',
      range: [-1, 1],
      toUint8: 'v = clamp(floor((y + 1) * 127.5 + 0.5), 0, 255)',
    },
    direction: src.direction ?? src.config?.direction ?? null,
    training: trainingOf(src.config),
    checkpoint: {
      path: src.checkpoint,
      run: src.runDir ?? null,
      epoch: meta.epoch,
      step: meta.step,
      time: meta.time,
      ...(meta.batchInEpoch !== undefined ? { batchInEpoch: meta.batchInEpoch } : {}),
    },
    scores: scoresOf(src.scores),
    onnx: null,
  };
}

export const metadataJson = (m: ExportMetadata) => `${JSON.stringify(m, null, 2)}\n`;

/**
 * The files of `pix2pix export` without ONNX, for generator `G`: the weight shards, `model.json` and
 * `metadata.json` (default options: one `group1-shard1of1.bin` up to 4 MiB of weights).
 */
export async function exportFiles(
  G: tfl.LayersModel,
  src: ExportSource,
  opts: Omit<TfjsExportOptions, 'convertedBy'> = {},
): Promise<{ files: FileBytes[]; metadata: ExportMetadata }> {
  const { entries, ...tfjsOut } = await layersModelFiles(G, {
    ...opts,
    convertedBy: exportedBy(src.pix2pixVersion),
  });
  const metadata = exportMetadata(G, tfjsOut, src);
  return {
    files: [...entries, { path: METADATA_FILE, data: new TextEncoder().encode(metadataJson(metadata)) }],
    metadata,
  };
}

/** model.json's `convertedBy` of an export. */
export const exportedBy = (pix2pixVersion: string) => `pix2pix-ts ${pix2pixVersion} export`;
