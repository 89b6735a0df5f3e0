import { Command, Option } from 'commander';
import { BACKENDS, type BackendChoice } from '../../backend/index.js';
import { evalModeName, evaluateRun, parseEpochList, readRun } from '../../eval/evaluate.js';
import type { EvalRow } from '../../run/records.js';
import { fmtNum } from '../../util/format.js';
import { consoleLogger } from '../../util/log.js';
import { startBackend } from '../backend.js';

/** The eval table as aligned text, the best row marked. */
export function formatEvalTable(rows: EvalRow[], best?: EvalRow): string {
  const head = ['epoch', 'step', 'PSNR dB', 'SSIM', 'MAE', 'seconds'];
  const body = rows.map((r) => [
    `${r.epoch}${r.epoch === best?.epoch ? ' *' : ''}`,
    String(r.step),
    fmtNum(r.psnr, 2),
    fmtNum(r.ssim, 4),
    fmtNum(r.mae, 2),
    r.seconds.toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((r) => r.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
}

export function evalCommand(): Command {
  return new Command('eval')
    .description(
      "Score a run's checkpoints on its dataset's test split (PSNR, SSIM, MAE on uint8 RGB) into eval.csv",
    )
    .requiredOption('--run <dir>', 'run folder made by pix2pix train')
    .option('--epochs <list>', "'all' or epoch numbers, e.g. 1,5,10", 'all')
    .option('--dropout', 'dropout on, as the pix2pix paper at test time (scores vary; into eval-dropout.csv)')
    .option(
      '--data <dir>',
      "score on this dataset's test split instead of the run's own (into eval-on-<its folder name>.csv; eval.csv keeps the run's own scores)",
    )
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKENDS).default('auto'))
    .option('--json', 'print one JSON result line last')
    .action(
      async (f: {
        run: string;
        epochs: string;
        dropout?: boolean;
        data?: string;
        backend: BackendChoice;
        json?: boolean;
      }) => {
        const epochs = parseEpochList(f.epochs);
        await readRun(f.run); // a missing or foreign run folder is reported before the backend starts
        await startBackend(f.backend);
        consoleLogger.info(`evaluating ${f.run}: ${evalModeName(f.dropout)}`);
        const result = await evaluateRun(f.run, {
          epochs,
          dropout: f.dropout,
          data: f.data,
          log: consoleLogger,
          onRow: (r, done, total) =>
            consoleLogger.info(
              `[${done}/${total}] epoch ${r.epoch}: PSNR ${fmtNum(r.psnr, 2)} dB, SSIM ${fmtNum(r.ssim, 4)}, MAE ${fmtNum(r.mae, 2)} (${r.seconds.toFixed(1)} s)`,
            ),
        });
        const shown = result.all.filter((r) => epochs === 'all' || epochs.includes(r.epoch));
        process.stderr.write(`${formatEvalTable(shown, result.best)}\n`);
        if (result.best) {
          consoleLogger.info(
            `best epoch by PSNR: ${result.best.epoch} (${fmtNum(result.best.psnr, 2)} dB, SSIM ${fmtNum(result.best.ssim, 4)}); ${evalModeName(f.dropout)}; table in ${result.csv}`,
          );
        }
        if (result.skipped.length) {
          consoleLogger.warn(
            `${result.skipped.length} damaged checkpoint(s) skipped: ${result.skipped.map((s) => s.dir).join(', ')}`,
          );
        }
        if (f.json) {
          process.stdout.write(
            `${JSON.stringify({ run: f.run, csv: result.csv, mode: evalModeName(f.dropout), rows: result.all, best: result.best ?? null, skipped: result.skipped })}\n`,
          );
        }
        if (result.rows.length === 0 && result.skipped.length) process.exitCode = 1;
      },
    );
}
