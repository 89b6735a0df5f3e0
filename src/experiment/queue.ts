// `compare --queue`: the cells of a comparison as BullMQ jobs on Redis, trained by `pix2pix worker`
// processes on any number of machines that share the comparison's folder (a network filesystem).
//
// BullMQ is the queue (retries with backoff, stalled-job detection, progress, locks); this module only
// says what a job is: one cell, whose id is derived from where it trains and its options, so the same
// comparison queued twice adds nothing. A worker trains each cell in a child process, so that however
// long a training step keeps the CPU, the worker's own event loop renews the job's lock in time; a
// worker that dies (kill -9, machine lost) stops renewing it, BullMQ hands the job to another worker
// after --stall-seconds, and that one resumes the cell from its latest checkpoint.
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { ComparisonCell } from '../run/comparison.js';
import type { TrainConfig } from '../train/config.js';
import { type Logger, UserError } from '../util/log.js';

/** One queue serves every comparison: a worker takes whichever cell waits. */
export const QUEUE_NAME = 'pix2pix-compare';

/** A Redis address from `redis://[user:password@]HOST[:PORT][/DB]` (rediss:// for TLS). */
export interface QueueAddress {
  /** The URL without its password, for messages and compare.json. */
  shown: string;
  options: RedisOptions;
}

export function parseQueueUrl(url: string): QueueAddress {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--queue '${url}' is not a URL: give redis://HOST:PORT[/DB]`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new UserError(`--queue '${url}' is not a redis:// URL: give redis://HOST:PORT[/DB]`);
  }
  const path = u.pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  if (!Number.isInteger(db) || db < 0) {
    throw new UserError(
      `--queue '${url}': the database after the port must be a number, as in redis://HOST:PORT/0`,
    );
  }
  const options: RedisOptions = {
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: u.port ? Number(u.port) : 6379,
    db,
    ...(u.username && { username: decodeURIComponent(u.username) }),
    ...(u.password && { password: decodeURIComponent(u.password) }),
    ...(u.protocol === 'rediss:' && { tls: {} }),
  };
  u.password = '';
  return { shown: u.toString(), options };
}

/** Why a connection failed, in a few words (ioredis wraps the socket's error). */
function reason(e: unknown): string {
  const err = e as NodeJS.ErrnoException & { errors?: NodeJS.ErrnoException[] };
  return err.code ?? err.errors?.[0]?.code ?? err.message;
}

/**
 * One connection for a command that asks and leaves (compare): no retrying, so an unreachable Redis is
 * one line at once instead of a wait.
 */
export async function connectOnce(addr: QueueAddress): Promise<Redis> {
  const conn = new Redis({
    ...addr.options,
    lazyConnect: true,
    maxRetriesPerRequest: null,
    retryStrategy: () => null,
    connectTimeout: 5000,
  });
  let failure: unknown;
  conn.on('error', (e) => {
    failure = e;
  });
  try {
    await conn.connect();
  } catch (e) {
    conn.disconnect();
    throw new UserError(`cannot reach the queue's Redis at ${addr.shown}: ${reason(failure ?? e)}`);
  }
  return conn;
}

/** What a cell's job carries: all a worker needs, since it shares nothing else with the enqueuer. */
export interface CellJob {
  /** The comparison's folder, absolute (workers must see it at the same path). */
  dir: string;
  cell: ComparisonCell;
  /** The cell's complete options; `out` is its folder. */
  config: TrainConfig;
  evalDropout: boolean;
}

/** What a worker reports on a job while it trains it. */
export interface CellProgress {
  /** `host:pid` of the worker. */
  worker: string;
  /** The process training the cell (it holds the run folder's lock). */
  trainer?: { host: string; pid: number };
  epoch?: number;
  totalEpochs?: number;
  step?: number;
  /** PSNR of the latest evaluated epoch. */
  psnr?: number;
}

/**
 * A cell's job id: a digest of its folder and options (not the backend, which each worker chooses).
 * The same comparison queued again gets the same ids, which BullMQ adds only once.
 */
export function cellJobId(config: TrainConfig): string {
  const { backend: _backend, ...options } = config;
  return createHash('sha256').update(JSON.stringify(options)).digest('hex').slice(0, 32);
}

/**
 * Attempts at a cell: a fault of the machine or the filesystem is worth another try (each resuming
 * from the latest checkpoint), a UserError or a non-finite loss is not (see UnrecoverableError below).
 */
const ATTEMPTS = 3;
const BACKOFF_MS = 10_000;

/** Adds one job a cell (ids already in the queue are left as they are). Returns how many were new. */
export async function enqueueCells(conn: Redis, jobs: CellJob[]): Promise<{ added: number; queued: number }> {
  const queue = new Queue<CellJob>(QUEUE_NAME, { connection: conn });
  try {
    let added = 0;
    for (const data of jobs) {
      const jobId = data.cell.jobId;
      if (await queue.getJob(jobId)) continue;
      await queue.add(data.cell.name, data, {
        jobId,
        attempts: ATTEMPTS,
        backoff: { type: 'exponential', delay: BACKOFF_MS },
        removeOnComplete: false,
        removeOnFail: false,
      });
      added++;
    }
    return { added, queued: jobs.length - added };
  } finally {
    await queue.close();
  }
}

export type CellState = 'not queued' | 'waiting' | 'retrying' | 'training' | 'done' | 'failed';

export interface CellStatus {
  cell: ComparisonCell;
  state: CellState;
  progress?: CellProgress;
  /** A failed cell's last error; a retrying one's last fault. */
  error?: string;
  attempts: number;
}

/** Each cell's state in the queue. */
export async function cellStatuses(conn: Redis, cells: ComparisonCell[]): Promise<CellStatus[]> {
  const queue = new Queue<CellJob>(QUEUE_NAME, { connection: conn });
  try {
    return await Promise.all(
      cells.map(async (cell): Promise<CellStatus> => {
        const job = await Job.fromId<CellJob>(queue, cell.jobId);
        if (!job) return { cell, state: 'not queued', attempts: 0 };
        const s = await job.getState();
        const state: CellState =
          s === 'completed'
            ? 'done'
            : s === 'failed'
              ? 'failed'
              : s === 'active'
                ? 'training'
                : s === 'delayed' && job.attemptsMade > 0
                  ? 'retrying'
                  : 'waiting';
        const progress = typeof job.progress === 'object' ? (job.progress as CellProgress) : undefined;
        return {
          cell,
          state,
          ...(progress && { progress }),
          ...(job.failedReason && { error: job.failedReason }),
          attempts: job.attemptsMade,
        };
      }),
    );
  } finally {
    await queue.close();
  }
}

/** What training one cell in a child process came to. */
export interface CellOutcome {
  /** Set when it failed: the one-line reason, and whether trying again could help. */
  error?: { message: string; final: boolean };
}

export interface WorkerOptions {
  queue: QueueAddress;
  concurrency: number;
  /** A job whose worker has not renewed its lock for this long is handed to another worker. */
  stallSeconds: number;
  /**
   * Trains one cell to its end in another process, reporting progress as it goes; `takeOver` is the
   * trainer whose run-folder lock may be taken over (the one that held the job when it stalled).
   */
  trainCell: (
    job: CellJob,
    takeOver: CellProgress['trainer'],
    progress: (p: Omit<CellProgress, 'worker'>) => void,
  ) => Promise<CellOutcome>;
  log: Logger;
}

/** Backoff between attempts at reaching Redis: 1, 2, 4 ... 30 s. */
const reconnectDelay = (times: number) => Math.min(30_000, 1000 * 2 ** Math.min(times - 1, 5));

/**
 * Takes cells from the queue until stop() is called (or the process ends). Redis out of reach is
 * retried with backoff, said in one line each time it is lost and once when it is back.
 */
export function startWorker(o: WorkerOptions): { stop: () => Promise<void>; worker: Worker<CellJob> } {
  const me = `${hostname()}:${process.pid}`;
  let down = false;
  const connection = new Redis({
    ...o.queue.options,
    maxRetriesPerRequest: null,
    retryStrategy: (times) => {
      const delay = reconnectDelay(times);
      o.log.warn(`the queue's Redis at ${o.queue.shown} is out of reach: trying again in ${delay / 1000} s`);
      down = true;
      return delay;
    },
  });
  connection.on('error', () => {}); // each retry says it above
  connection.on('ready', () => {
    if (down) o.log.info(`the queue's Redis at ${o.queue.shown} is back`);
    down = false;
  });
  const worker = new Worker<CellJob>(
    QUEUE_NAME,
    async (job) => {
      const previous = typeof job.progress === 'object' ? (job.progress as CellProgress) : undefined;
      const again = previous?.worker && previous.worker !== me ? ` (it was ${previous.worker}'s)` : '';
      o.log.info(`cell ${job.data.cell.name} of ${job.data.dir}: training it, job ${job.id}${again}`);
      let last: CellProgress = { worker: me };
      await job.updateProgress(last);
      const outcome = await o.trainCell(job.data, previous?.trainer, (p) => {
        last = { ...last, ...p };
        job.updateProgress(last).catch(() => {}); // a lost update is overtaken by the next one
      });
      if (outcome.error) {
        o.log.warn(`cell ${job.data.cell.name}: ${outcome.error.message}`);
        throw outcome.error.final
          ? new UnrecoverableError(outcome.error.message)
          : new Error(outcome.error.message);
      }
      o.log.info(`cell ${job.data.cell.name}: done`);
      return { worker: me };
    },
    {
      connection,
      concurrency: o.concurrency,
      lockDuration: o.stallSeconds * 1000,
      stalledInterval: o.stallSeconds * 1000,
      // A cell whose workers keep dying is failed after this many hand-overs, not retried forever.
      maxStalledCount: ATTEMPTS,
    },
  );
  worker.on('error', () => {}); // connection errors: said by retryStrategy
  return {
    worker,
    stop: async () => {
      await worker.close();
      connection.disconnect();
    },
  };
}
