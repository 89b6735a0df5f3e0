import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, open, readFile, readlink, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { verifyCheckpoint } from '../../src/run/checkpoints.js';
import { validateConfig } from '../../src/train/config.js';
import { createTrainState, disposeTrainState } from '../../src/train/step.js';
import { CLI, TINY, TINY_FLAGS, tempDir, useWasm } from '../helpers.js';

// Faults injected for real: a small tmpfs that fills up under a checkpoint or a metrics write, and a
// SIGKILL that lands while a checkpoint is being written. Both run the CLI as a user would.

let root: string;
let data: string;
/** Bytes of one whole checkpoint of the runs below: both networks and both optimizers' two moments. */
let checkpointBytes: number;
before(async () => {
  root = await tempDir('p2p-io-');
  data = join(root, 'data');
  await writeSyntheticDataset(data, { count: 10, size: 32, seed: 8 });
  await useWasm();
  const s = createTrainState(validateConfig({ data, out: root, ...TINY }));
  checkpointBytes = 3 * 4 * (s.G.countParams() + s.D.countParams());
  disposeTrainState(s);
});

/** `pix2pix train` of the tiny model on the 32 px dataset, 2 steps an epoch. */
const trainArgs = (out: string, ...more: string[]) => [
  CLI,
  'train',
  '--data',
  data,
  '--out',
  out,
  ...TINY_FLAGS,
  '--batch-size',
  '2',
  '--max-steps',
  '2',
  '--backend',
  'wasm',
  ...more,
];

function cli(args: string[]) {
  // The timeout is the "no hang" check: a fault must end the process, not leave it waiting.
  return spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 240_000 });
}

const linkOf = (out: string) => readlink(join(out, 'checkpoints', 'latest'));
const unfinished = (out: string) => readdirSync(join(out, 'checkpoints')).filter((n) => n.endsWith('.tmp'));

/** Writes zeros into `path` until the file system is full. */
async function fill(path: string): Promise<void> {
  const h = await open(path, 'w');
  const chunk = Buffer.alloc(1 << 20);
  try {
    for (;;) await h.write(chunk);
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    await h.close();
  }
}

describe('disk full', () => {
  let mnt: string;
  let mounted = false;
  before(async () => {
    mnt = join(root, 'mnt');
    await mkdir(mnt);
    // Room for one whole checkpoint (~1.5 MB) but not for a second beside it.
    const size = `size=${Math.ceil((1.5 * checkpointBytes) / 2 ** 10)}k`;
    mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', size, 'tmpfs', mnt]).status === 0;
  });
  after(() => {
    if (mounted) spawnSync('umount', [mnt]);
  });

  it('while writing a checkpoint: one clear line, exit 1, latest on the previous whole checkpoint, and --resume after freeing space', async (t) => {
    if (!mounted) return t.skip('mounting a tmpfs needs root (CAP_SYS_ADMIN)');
    const out = join(mnt, 'run');
    const full = cli(trainArgs(out, '--epochs', '2'));
    assert.equal(full.status, 1, full.stderr);
    const lines = full.stderr.trim().split('\n');
    assert.match(
      lines.at(-1)!,
      /^error: cannot write the checkpoint of epoch 2 \(no space left on device\): checkpoints\/latest still names epoch-0001, which is whole; free space or fix the folder, then continue with --resume$/,
    );
    assert.equal(await linkOf(out), 'epoch-0001');
    await verifyCheckpoint(join(out, 'checkpoints', 'epoch-0001')); // every file, optimizer state too
    assert.deepEqual(unfinished(out), [], 'the partial checkpoint was removed');
    assert.ok(!existsSync(join(out, 'checkpoints', 'epoch-0002')));

    const room = `remount,size=${Math.ceil((3 * checkpointBytes) / 2 ** 10)}k`;
    assert.equal(spawnSync('mount', ['-o', room, mnt]).status, 0);
    const resumed = cli([...trainArgs(out, '--epochs', '2'), '--resume']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.equal(await linkOf(out), 'epoch-0002');
    await verifyCheckpoint(join(out, 'checkpoints', 'epoch-0002'));
  });

  it('while writing metrics.jsonl: one clear line, exit 1, metrics.jsonl and config.json unchanged', async (t) => {
    if (!mounted) return t.skip('mounting a tmpfs needs root (CAP_SYS_ADMIN)');
    const out = join(mnt, 'run');
    const before = await Promise.all(['metrics.jsonl', 'config.json'].map((f) => readFile(join(out, f))));
    await fill(join(mnt, 'filler'));
    const r = cli([...trainArgs(out, '--epochs', '3'), '--resume']);
    assert.equal(r.status, 1, r.stderr);
    assert.match(
      r.stderr.trim().split('\n').at(-1)!,
      /^error: cannot write .*metrics\.jsonl \(no space left on device\): checkpoints\/latest still names epoch-0002, which is whole/,
    );
    const now = await Promise.all(['metrics.jsonl', 'config.json'].map((f) => readFile(join(out, f))));
    assert.ok(now[0]!.equals(before[0]!), 'metrics.jsonl unchanged');
    assert.ok(now[1]!.equals(before[1]!), 'config.json unchanged');
    assert.equal(await linkOf(out), 'epoch-0002');
    await rm(join(mnt, 'filler'));
  });
});

describe('SIGKILL during a checkpoint write', () => {
  it('the checkpoint being written never becomes latest; --resume removes it and continues', async () => {
    let out = '';
    let landed = false;
    // The kill has to land inside the write: tried again in the rare case it lands between two.
    for (let attempt = 0; attempt < 5 && !landed; attempt++) {
      out = join(root, `killed-${attempt}`);
      const child = spawn(
        process.execPath,
        trainArgs(out, '--epochs', '2', '--save-every-steps', '1', '--seed', '3'),
        {
          stdio: 'ignore',
        },
      );
      const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_, sig) => r(sig)));
      const ckpts = join(out, 'checkpoints');
      // Wait until a checkpoint is named and the next one is half-written, then kill.
      for (let i = 0; i < 60_000; i++) {
        const names = existsSync(ckpts) ? readdirSync(ckpts) : [];
        if (names.includes('latest') && names.some((n) => /^\.epoch-.*\.tmp$/.test(n))) break;
        await new Promise((r) => setTimeout(r, 1));
      }
      child.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL');
      landed = unfinished(out).some((n) => n.startsWith('.epoch-'));
    }
    assert.ok(landed, 'a kill landed while a checkpoint was being written');
    const latest = await linkOf(out);
    assert.ok(!latest.endsWith('.tmp'));
    const meta = await verifyCheckpoint(join(out, 'checkpoints', latest));
    assert.ok(meta.step >= 1);

    const resumed = cli([
      ...trainArgs(out, '--epochs', '2', '--save-every-steps', '1', '--seed', '3'),
      '--resume',
    ]);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`resuming from .*${latest}`));
    assert.deepEqual(unfinished(out), []);
    assert.equal(await linkOf(out), 'epoch-0002');
  });
});
