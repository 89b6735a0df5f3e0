import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKENDS, type BackendChoice } from '../../backend/index.js';
import { parseEpochChoice } from '../../infer/load.js';
import {
  type ImageFormat,
  OUTPUT_FORMATS,
  planTranslation,
  type TranslateProgress,
  translate,
} from '../../infer/translate.js';
import { fmtNum } from '../../util/format.js';
import { consoleLogger, UserError } from '../../util/log.js';
import { intArg } from '../args.js';
import { startBackend } from '../backend.js';

/**
 * Translation progress on stderr: a bar redrawn in place on a terminal (with the tiles of a large
 * image); on a pipe or log file, one line per image.
 */
class TranslateBar {
  private started = performance.now();
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(p: TranslateProgress): void {
    if (!this.stream.isTTY) return;
    const width = 24;
    const frac = (p.done + (p.tiles && p.done < p.total ? p.tile / p.tiles : 0)) / p.total;
    const filled = Math.round(frac * width);
    const elapsed = (performance.now() - this.started) / 1000;
    const eta = frac > 0 ? Math.round((elapsed / frac) * (1 - frac)) : undefined;
    const tiles = p.tiles > 1 && p.done < p.total ? ` tile ${p.tile}/${p.tiles}` : '';
    const line =
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.done}/${p.total} ${p.file}${tiles}` +
      (eta !== undefined ? ` ETA ${eta}s` : '');
    this.stream.write(`\r${line.slice(0, (this.stream.columns || 160) - 1)}\x1b[K`);
  }

  /** Clears the bar's line (on a terminal) so that what follows starts on a clean line. */
  clear(): void {
    if (this.stream.isTTY) this.stream.write('\r\x1b[K');
  }

  /** A log line while the bar runs: the bar's line is replaced by it (it is redrawn on the next update). */
  line(msg: string): void {
    this.clear();
    this.stream.write(`${msg}\n`);
  }
}

export function translateCommand(): Command {
  return new Command('translate')
    .description(
      "Translate images of any size with a trained generator (the model's input side: the A images of an AtoB run, the B images of a BtoA run); reflect-padded, or tiled with blending above --tile, never resized",
    )
    .requiredOption(
      '--model <dir>',
      'run folder made by pix2pix train, one checkpoint folder in it, or a folder made by pix2pix export',
    )
    .option(
      '--epoch <n|best|latest>',
      "which of the run's checkpoints: an epoch number, best by eval PSNR, or latest",
    )
    .requiredOption(
      '--input <path>',
      "an image (png, jpg, webp, tif, gif: first frame) or a folder of them, shown as the model's input",
    )
    .requiredOption(
      '--output <path>',
      'an image file (or existing folder) for one input; a folder (created) for a folder input, same base names',
    )
    .option(
      '--tile <n>',
      'largest side translated whole; larger images are cut into overlapping tiles of n px (default: 2x the training size; a multiple of 2^depth)',
      (v: string) => {
        const n = intArg(v);
        if (n < 1) throw new InvalidArgumentError('must be a positive number of pixels');
        return n;
      },
    )
    .addOption(
      new Option(
        '--format <kind>',
        "output format (default: the input's; for one file, the output's extension)",
      ).choices(OUTPUT_FORMATS),
    )
    .option('--compare', 'write input | output side by side instead of the output alone')
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKENDS).default('auto'))
    .option('--json', 'print one JSON result line last')
    .action(
      async (f: {
        model: string;
        epoch?: string;
        input: string;
        output: string;
        tile?: number;
        format?: ImageFormat;
        compare?: boolean;
        backend: BackendChoice;
        json?: boolean;
      }) => {
        const epoch = f.epoch === undefined ? undefined : parseEpochChoice(f.epoch);
        // Inputs and outputs are checked before the backend starts and the model loads.
        const plan = await planTranslation(f.input, f.output, f.format);
        if (plan.ignored.length) {
          consoleLogger.info(
            `ignoring ${plan.ignored.length} file(s) that are not images: ${plan.ignored.join(', ')}`,
          );
        }
        await startBackend(f.backend);
        const bar = new TranslateBar();
        const result = await translate({
          model: f.model,
          epoch,
          input: f.input,
          output: f.output,
          tile: f.tile,
          format: f.format,
          compare: f.compare,
          log: {
            info: (m) => bar.line(m),
            warn: (m) => bar.line(`warning: ${m}`),
          },
          onModel: (m) => {
            const s = m.scores;
            consoleLogger.info(
              `model ${m.checkpoint}: epoch ${m.meta.epoch} (step ${m.meta.step}), trained at ${m.size} px` +
                (m.direction
                  ? `, ${m.direction} (its input is the ${m.direction === 'BtoA' ? 'B' : 'A'} side)`
                  : '') +
                (s ? `, test PSNR ${fmtNum(s.psnr, 2)} dB SSIM ${fmtNum(s.ssim, 4)}` : '') +
                `; images up to ${m.tile} px whole (padded to a multiple of ${m.multiple}), larger ones in ${m.tile} px tiles overlapping ${m.overlap} px`,
            );
          },
          onProgress: (p) => bar.update(p),
        }).finally(() => bar.clear());
        consoleLogger.info(
          `translated ${result.outputs.length} of ${result.outputs.length + result.failed.length} image(s)`,
        );
        if (f.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        if (result.failed.length) {
          throw new UserError(
            `${result.failed.length} image(s) could not be read and were skipped: ${result.failed.map((x) => x.input).join(', ')}`,
          );
        }
      },
    );
}
