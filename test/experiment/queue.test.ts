import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { statusLine } from '../../src/cli/commands/compare-queue.js';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import {
  type CellJob,
  type CellProgress,
  cellStatuses,
  parseQueueUrl,
  QUEUE_NAME,
} from '../../src/experiment/queue.js';
import { readComparisonFile } from '../../src/run/comparison.js';
import { discoverRuns } from '../../src/web/runs.js';
import { assertOneLineError, CLI, latestCheckpointBytes, pix2pix, TINY_FLAGS, tempDir } from '../helpers.js';

/** A port nothing listens on (the OS's choice, closed again). */
function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/** A worker process in its own process group, so that killing the group is a machine lost. */
interface WorkerProc {
  proc: ChildProcess;
  out: string[];
}

function startWorkerProc(url: string): WorkerProc {
  const proc = spawn(
    process.execPath,
    [CLI, 'worker', '--queue', url, '--backend', 'wasm', '--stall-seconds', '2'],
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const w: WorkerProc = { proc, out: [] };
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => w.out.push(d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => w.out.push(d));
  return w;
}

function killGroup(w: WorkerProc, signal: NodeJS.Signals): void {
  try {
    process.kill(-w.proc.pid!, signal);
  } catch {}
}

/** `text` as a regular expression that matches it literally. */
const lit = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

describe('compare --queue and pix2pix worker (BullMQ on a local redis-server)', () => {
  let root: string;
  let data: string;
  let redis: ChildProcess;
  let url: string;
  let conn: Redis;
  let queue: Queue<CellJob>;
  const workers: WorkerProc[] = [];
  // 2 cells of 3 epochs of 3 steps at 32 px, ngf 8, on the wasm backend (every machine has it).
  const GRID = ['--vary', 'batch-size=1,2'];
  const RUN = [...TINY_FLAGS, '--epochs', '3', '--max-steps', '3', '--backend', 'wasm'];

  before(async () => {
    root = await tempDir('p2p-queue-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 10, size: 32, seed: 3 });
    const port = await freePort();
    redis = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', root],
      {
        stdio: 'ignore',
      },
    );
    url = `redis://127.0.0.1:${port}`;
    conn = new Redis({
      ...parseQueueUrl(url).options,
      maxRetriesPerRequest: null,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    conn.on('error', () => {}); // until redis-server listens: the loop below tries again
    for (let i = 0; ; i++) {
      try {
        await conn.connect();
        break;
      } catch (e) {
        if (i === 50)
          throw new Error(`redis-server did not start on port ${port} (scripts/setup.sh installs it): ${e}`);
        await sleep(100);
      }
    }
    queue = new Queue<CellJob>(QUEUE_NAME, { connection: conn });
  });

  after(async () => {
    for (const w of workers) killGroup(w, 'SIGKILL');
    await queue?.close();
    conn?.disconnect();
    redis?.kill('SIGKILL');
  });

  /** `pix2pix compare --queue URL --data DATA --out OUT ...args`: queues a comparison (on this test's Redis unless `on`). */
  const queueCompare = (out: string, args: string[], on = url) =>
    pix2pix(['compare', '--queue', on, '--data', data, '--out', out, ...args]);

  const jobsIn = async () => Object.values(await queue.getJobCounts()).reduce((a, b) => a + b, 0);

  it('a grid of 2 cells queued twice is 2 jobs; two workers train it, one killed (SIGKILL) inside a cell whose training the other resumes; weights equal a local compare, and the report lists both', async () => {
    const local = join(root, 'local');
    const r0 = await pix2pix(['compare', '--data', data, '--out', local, ...GRID, ...RUN]);
    assert.equal(r0.code, 0, r0.stderr);

    const out = join(root, 'queued');
    const q1 = await queueCompare(out, [...GRID, ...RUN]);
    assert.equal(q1.code, 0, q1.stderr);
    assert.match(q1.stdout + q1.stderr, /queued 2 cells on redis:\/\/127\.0\.0\.1:\d+/);
    const q2 = await queueCompare(out, [...GRID, ...RUN]);
    assert.equal(q2.code, 0, q2.stderr);
    assert.match(q2.stdout + q2.stderr, /queued 0 cells .*\(2 queued before: not added again\)/);
    assert.equal(await jobsIn(), 2);
    const file = (await readComparisonFile(out))!;
    assert.equal(file.cells.length, 2);

    // Before any worker: each cell waits, and serve shows the comparison with no cell yet.
    const st = await pix2pix(['compare', '--queue', url, '--out', out, '--status']);
    assert.equal(st.code, 0, st.stderr);
    for (const c of file.cells)
      assert.match(st.stdout + st.stderr, new RegExp(`^${lit(c.name)}: waiting$`, 'm'));
    const shown = await discoverRuns(root);
    assert.ok(
      shown.some((r) => r.kind === 'group' && r.id === 'queued'),
      JSON.stringify(shown),
    );

    workers.push(startWorkerProc(url), startWorkerProc(url));
    // Kill the worker of the first cell seen past its first epoch's checkpoint, while it still trains it.
    let killed: { job: string; worker: string } | undefined;
    for (let i = 0; !killed && i < 600; i++) {
      for (const c of file.cells) {
        const job = await Job.fromId<CellJob>(queue, c.jobId);
        const p = job?.progress as CellProgress | undefined;
        // Its first epoch's checkpoint written and its last not yet: the other worker must resume it.
        const ckpt = (e: number) => existsSync(join(out, c.folder, 'checkpoints', `epoch-000${e}`));
        if (!job || !ckpt(1) || ckpt(3) || (await job.getState()) !== 'active' || !p?.worker) continue;
        const w = workers.find((x) => p.worker.endsWith(`:${x.proc.pid}`))!;
        killGroup(w, 'SIGKILL');
        killed = { job: c.jobId, worker: p.worker };
        // What --status says of it then: training, on which worker, at which epoch.
        const [status] = await cellStatuses(conn, [c]);
        assert.match(
          statusLine(status!),
          new RegExp(`^${lit(c.name)}: training on ${lit(p.worker)}, epoch [1-3]/3, step \\d+`),
        );
        break;
      }
      if (!killed) await sleep(50);
    }
    assert.ok(killed, 'a worker was caught inside a cell');
    const killedCell = file.cells.find((c) => c.jobId === killed!.job)!;

    // --wait follows the cells to their end and writes the report.
    const w = await queueCompare(out, [...GRID, ...RUN, '--wait']);
    assert.equal(w.code, 0, `${w.stderr}\nworkers:\n${workers.map((x) => x.out.join('')).join('\n---\n')}`);

    for (const c of file.cells) {
      assert.deepEqual(
        await latestCheckpointBytes(join(out, c.folder)),
        await latestCheckpointBytes(join(local, c.folder)),
        `${c.name}: the queued cell's weights and moments equal the local one's`,
      );
    }
    // The killed cell was resumed (config.json records the resume), by the other worker.
    const saved = JSON.parse(await readFile(join(out, killedCell.folder, 'config.json'), 'utf8'));
    assert.equal(saved.resumes.length, 1, JSON.stringify(saved.resumes));
    const finalProgress = (await Job.fromId<CellJob>(queue, killed.job))!.progress as CellProgress;
    assert.notEqual(finalProgress.worker, killed.worker);
    const report = await readFile(join(out, 'report.md'), 'utf8');
    for (const c of file.cells) assert.ok(report.includes(c.name), `report lists ${c.name}`);
    assert.ok(!/waiting|failed|training/.test(report), 'no cell is marked unfinished');
    const done = await pix2pix(['compare', '--queue', url, '--out', out, '--status']);
    for (const c of file.cells)
      assert.match(done.stdout + done.stderr, new RegExp(`^${lit(c.name)}: done$`, 'm'));
  });

  it('a cell whose loss goes non-finite (--lr 1e30) fails once with its reason, not retried, and the report marks it; a closed port is one line from compare, while a worker keeps trying and says so', async () => {
    if (!workers.some((w) => w.proc.exitCode === null && w.proc.signalCode === null)) {
      workers.push(startWorkerProc(url));
    }
    const out = join(root, 'nan');
    const q = await queueCompare(out, ['--vary', 'lr=1e30', ...RUN]);
    assert.equal(q.code, 0, q.stderr);
    const [cell] = (await readComparisonFile(out))!.cells;
    let job: Job<CellJob> | undefined;
    for (let i = 0; i < 600; i++) {
      job = await Job.fromId<CellJob>(queue, cell!.jobId);
      if (job && (await job.getState()) === 'failed') break;
      await sleep(100);
    }
    assert.equal(await job!.getState(), 'failed');
    assert.match(job!.failedReason, /loss is NaN: stopped before updating the weights/);
    assert.equal(job!.attemptsMade, 1, 'not retried');
    const st = await pix2pix(['compare', '--queue', url, '--out', out, '--status']);
    assert.match(
      st.stdout + st.stderr,
      new RegExp(`^${lit(cell!.name)}: failed after 1 attempt: .*loss is NaN`, 'm'),
    );

    const report = await pix2pix(['compare', '--queue', url, '--out', out, '--report']);
    assert.equal(report.code, 0, report.stderr);
    assert.match(
      await readFile(join(out, 'report.md'), 'utf8'),
      /failed: epoch 1, step 2: the generator loss is NaN/,
    );

    const closed = await freePort();
    // A worker whose Redis is out of reach keeps trying, and says so.
    const lost = startWorkerProc(`redis://127.0.0.1:${closed}`);
    workers.push(lost);
    for (let i = 0; i < 100 && !/out of reach: trying again in/.test(lost.out.join('')); i++)
      await sleep(100);
    assert.match(
      lost.out.join(''),
      new RegExp(
        `the queue's Redis at redis://127\\.0\\.0\\.1:${closed} is out of reach: trying again in 1 s`,
      ),
    );
    assert.equal(lost.proc.exitCode, null, 'still running');

    const never = join(root, 'never');
    const r = await queueCompare(never, ['--vary', 'lr=1,2'], `redis://127.0.0.1:${closed}`);
    assertOneLineError(
      r,
      new RegExp(`cannot reach the queue's Redis at redis://127\\.0\\.0\\.1:${closed}.*ECONNREFUSED`),
    );
    assert.ok(!existsSync(never), 'nothing written');
  });
});
