import { Command, Option } from 'commander';
import { TASK_DEGRADATIONS } from '../../data/degrade.js';
import { type PrepareOptions, prepareDataset } from '../../data/prepare.js';
import { DIRECTIONS, type Direction } from '../../data/types.js';
import { consoleLogger, type Logger } from '../../util/log.js';
import { floatArg, intArg } from '../args.js';

interface Flags {
  from: string;
  out: string;
  pairs?: 'aligned' | 'folders';
  direction: Direction;
  task?: string;
  degrade?: string;
  size: number;
  split: number;
  seed: number;
  fit?: 'tile' | 'cover';
  stride?: number;
  resize: number;
  minSize?: number;
  flat: number;
  maxTiles: number;
  json?: boolean;
}

/** Where the command writes: the JSON result line goes to `out`, progress and warnings to `log`. */
export interface PrepareIo {
  out: (line: string) => void;
  log: Logger;
}

const defaultIo: PrepareIo = { out: (line) => process.stdout.write(`${line}\n`), log: consoleLogger };

export function prepareCommand(io: PrepareIo = defaultIo): Command {
  return new Command('prepare')
    .description(
      'Build a paired dataset (train/{A,B}, test/{A,B}, dataset.json) from photos, side-by-side A|B images, or A/ and B/ folders',
    )
    .requiredOption(
      '--from <dir>',
      'folder of photos (JPEG, PNG, WebP, TIFF; searched recursively), or of pairs with --pairs',
    )
    .requiredOption('--out <dir>', 'dataset folder to write (replaced if it holds an earlier dataset)')
    .addOption(
      new Option(
        '--pairs <kind>',
        'read ready-made pairs: aligned = A|B side by side in each image; folders = A/ and B/ matched by name',
      ).choices(['aligned', 'folders']),
    )
    .addOption(
      new Option('--direction <dir>', 'with --pairs: which side is the input')
        .choices(DIRECTIONS)
        .default('AtoB'),
    )
    .addOption(
      new Option(
        '--task <task>',
        `photos: default degradation per task (${Object.entries(TASK_DEGRADATIONS)
          .map(([t, d]) => `${t}=${d}`)
          .join(', ')})`,
      ),
    )
    .option(
      '--degrade <spec>',
      'how the input is made from the clean photo, steps joined by +: gaussian:SIGMA, poisson:PEAK, saltpepper:P, jpeg:Q, blur:SIGMA, gray, edges[:SIGMA,LOW,HIGH] (Canny, black on white); with --pairs, applied to A',
    )
    .option('--size <px>', 'side of the square pairs', intArg, 256)
    .option(
      '--split <ratio>',
      'fraction of the pairs that go to train (whole photos stay on one side; as close as they allow)',
      floatArg,
      0.8,
    )
    .option('--seed <n>', 'seed of the split, the noise and the tile choice', intArg, 1)
    .addOption(
      new Option(
        '--fit <how>',
        'tile: grid of crops (photos default); cover: one centre crop (pairs default)',
      ).choices(['tile', 'cover']),
    )
    .option('--stride <px>', 'tile step (default: --size, no overlap)', intArg)
    .option(
      '--resize <px>',
      'first downscale each image so its shorter side is this long (0: keep)',
      intArg,
      0,
    )
    .option('--min-size <px>', 'skip images whose shorter side is below this (default: --size)', intArg)
    .option(
      '--flat <std>',
      'skip tiles whose luma standard deviation (0..255) is below this; 0 keeps all',
      floatArg,
      2,
    )
    .option('--max-tiles <n>', 'at most n tiles per image, a seeded choice (0: all)', intArg, 0)
    .option('--json', 'print one JSON result line last, on stdout')
    .action(async (flags: Flags) => {
      const opts: PrepareOptions = {
        from: flags.from,
        out: flags.out,
        pairs: flags.pairs,
        direction: flags.direction,
        task: flags.task,
        degrade: flags.degrade,
        size: flags.size,
        split: flags.split,
        seed: flags.seed,
        fit: flags.fit,
        stride: flags.stride,
        resize: flags.resize,
        minSize: flags.minSize,
        flat: flags.flat,
        maxTiles: flags.maxTiles,
      };
      const { log } = io;
      let lastReport = 0;
      const info = await prepareDataset(opts, log, (p) => {
        const now = Date.now();
        if (now - lastReport > 2000 || p.done === p.total) {
          lastReport = now;
          log.info(`[${p.done}/${p.total}] ${p.file}: ${p.pairs} pairs so far`);
        }
      });
      const { counts } = info;
      log.info(
        `wrote ${flags.out}: ${counts.train} train + ${counts.test} test pairs of ${info.size}x${info.size} from ${counts.sources} sources` +
          (info.achievedSplit === undefined
            ? ''
            : `, ${(100 * (1 - info.achievedSplit)).toFixed(1)} % test`) +
          ` (${counts.skipped} files skipped, ${counts.flatTiles} flat tiles left out)`,
      );
      if (flags.json) {
        io.out(
          JSON.stringify({
            ok: true,
            out: flags.out,
            kind: info.kind,
            size: info.size,
            seed: info.seed,
            split: info.split,
            achievedSplit: info.achievedSplit,
            counts,
            skipped: info.skipped,
          }),
        );
      }
    });
}
