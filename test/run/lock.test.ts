import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, lstatSync } from 'node:fs';
import { mkdir, readlink, realpath, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { latestCheckpoint } from '../../src/run/checkpoints.js';
import { readMetrics } from '../../src/run/folder.js';
import { RUN_LOCK } from '../../src/run/layout.js';
import { lockRun, lockTarget, parseLockTarget } from '../../src/run/lock.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { validateConfig } from '../../src/train/config.js';
import { createTrainState, disposeTrainState } from '../../src/train/step.js';
import { type HttpError, openInside } from '../../src/web/paths.js';
import { discoverRuns, readRunDetail } from '../../src/web/runs.js';
import { CLI, TINY, TINY_FLAGS, tempDir, useWasm } from '../helpers.js';

/** A log that keeps its lines. */
function memoryLog() {
  const lines: string[] = [];
  return { lines, info: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) };
}

/** The pid of a process that has exited: nothing runs under it (until the system reuses it). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.equal(r.status, 0);
  return r.pid!;
}

const REFUSAL =
  /^(.+) is being trained by pid (\d+) on host (\S+) since (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ): wait for it, or stop it$/;

describe('run.lock', () => {
  it('is a symlink naming pid, host and since; a second taker in a live process is refused in one line naming it; release removes it', async () => {
    const dir = await tempDir('p2p-lock-');
    const lock = await lockRun(dir, memoryLog());
    const target = await readlink(join(dir, RUN_LOCK));
    assert.deepEqual(parseLockTarget(target), lock.holder);
    assert.equal(lock.holder.pid, process.pid);
    assert.equal(lock.holder.host, hostname());
    // This process is alive, so its own lock is not taken over either.
    const refused = await lockRun(dir, memoryLog()).then(
      () => assert.fail('a second lock was given'),
      (e: Error) => e.message,
    );
    const m = REFUSAL.exec(refused);
    assert.ok(m, refused);
    assert.deepEqual([m[1], Number(m[2]), m[3], m[4]], [dir, process.pid, hostname(), lock.holder.since]);
    await lock.release();
    assert.ok(!existsSync(join(dir, RUN_LOCK)), 'released');
    const again = await lockRun(dir, memoryLog());
    await again.release();
  });

  it('a lock left by a dead process of this host is taken over, with one log line saying so', async () => {
    const dir = await tempDir('p2p-lock-');
    const pid = deadPid();
    const stale = { pid, host: hostname(), since: '2026-12-06T04:40:00Z' };
    await symlink(lockTarget(stale), join(dir, RUN_LOCK));
    const log = memoryLog();
    const lock = await lockRun(dir, log);
    assert.equal(lock.holder.pid, process.pid);
    assert.deepEqual(log.lines, [
      `${dir}: taking over the lock of pid ${pid} (since 2026-12-06T04:40:00Z), which is no longer running`,
    ]);
    assert.equal(parseLockTarget(await readlink(join(dir, RUN_LOCK)))?.pid, process.pid);
    await lock.release();
  });

  it('two processes taking over one stale lock at once: exactly one gets it', async () => {
    const dir = await tempDir('p2p-lock-');
    await symlink(
      lockTarget({ pid: deadPid(), host: hostname(), since: '2026-12-06T04:40:00Z' }),
      join(dir, RUN_LOCK),
    );
    // Both in this process: the second sees the first's live lock (this pid), as another process would.
    const results = await Promise.allSettled([lockRun(dir, memoryLog()), lockRun(dir, memoryLog())]);
    const held = results.filter((r) => r.status === 'fulfilled');
    assert.equal(held.length, 1, JSON.stringify(results.map((r) => r.status)));
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.match((refused.reason as Error).message, REFUSAL);
    await (held[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof lockRun>>>).value.release();
  });

  it("another host's lock is refused with advice, since its process cannot be checked from here", async () => {
    const dir = await tempDir('p2p-lock-');
    await symlink(
      lockTarget({ pid: 1234, host: 'elsewhere', since: '2026-12-06T04:40:00Z' }),
      join(dir, RUN_LOCK),
    );
    await assert.rejects(lockRun(dir, memoryLog()), (e: Error) => {
      assert.equal(
        e.message,
        `${dir} is being trained by pid 1234 on host elsewhere since 2026-12-06T04:40:00Z: wait for it, or stop it there; if it is no longer running, remove ${join(dir, RUN_LOCK)}`,
      );
      return true;
    });
    assert.equal(
      await readlink(join(dir, RUN_LOCK)),
      '1234@elsewhere@2026-12-06T04:40:00Z',
      'left as it was',
    );
  });

  it('a run.lock pix2pix did not write is refused, not overwritten', async () => {
    const dir = await tempDir('p2p-lock-');
    await writeFile(join(dir, RUN_LOCK), 'mine\n');
    await assert.rejects(
      lockRun(dir, memoryLog()),
      /run\.lock is not a lock pix2pix wrote .*remove it if no pix2pix train runs/,
    );
  });

  it("release leaves a lock that is no longer this holder's", async () => {
    const dir = await tempDir('p2p-lock-');
    const lock = await lockRun(dir, memoryLog());
    const other = lockTarget({ pid: 1234, host: 'elsewhere', since: '2026-12-06T04:40:00Z' });
    spawnSync('ln', ['-sfn', other, join(dir, RUN_LOCK)]);
    await lock.release();
    assert.equal(await readlink(join(dir, RUN_LOCK)), other);
  });

  it('serve shows a locked run as any other and never serves the lock (a dangling link to it)', async () => {
    const root = await realpath(await tempDir('p2p-lock-serve-'));
    const dir = join(root, 'run');
    await mkdir(dir);
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ config: { data: 'd', out: dir, size: 32, epochs: 1, epochsDecay: 0 } }),
    );
    const lock = await lockRun(dir, memoryLog());
    try {
      const runs = await discoverRuns(root);
      assert.deepEqual(
        runs.map((r) => [r.id, r.kind, r.totalEpochs]),
        [['run', 'run', 1]],
      );
      const detail = await readRunDetail(root, runs[0]!);
      assert.equal(detail.configError, undefined);
      await assert.rejects(openInside(root, ['run', RUN_LOCK]), (e: HttpError) => e.status === 404);
    } finally {
      await lock.release();
    }
  });
});

describe('two `pix2pix train` on one --out', () => {
  let data: string;
  let root: string;
  before(async () => {
    await useWasm();
    root = await tempDir('p2p-lock-cli-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 6, size: 32, seed: 5 });
  });

  it('the second exits 1 with the one-line refusal naming the first; the first finishes and its run is intact', async () => {
    const out = join(root, 'run');
    const args = [
      CLI,
      'train',
      '--data',
      data,
      '--out',
      out,
      ...TINY_FLAGS,
      '--batch-size',
      '2',
      '--epochs',
      '2',
      '--max-steps',
      '2',
      '--backend',
      'wasm',
    ];
    const first = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let firstErr = '';
    first.stderr.on('data', (d) => {
      firstErr += d;
    });
    const firstExit = new Promise<number | null>((resolve) => first.on('exit', resolve));
    // The first holds the lock, and is held still (SIGSTOP) while the second starts, however long that
    // takes: a stopped process is still a running one to the lock.
    const locked = () => lstatSync(join(out, RUN_LOCK), { throwIfNoEntry: false }) !== undefined;
    while (!locked()) {
      if (first.exitCode !== null) assert.fail(`the first train ended before locking: ${firstErr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGSTOP');
    const second = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (d) => {
        stderr += d;
      });
      p.on('exit', (code) => resolve({ code, stderr }));
    });
    first.kill('SIGCONT');
    assert.equal(await firstExit, 0, firstErr);

    assert.equal(second.code, 1, second.stderr);
    const lines = second.stderr.trim().split('\n');
    assert.equal(lines.filter((l) => l.startsWith('error')).length, 1, second.stderr);
    assert.match(
      lines.at(-1)!,
      new RegExp(
        `^error: ${out} is being trained by pid ${first.pid} on host \\S+ since \\S+Z: wait for it, or stop it$`,
      ),
    );
    assert.ok(!/^\s+at /m.test(second.stderr), `no stack trace: ${second.stderr}`);

    // The first's run, untouched by the second: each step once, in order, and a checkpoint that loads.
    assert.deepEqual(
      (await readMetrics(out)).map((r) => r.step),
      [1, 2, 3, 4],
    );
    const state = createTrainState(validateConfig({ data, out, ...TINY, batchSize: 2 }));
    try {
      const meta = await loadCheckpoint((await latestCheckpoint(out))!, state);
      assert.deepEqual([meta.epoch, meta.step], [2, 4]);
    } finally {
      disposeTrainState(state);
    }
    assert.ok(!locked(), 'released at the end');
  });
});
