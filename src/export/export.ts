import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type EpochChoice, loadGenerator } from '../infer/load.js';
import { writeFileAtomic } from '../util/fs.js';
import { type Logger, silentLogger } from '../util/log.js';
import { packageVersion } from '../util/package-root.js';
import { type ExportMetadata, exportedBy, exportMetadata, METADATA_FILE, metadataJson } from './metadata.js';
import { layersModelToOnnx, ONNX_IR_VERSION, ONNX_OPSET } from './onnx.js';
import { type Quantize, writeLayersModel } from './tfjs.js';

export const ONNX_FILE = 'generator.onnx';
export { CUSTOM_LAYERS, type ExportMetadata, METADATA_FILE } from './metadata.js';

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

export interface ExportResult {
  outDir: string;
  /** Files written, relative to outDir. */
  files: string[];
  metadata: ExportMetadata;
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
      convertedBy: exportedBy(pix2pixVersion),
    });
    log.info(
      `wrote ${join(outDir, 'model.json')} + ${tfjsOut.shards.length} weight shard(s), ${(tfjsOut.weightBytes / 2 ** 20).toFixed(1)} MiB ${tfjsOut.weightDtype}`,
    );
    const metadata = exportMetadata(G, tfjsOut, { ...g, pix2pixVersion });
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
    await writeFileAtomic(join(outDir, METADATA_FILE), metadataJson(metadata));
    files.push(METADATA_FILE);
    return { outDir, files, metadata };
  } finally {
    g.G.dispose();
  }
}
