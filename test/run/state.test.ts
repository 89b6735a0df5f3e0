import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runConfigPath, writeRunConfig } from '../../src/run/folder.js';
import { CHECKPOINTS_DIR, checkpointName, midEpochName, RUN_LOCK } from '../../src/run/layout.js';
import { lockRun, lockTarget } from '../../src/run/lock.js';
import { runState } from '../../src/run/state.js';
import { tempDir } from '../helpers.js';

const quiet = { info: () => {}, warn: () => {} };

/** A run folder configured for 2 + 1 epochs, holding the checkpoints of `epochs` (names only). */
async function run(epochs: number[], mid?: { epoch: number; step: number }): Promise<string> {
  const dir = await tempDir('p2p-state-');
  await writeRunConfig(dir, {
    config: { data: 'd', out: dir, size: 32, epochs: 2, epochsDecay: 1 },
    backend: 'cpu',
    versions: {},
    started: '2026-01-01T00:00:00Z',
    resumes: [],
  });
  const names = [...epochs.map(checkpointName), ...(mid ? [midEpochName(mid)] : [])];
  for (const n of names) await mkdir(join(dir, CHECKPOINTS_DIR, n), { recursive: true });
  return dir;
}

describe('runState', () => {
  it('finished: the last epoch checkpoint is at epochs + epochsDecay and no process holds the lock', async () => {
    assert.deepEqual(await runState(await run([1, 2, 3])), { state: 'finished', epoch: 3, totalEpochs: 3 });
  });

  it('stopped: checkpoints short of the configured epochs (a mid-epoch one is not a whole epoch), or none', async () => {
    assert.deepEqual(await runState(await run([1, 2], { epoch: 3, step: 40 })), {
      state: 'stopped',
      epoch: 2,
      totalEpochs: 3,
    });
    assert.deepEqual(await runState(await run([])), { state: 'stopped', totalEpochs: 3 });
  });

  it('training: a lock held by this (live) process, even over a finished run; released, the run is finished', async () => {
    const dir = await run([1, 2, 3]);
    const lock = await lockRun(dir, quiet);
    try {
      assert.deepEqual(await runState(dir), {
        state: 'training',
        epoch: 3,
        totalEpochs: 3,
        holder: lock.holder,
      });
    } finally {
      await lock.release();
    }
    assert.equal((await runState(dir)).state, 'finished');
  });

  it("a dead process's lock is not training: the run is stopped", async () => {
    const dir = await run([1]);
    // The pid of a process that has exited: nothing runs under it (until the system reuses it).
    const pid = spawnSync(process.execPath, ['-e', '']).pid!;
    await symlink(lockTarget({ pid, host: hostname(), since: '2026-01-01T00:00:00Z' }), join(dir, RUN_LOCK));
    assert.deepEqual(await runState(dir), { state: 'stopped', epoch: 1, totalEpochs: 3 });
  });

  it("another host's lock counts as training there, and says it could not be checked from here", async () => {
    const dir = await run([1]);
    const holder = { pid: 1234, host: 'elsewhere', since: '2026-01-01T00:00:00Z' };
    await symlink(lockTarget(holder), join(dir, RUN_LOCK));
    assert.deepEqual(await runState(dir), {
      state: 'training',
      epoch: 1,
      totalEpochs: 3,
      holder,
      otherHost: true,
    });
  });

  it('without a readable config.json the total is unknown, so a run is never called finished', async () => {
    const dir = await run([1, 2, 3]);
    await writeFile(runConfigPath(dir), '{"config":');
    assert.deepEqual(await runState(dir), { state: 'stopped', epoch: 3 });
  });
});
