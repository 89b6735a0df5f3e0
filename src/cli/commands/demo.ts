import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command } from 'commander';
import { readDatasetInfo } from '../../data/dataset.js';
import { writeSyntheticDataset } from '../../data/synthetic.js';
import { consoleLogger, UserError } from '../../util/log.js';
import { intArg } from '../args.js';
import { addTrainOptions, configFromFlags, runTraining } from './train.js';

/** The file that marks a folder as the demo's own. */
const DEMO_MARKER = '.pix2pix-demo';

/** A folder made by a demo from before the marker: only data/ (a synthetic dataset) and run/. */
async function isUnmarkedDemo(dir: string, entries: string[]): Promise<boolean> {
  if (!entries.every((e) => e === 'data' || e === 'run')) return false;
  const info = await readDatasetInfo(join(dir, 'data')).catch(() => undefined);
  return info?.kind === 'synthetic';
}

/**
 * The whole loop on a built-in default: a synthetic denoising dataset (coloured shapes under
 * gaussian:25 noise), a short training run at 64 px, and the sample grids it writes. It keeps what
 * it shows: the samples and its last checkpoint (--keep 1), of a generator half the reference's
 * width (--ngf 32: 7.3 M parameters at 64 px against 29 M), so the folder stays near 110 MB where
 * eight ngf-64 checkpoints took 1.2 GB.
 */
export function demoCommand(): Command {
  const cmd = new Command('demo')
    .description('Make a small synthetic denoising dataset and train on it for a few minutes')
    .option('--out <dir>', 'folder for the dataset and the run', 'runs/demo')
    .option('--pairs <n>', 'synthetic pairs to generate (80 % train)', intArg, 80);
  addTrainOptions(cmd);
  // Demo-sized defaults: small images, a narrower generator, few epochs, one checkpoint kept (the
  // user can still override each).
  for (const [flag, value] of [
    ['size', 64],
    ['ngf', 32],
    ['batchSize', 4],
    ['epochs', 8],
    ['keep', 1],
  ] as const) {
    cmd.setOptionValueWithSource(flag, value, 'default');
  }
  return cmd.action(
    async (f: Record<string, unknown> & { out: string; pairs: number; size: number; seed: number }) => {
      const data = join(f.out, 'data');
      const run = join(f.out, 'run');
      // The demo is repeatable, but replaces only what it made itself: its folder carries a marker.
      const marker = join(f.out, DEMO_MARKER);
      if (!existsSync(marker)) {
        const entries = await readdir(f.out).catch(() => [] as string[]);
        if (entries.length > 0 && !(await isUnmarkedDemo(f.out, entries))) {
          throw new UserError(
            `${f.out} is not empty and was not made by pix2pix demo: choose another --out (the demo replaces its own folder only)`,
          );
        }
        await mkdir(f.out, { recursive: true });
        await writeFile(marker, 'made by pix2pix demo: its data/ and run/ are replaced on the next demo\n');
      }
      if (existsSync(run)) {
        consoleLogger.info(`replacing the previous demo run in ${run}`);
        await rm(run, { recursive: true });
      }
      consoleLogger.info(`writing ${f.pairs} synthetic ${f.size} px pairs to ${data}`);
      await writeSyntheticDataset(data, { count: f.pairs, size: f.size, seed: f.seed });
      const config = configFromFlags(f, data, run, cmd);
      const epochs = await runTraining(config, false);
      const first = epochs[0];
      const last = epochs[epochs.length - 1];
      // --max-minutes can end the demo before its first epoch does.
      if (!first || !last) return;
      consoleLogger.info(
        `L1 (mean per epoch) fell from ${first.losses.gL1.toFixed(4)} in epoch ${first.epoch} to ${last.losses.gL1.toFixed(4)} in epoch ${last.epoch}` +
          `; input | target | output samples: ${last.sample}`,
      );
    },
  );
}
