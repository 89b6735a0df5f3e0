import { fork } from 'node:child_process';
import { hostname } from 'node:os';
import { Command, Option } from 'commander';
import { BACKENDS, type BackendChoice } from '../../backend/index.js';
import { trainCell } from '../../experiment/compare.js';
import {
  type CellJob,
  type CellOutcome,
  type CellProgress,
  parseQueueUrl,
  startWorker,
} from '../../experiment/queue.js';
import { RunLockedError } from '../../run/lock.js';
import { TrainingStopped } from '../../train/loop.js';
import { NonFiniteError } from '../../train/step.js';
import { consoleLogger, UserError } from '../../util/log.js';
import { intArg } from '../args.js';
import { startBackend } from '../backend.js';
import { trainWithProgress } from './train.js';

/** The messages between a worker and the process it trains a cell in. */
type ToCell = { job: CellJob; takeOver?: CellProgress['trainer'] };
type FromCell =
  | { progress: Omit<CellProgress, 'worker'> }
  | { done: true }
  | { error: { message: string; final: boolean } };

/** Seconds between two progress messages of a cell (its epochs' ends are always sent). */
const PROGRESS_EVERY_S = 2;

/**
 * The worker's side: trains `job` in a child process (this CLI again, `worker --cell`), relaying its
 * progress. The child ends with the worker: it leaves when its channel to the worker closes.
 */
function trainInChild(backend: BackendChoice) {
  return (
    job: CellJob,
    takeOver: CellProgress['trainer'],
    progress: (p: Omit<CellProgress, 'worker'>) => void,
  ): Promise<CellOutcome> =>
    new Promise((done) => {
      const child = fork(process.argv[1]!, ['worker', '--cell', '--backend', backend], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      let outcome: CellOutcome | undefined;
      child.on('message', (m: FromCell) => {
        if ('progress' in m) progress(m.progress);
        else if ('done' in m) outcome = {};
        else if ('error' in m) outcome = { error: m.error };
      });
      // A process that could not start: a fault of this machine, worth another attempt elsewhere.
      child.on('error', (e) =>
        done({ error: { message: `cannot start the training process: ${e.message}`, final: false } }),
      );
      child.on('exit', (code, signal) => {
        done(
          outcome ?? {
            error: { message: `the training process ended with ${signal ?? `code ${code}`}`, final: false },
          },
        );
      });
      child.send({ job, takeOver } satisfies ToCell);
    });
}

/** The child's side (`worker --cell`): one cell, its job sent by the worker over IPC. */
async function runCell(backend: BackendChoice): Promise<void> {
  const send = (m: FromCell) => new Promise<void>((ok) => process.send!(m, () => ok()));
  // Without its worker, nobody would take this cell's result: stop (the run lock goes at exit).
  process.on('disconnect', () => process.exit(1));
  const { job, takeOver } = await new Promise<ToCell>((ok) => process.once('message', ok));
  // The worker's backend, whatever the enqueuing machine had (config.json records the one used).
  const config = { ...job.config, backend };
  // Named before the run lock is taken: if this process dies, the next worker knows whose lock it is.
  // (The worker keeps it in the job's progress, merging the messages that follow.)
  await send({ progress: { trainer: { host: hostname(), pid: process.pid } } });
  // The first step is always sent: a process younger than the interval skipped it, and then said
  // nothing until its first epoch's end (whose message has no epoch count).
  let sent = Number.NEGATIVE_INFINITY;
  try {
    await startBackend(backend);
    await trainCell(
      config,
      (c, resume) =>
        trainWithProgress(c, resume, {
          onStep: (e) => {
            if (performance.now() - sent < PROGRESS_EVERY_S * 1000) return;
            sent = performance.now();
            void send({
              progress: { epoch: e.epoch, totalEpochs: e.totalEpochs, step: e.globalStep },
            });
          },
          onEpoch: (e) => {
            void send({
              progress: {
                epoch: e.epoch,
                step: e.step,
                ...(e.scores && { psnr: e.scores.psnr }),
              },
            });
          },
          takeOverLock: (h) => takeOver !== undefined && h.host === takeOver.host && h.pid === takeOver.pid,
        }),
      { dropout: job.evalDropout, log: consoleLogger },
    );
    await send({ done: true });
  } catch (e) {
    // Trying again gives the same refusal, or the same non-finite loss (training is deterministic);
    // but a stop on a signal (the worker's Ctrl-C) left a checkpoint for a worker to resume, and a
    // trainer still holding the run folder (one whose worker died, finishing its step) will leave it.
    const final =
      (e instanceof UserError || e instanceof NonFiniteError) &&
      !(e instanceof TrainingStopped || e instanceof RunLockedError);
    await send({ error: { message: (e as Error).message.split('\n')[0]!, final } });
    process.exitCode = 1;
  }
  process.disconnect();
}

export function workerCommand(): Command {
  return new Command('worker')
    .description(
      "Train the cells of comparisons queued with `compare --queue`, one after another (or --concurrency at once), on this machine; each cell's folder must be reachable here at the path the comparison was queued with (a shared filesystem)",
    )
    .option('--queue <url>', 'the Redis the comparisons are queued on: redis://HOST:PORT[/DB]')
    .addOption(
      new Option('--backend <name>', 'compute backend for the cells trained here')
        .choices(BACKENDS)
        .default('auto'),
    )
    .option('--concurrency <n>', 'cells trained at once (each in its own process)', intArg, 1)
    .option(
      '--stall-seconds <s>',
      'a cell whose worker has not been heard from for this long (killed, machine lost) is handed to another worker, which resumes it from its latest checkpoint',
      intArg,
      30,
    )
    .addOption(new Option('--cell', 'internal: train the one cell the parent worker sends').hideHelp())
    .action(
      async (o: {
        queue?: string;
        backend: BackendChoice;
        concurrency: number;
        stallSeconds: number;
        cell?: boolean;
      }) => {
        if (o.cell) return runCell(o.backend);
        if (!o.queue) throw new UserError("required option '--queue <url>' not specified");
        if (!(o.concurrency >= 1))
          throw new UserError(`--concurrency must be at least 1 (got ${o.concurrency})`);
        if (!(o.stallSeconds >= 1))
          throw new UserError(`--stall-seconds must be at least 1 (got ${o.stallSeconds})`);
        const queue = parseQueueUrl(o.queue);
        const { stop } = startWorker({
          queue,
          concurrency: o.concurrency,
          stallSeconds: o.stallSeconds,
          trainCell: trainInChild(o.backend),
          log: consoleLogger,
        });
        consoleLogger.info(
          `worker ${hostname()}:${process.pid} taking cells from ${queue.shown} (${o.concurrency} at once, backend ${o.backend}); Ctrl-C stops after the cells in training`,
        );
        await new Promise<void>((ok) => {
          const quit = () => {
            consoleLogger.info(
              'stopping: waiting for the cells in training to finish (again to quit at once)',
            );
            process.once('SIGINT', () => process.exit(130));
            void stop().then(ok);
          };
          process.once('SIGINT', quit);
          process.once('SIGTERM', quit);
        });
      },
    );
}
