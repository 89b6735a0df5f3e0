import { join } from 'node:path';
import { Command, Option } from 'commander';
import { setupBackend } from '../../backend/index.js';
import { exportModel, METADATA_FILE } from '../../export/export.js';
import { QUANTIZE_CHOICES, type Quantize } from '../../export/tfjs.js';
import { parseEpochChoice } from '../../infer/load.js';
import { consoleLogger } from '../../util/log.js';

export function exportCommand(): Command {
  return new Command('export')
    .description(
      "Export a run's generator as a TensorFlow.js LayersModel (model.json + weight shards) with metadata.json, and optionally ONNX",
    )
    .requiredOption(
      '--model <dir>',
      'run folder (then --epoch picks the checkpoint) or one checkpoint folder',
    )
    .option(
      '--epoch <n|best|latest>',
      'checkpoint of the run: an epoch number, best (by eval PSNR) or latest',
    )
    .requiredOption(
      '--out <dir>',
      'folder to write model.json, the weight shards, metadata.json (+ generator.onnx)',
    )
    .addOption(
      new Option('--quantize <dtype>', 'store the tfjs weights as float16 (half the size)').choices(
        QUANTIZE_CHOICES,
      ),
    )
    .option('--onnx', "also write generator.onnx (opset 17, NHWC 'input' [N,H,W,3] -> 'output')")
    .option('--json', 'print one JSON result line last')
    .action(
      async (f: {
        model: string;
        epoch?: string;
        out: string;
        quantize?: Quantize;
        onnx?: boolean;
        json?: boolean;
      }) => {
        const epoch = f.epoch === undefined ? undefined : parseEpochChoice(f.epoch);
        // Export only reads weights and reorders them: the portable backend is enough.
        await setupBackend('cpu');
        const result = await exportModel(f.model, f.out, {
          epoch,
          quantize: f.quantize,
          onnx: f.onnx,
          log: consoleLogger,
        });
        const m = result.metadata;
        consoleLogger.info(
          `exported epoch ${m.checkpoint.epoch} (${m.input.size}x${m.input.size}, ${m.tfjs.weights}) to ${result.outDir}: ${result.files.join(', ')}`,
        );
        if (f.json) {
          process.stdout.write(
            `${JSON.stringify({
              out: result.outDir,
              files: result.files,
              metadata: join(result.outDir, METADATA_FILE),
              checkpoint: m.checkpoint.path,
              epoch: m.checkpoint.epoch,
              step: m.checkpoint.step,
              size: m.input.size,
              weights: m.tfjs.weights,
              weightBytes: m.tfjs.weightBytes,
              onnx: m.onnx ? join(result.outDir, m.onnx.file) : null,
              scores: m.scores,
            })}\n`,
          );
        }
      },
    );
}
