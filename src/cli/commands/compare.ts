import { Command } from 'commander';
import { compareRuns, parseGridEpochs, parseVary } from '../../experiment/compare.js';
import { fmtNum } from '../../util/format.js';
import { consoleLogger, UserError } from '../../util/log.js';
import { startBackend } from '../backend.js';
import { queuedCompare } from './compare-queue.js';
import { addTrainOptions, configFromFlags, trainWithProgress } from './train.js';

const collect = (v: string, prev: string[]) => [...prev, v];

export function compareCommand(): Command {
  const cmd = new Command('compare')
    .description(
      'Train one run per value of the varied options (resuming runs already there), evaluate every epoch, and write report.html + report.md',
    )
    .option('--data <dir>', 'dataset folder (train/{A,B}, test/{A,B}, dataset.json)')
    .requiredOption(
      '--out <dir>',
      'comparison folder: one run folder per combination, report.html, report.md',
    )
    .option(
      '--queue <url>',
      'queue the cells as jobs on this Redis (redis://HOST:PORT[/DB]) for `pix2pix worker`s on any machines, and return; --out must be a folder every worker reaches at the same path (a shared filesystem)',
    )
    .option('--wait', 'with --queue: follow the cells until all are done or failed, then write the report')
    .option(
      '--status',
      'with --queue: show each cell of the comparison in --out: waiting, training (where, epoch), done or failed (why)',
    )
    .option('--report', 'with --queue: write report.html/md from the cells done so far, marking the others')
    .option(
      '--vary <option=v1,v2>',
      'a training option and its values, e.g. batch-size=32,64; several --vary make a grid',
      collect,
      [] as string[],
    )
    .option(
      '--grid-epochs <list>',
      'epochs of the image grids: first, best, last or numbers',
      'first,best,last',
    )
    // Not --dropout: that name is the training option's (--no-dropout, a generator without dropout).
    .option(
      '--eval-dropout',
      'evaluate with dropout on, as the pix2pix paper at test time (default: off, deterministic)',
    )
    .option('--json', 'print one JSON result line last');
  addTrainOptions(cmd);
  return cmd.action(
    async (
      f: Record<string, unknown> & {
        data?: string;
        out: string;
        vary: string[];
        gridEpochs: string;
        evalDropout?: boolean;
        json?: boolean;
        queue?: string;
        wait?: boolean;
        status?: boolean;
        report?: boolean;
      },
    ) => {
      if (f.queue) {
        return queuedCompare({ ...f, queue: f.queue }, (data, out) => configFromFlags(f, data, out, cmd));
      }
      for (const flag of ['wait', 'status', 'report'] as const) {
        if (f[flag]) throw new UserError(`--${flag} needs --queue URL (it is about a queued comparison)`);
      }
      if (!f.data) throw new UserError("required option '--data <dir>' not specified");
      // Every argument is checked before the backend starts or anything is trained.
      const vary = parseVary(f.vary);
      parseGridEpochs(f.gridEpochs);
      const base = configFromFlags(f, f.data, f.out, cmd);
      await startBackend(base.backend);
      const result = await compareRuns({
        base,
        vary,
        gridEpochs: f.gridEpochs,
        dropout: f.evalDropout,
        command: ['pix2pix', ...process.argv.slice(2)].join(' '),
        trainRun: (config, resume) => trainWithProgress(config, resume),
        log: consoleLogger,
      });
      for (const r of result.runs) {
        const b = r.best;
        consoleLogger.info(
          `${r.name}: ${b ? `best epoch ${b.epoch}, PSNR ${fmtNum(b.psnr, 2)} dB, SSIM ${b.ssim.toFixed(4)}, MAE ${b.mae.toFixed(2)}` : 'not evaluated'}; ${r.trainSeconds.toFixed(0)} s training, ${r.imagesPerSec.toFixed(1)} images/s`,
        );
      }
      consoleLogger.info(`report: ${result.html} and ${result.md}`);
      if (f.json) {
        process.stdout.write(
          `${JSON.stringify({ html: result.html, md: result.md, runs: result.runs.map((r) => ({ name: r.name, dir: r.dir, best: r.best ?? null, trainSeconds: r.trainSeconds, imagesPerSec: r.imagesPerSec })) })}\n`,
        );
      }
    },
  );
}
