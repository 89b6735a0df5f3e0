import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { type TrainConfig, validateConfig } from '../../src/train/config.js';
import { TrainingStopped, train } from '../../src/train/loop.js';
import {
  CLI,
  metricsWithoutTiming as metrics,
  latestCheckpointBytes as state,
  TINY,
  TINY_FLAGS,
  tempDir,
  useWasm,
} from '../helpers.js';

before(useWasm);

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, 'train', ...args], { encoding: 'utf8' });
}

describe('exact resume', () => {
  let data: string;
  let root: string;
  before(async () => {
    root = await tempDir('p2p-exact-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 10, size: 32, seed: 8 });
  });
  /** `train` flags of the CLI runs: the same run as `config` below. */
  const cliArgs = (out: string, ...more: string[]) => [
    ...['--data', data, '--out', out, ...TINY_FLAGS, '--batch-size', '2', '--seed', '5', '--backend', 'wasm'],
    ...more,
  ];
  // The tiny model: its 8ngf-channel level has dropout, so the seeded masks are part of what must match.
  const config = (out: string): TrainConfig =>
    validateConfig({ data, out, ...TINY, batchSize: 2, epochs: 2, maxStepsPerEpoch: 3, seed: 5 });

  it('stopped mid-epoch (SIGINT path) and resumed: bit-identical weights, moments and metrics', async () => {
    const straight = join(root, 'straight');
    await train(config(straight), false);

    const stopped = join(root, 'stopped');
    let steps = 0;
    await assert.rejects(
      train(config(stopped), false, {
        onStep: () => steps++,
        shouldStop: () => (steps === 4 ? 'SIGINT' : undefined),
      }),
      (e: Error) =>
        e instanceof TrainingStopped &&
        e.exitCode === 130 &&
        /stopped by SIGINT after step 4: checkpoint .*epoch-0002-step-00000004/.test(e.message),
    );
    assert.equal(await readlink(join(stopped, 'checkpoints', 'latest')), 'epoch-0002-step-00000004');
    await train(config(stopped), true);

    assert.deepEqual(await metrics(stopped), await metrics(straight));
    const [a, b] = [await state(straight), await state(stopped)];
    for (const [i, buf] of a.entries()) assert.ok(buf.equals(b[i]!), `file ${i} differs`);
    // The mid-epoch checkpoint was only for resuming: gone once epoch 2's is durable.
    assert.ok(!existsSync(join(stopped, 'checkpoints', 'epoch-0002-step-00000004')));
  });

  it('SIGKILL between --save-every-steps checkpoints, then --resume: the same run as without the kill', async () => {
    const args = (out: string) =>
      cliArgs(out, '--epochs', '4', '--max-steps', '3', '--save-every-steps', '2');
    const straight = join(root, 'cli-straight');
    assert.equal(cli(args(straight)).status, 0);

    const killed = join(root, 'cli-killed');
    const child = spawn(process.execPath, [CLI, 'train', ...args(killed)], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_, sig) => r(sig)));
    // Kill after step 7 is logged: between the checkpoints of steps 6 and 8, inside epoch 3.
    for (let i = 0; i < 600; i++) {
      const text = existsSync(join(killed, 'metrics.jsonl'))
        ? await readFile(join(killed, 'metrics.jsonl'), 'utf8')
        : '';
      if (text.split('\n').filter(Boolean).length >= 7) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    const resumed = cli([...args(killed), '--resume']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.deepEqual(await metrics(killed), await metrics(straight));
    const [a, b] = [await state(straight), await state(killed)];
    for (const [i, buf] of a.entries()) assert.ok(buf.equals(b[i]!), `file ${i} differs`);
  });

  it('SIGINT to the CLI: the step finishes, a checkpoint is written, exit 130, and it resumes', async () => {
    const out = join(root, 'cli-int');
    const args = cliArgs(out, '--epochs', '50');
    const child = spawn(process.execPath, [CLI, 'train', ...args], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    for (let i = 0; i < 600 && !existsSync(join(out, 'metrics.jsonl')); i++)
      await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGINT');
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /stopped by SIGINT after step (\d+): checkpoint .* written; continue with --resume/);
    const latest = await readlink(join(out, 'checkpoints', 'latest'));
    const step = Number(/step (\d+)/.exec(stderr)![1]);
    const meta = JSON.parse(await readFile(join(out, 'checkpoints', latest, 'meta.json'), 'utf8'));
    assert.equal(meta.step, step);
    assert.equal((await metrics(out)).length, step);
    const resumed = cli([...args, '--epochs', String(meta.epoch), '--resume']);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`resuming from .*${latest}`));
  });
});
