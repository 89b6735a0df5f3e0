import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import type { EvalRow } from '../eval/evaluate.js';
import { type EpochChoice, type LoadedGenerator, loadGenerator } from '../infer/load.js';
import { writeFileAtomic } from '../util/fs.js';
import { type Logger, silentLogger } from '../util/log.js';
import { packageVersion } from '../util/package-root.js';
import { layersModelToOnnx, ONNX_IR_VERSION, ONNX_OPSET, type OnnxExport } from './onnx.js';
import { type Quantize, writeLayersModel } from './tfjs.js';

export const METADATA_FILE = 'metadata.json';
export const ONNX_FILE = 'generator.onnx';
/** Layer classes of pix2pix-ts that tfjs-layers does not have: registered by src/models/instance-norm.ts. */
export const CUSTOM_LAYERS = ['InstanceNorm'] as const;

export interface ExportOptions {
  /** Which checkpoint of a run (ignored for a checkpoint folder): default the one `latest` names. */
  epoch?: EpochChoice;
  /** Store the tfjs weights as float16 (tfjs dequantizes them to float32 on load). */
  quantize?: Quantize;
  /** Also write generator.onnx. */
  onnx?: boolean;
  /** Bytes per weight shard file (default 4 MiB, as tfjs's converter). */
  shardBytes?: number;
  log?: Logger;
}

/** What metadata.json holds: everything a page or a program needs to feed the model and trust it. */
export interface ExportMetadata {
  format: 'pix2pix-ts-export';
  formatVersion: 1;
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
  /** AtoB or BtoA: which image of a dataset pair the model takes; null where no run config was found. */
  direction: string | null;
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
  checkpoint: {
    path: string;
    run: string | null;
    epoch: number;
    step: number;
    time: string;
    /** Batches of the epoch done, for a mid-epoch checkpoint. */
    batchInEpoch?: number;
  };
  /** This epoch's row of the run's eval.csv (test split, uint8 RGB), when it was evaluated. */
  scores: { psnr: number | null; ssim: number; mae: number; step: number; evalSeconds: number } | null;
  /** generator.onnx's interface (OnnxExport without the bytes themselves, but their count). */
  onnx: (Omit<OnnxExport, 'bytes'> & { file: string; bytes: number }) | null;
}

export interface ExportResult {
  outDir: string;
  /** Files written, relative to outDir. */
  files: string[];
  metadata: ExportMetadata;
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

function trainingOf(g: LoadedGenerator): ExportMetadata['training'] {
  const c = g.config;
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

/**
 * Exports the generator of a run (`model` = run folder, `epoch` picks the checkpoint) or of one
 * checkpoint folder into `outDir`:
 * - `model.json` + `group1-shardKofN.bin`: a TensorFlow.js LayersModel that `tf.loadLayersModel`
 *   loads in a browser or Node once the InstanceNorm layer is registered (import
 *   src/models/instance-norm.ts, as the pix2pix-ts browser bundle does); float16 weights with
 *   `quantize: 'float16'`.
 * - `metadata.json`: input size, layout and value range with the uint8 mapping, direction, training
 *   summary, checkpoint epoch/step, that epoch's eval scores, versions (ExportMetadata).
 * - with `onnx`, `generator.onnx`: the same network, NHWC in and out ('input' [N,H,W,3] -> 'output').
 */
export async function exportModel(
  model: string,
  outDir: string,
  opts: ExportOptions = {},
): Promise<ExportResult> {
  const log = opts.log ?? silentLogger;
  const g = await loadGenerator(model, opts.epoch);
  try {
    const { G, meta, size } = g;
    log.info(
      `exporting the generator of ${g.checkpoint} (epoch ${meta.epoch}, step ${meta.step}, ${size}x${size})`,
    );
    await mkdir(outDir, { recursive: true });
    const pix2pixVersion = packageVersion();
    const tfjsOut = await writeLayersModel(G, outDir, {
      quantize: opts.quantize,
      shardBytes: opts.shardBytes,
      convertedBy: `pix2pix-ts ${pix2pixVersion} export`,
    });
    log.info(
      `wrote ${join(outDir, 'model.json')} + ${tfjsOut.shards.length} weight shard(s), ${(tfjsOut.weightBytes / 2 ** 20).toFixed(1)} MiB ${tfjsOut.weightDtype}`,
    );
    const classes = new Set(G.layers.map((l) => l.getClassName()));
    const inShape = G.inputs[0]!.shape;
    const outShape = G.outputs[0]!.shape;
    const metadata: ExportMetadata = {
      format: 'pix2pix-ts-export',
      formatVersion: 1,
      exportedAt: new Date().toISOString(),
      versions: { pix2pixTs: pix2pixVersion, tfjs: tf.version_core, tfjsLayers: tfl.version_layers },
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
      direction: g.config?.direction ?? null,
      training: trainingOf(g),
      checkpoint: {
        path: g.checkpoint,
        run: g.runDir ?? null,
        epoch: meta.epoch,
        step: meta.step,
        time: meta.time,
        ...(meta.batchInEpoch !== undefined ? { batchInEpoch: meta.batchInEpoch } : {}),
      },
      scores: scoresOf(g.scores),
      onnx: null,
    };
    const files = [...tfjsOut.files];
    const onnxPath = join(outDir, ONNX_FILE);
    if (opts.onnx) {
      const onnx = await layersModelToOnnx(G, {
        producerVersion: pix2pixVersion,
        graphName: 'pix2pix_unet_generator',
        docString: `pix2pix-ts generator, epoch ${meta.epoch}: input 'input' float32 NHWC [N,${size},${size},3] in [-1,1] (uint8 v -> v/127.5-1), output 'output' NHWC in [-1,1]`,
        metadata: {
          size: String(size),
          layout: 'NHWC',
          range: '[-1,1]',
          direction: metadata.direction ?? 'unknown',
          epoch: String(meta.epoch),
          step: String(meta.step),
        },
      });
      await writeFileAtomic(onnxPath, onnx.bytes);
      const { bytes, ...described } = onnx;
      metadata.onnx = { file: ONNX_FILE, ...described, bytes: bytes.byteLength };
      files.push(ONNX_FILE);
      log.info(
        `wrote ${onnxPath} (${(onnx.bytes.byteLength / 2 ** 20).toFixed(1)} MiB, opset ${ONNX_OPSET}, IR ${ONNX_IR_VERSION})`,
      );
    } else {
      // An ONNX file of an earlier export would not match this model.json.
      await rm(onnxPath, { force: true });
    }
    await writeFileAtomic(join(outDir, METADATA_FILE), `${JSON.stringify(metadata, null, 2)}\n`);
    files.push(METADATA_FILE);
    return { outDir, files, metadata };
  } finally {
    g.G.dispose();
  }
}
