import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { setupBackend } from '../../src/backend/index.js';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { type TrainConfig, validateConfig } from '../../src/train/config.js';
import { TrainingStopped, train } from '../../src/train/loop.js';
import { CLI, latestCheckpointBytes, metricsWithoutTiming, readMetrics, tempDir } from '../helpers.js';
import { softwareGpuEnv, useSoftwareGpu, webgpuSkip } from './webgpu-helpers.js';

async function savedBackends(out: string): Promise<string> {
  return (JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as { backend: string }).backend;
}

describe('training runs on webgpu (software adapter)', { skip: webgpuSkip }, () => {
  let data: string;
  let root: string;
  before(async () => {
    useSoftwareGpu();
    root = await tempDir('p2p-webgpu-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 6, size: 32, seed: 8 });
  });
  // Dropout on (seeded masks are part of what must match), 2 epochs of 2 steps of one pair, the tiny
  // G and D (a step of the 64-wide D takes seconds on the software adapter).
  const config = (out: string, epochs = 2): TrainConfig =>
    validateConfig({
      data,
      out,
      size: 32,
      ngf: 8,
      ndf: 8,
      batchSize: 1,
      epochs,
      maxStepsPerEpoch: 2,
      seed: 5,
    });

  it('exact resume on webgpu: stopped after step 3 and resumed, bit-identical weights, moments and metrics', async () => {
    await setupBackend('webgpu');
    const straight = join(root, 'straight');
    await train(config(straight), false);
    const stopped = join(root, 'stopped');
    let steps = 0;
    await assert.rejects(
      train(config(stopped), false, {
        onStep: () => steps++,
        shouldStop: () => (steps === 3 ? 'SIGINT' : undefined),
      }),
      (e: Error) => e instanceof TrainingStopped && /after step 3/.test(e.message),
    );
    await train(config(stopped), true);
    assert.deepEqual(await metricsWithoutTiming(stopped), await metricsWithoutTiming(straight));
    const [a, b] = [await latestCheckpointBytes(straight), await latestCheckpointBytes(stopped)];
    a.forEach((buf, i) => {
      assert.ok(buf.equals(b[i]!), `checkpoint file ${i} differs`);
    });
  });

  it('a run started on webgpu resumes on native (or wasm), and one started there resumes on webgpu', async () => {
    const moved = join(root, 'to-cpu');
    await setupBackend('webgpu');
    await train(config(moved, 1), false);
    const cpuName = (await setupBackend('auto')).name;
    await train(config(moved, 2), true);
    assert.deepEqual(
      (await readMetrics(moved)).map((r) => r.step),
      [1, 2, 3, 4],
    );
    assert.equal(await savedBackends(moved), cpuName);

    const back = join(root, 'to-gpu');
    await train(config(back, 1), false);
    await setupBackend('webgpu');
    await train(config(back, 2), true);
    const rows = await readMetrics(back);
    assert.deepEqual(
      rows.map((r) => r.step),
      [1, 2, 3, 4],
    );
    for (const r of rows) assert.ok(Number.isFinite(r.g_l1) && Number.isFinite(r.d_loss), JSON.stringify(r));
    assert.equal(await savedBackends(back), 'webgpu');
  });
});

/** The CLI as a user runs it, with `env` added to this process's environment. */
function cli(env: Record<string, string>, ...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function assertOneLineError(r: ReturnType<typeof cli>, pattern: RegExp) {
  assert.notEqual(r.code, 0);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('error'));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, pattern);
  // Dawn's own Vulkan warnings (native, `at CheckVkSuccessImpl (...cpp:106)`) may come first; no JS stack.
  assert.ok(!/^\s+at .*\.[cm]?[jt]s:\d+/m.test(r.stderr), `no stack trace: ${r.stderr}`);
}

async function pixels(path: string): Promise<Buffer> {
  return (await sharp(path).raw().toBuffer({ resolveWithObject: true })).data;
}

describe('pix2pix --backend webgpu (software adapter)', { skip: webgpuSkip }, () => {
  let root: string;
  let data: string;
  before(async () => {
    root = await tempDir('p2p-webgpu-cli-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 6, size: 32, seed: 3 });
  });

  it('train names the adapter and writes a checkpoint; translate on webgpu is within 2 levels of cpu; auto still picks a CPU backend', async () => {
    const run = join(root, 'run');
    const r = cli(
      softwareGpuEnv,
      ...['train', '--data', data, '--out', run, '--size', '32', '--ngf', '8', '--ndf', '8'],
      ...['--batch-size', '2'],
      ...['--epochs', '1', '--max-steps', '2', '--backend', 'webgpu'],
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /backend: webgpu \(adapter: google \/ swiftshader.*\(software\); max buffer \d+ MiB, max binding \d+ MiB\)/,
    );
    assert.match(r.stderr, /micro-batch 2: the whole batch of 2 \(WebGPU reports no memory size/);
    assert.equal(await savedBackends(run), 'webgpu');

    const input = join(data, 'test', 'A');
    const outs: Record<string, Buffer[]> = {};
    for (const backend of ['webgpu', 'cpu', 'auto']) {
      const out = join(root, `out-${backend}`);
      const t = cli(
        softwareGpuEnv,
        'translate',
        '--model',
        run,
        '--input',
        input,
        '--output',
        out,
        '--backend',
        backend,
      );
      assert.equal(t.code, 0, t.stderr);
      if (backend === 'auto') {
        // Never a software adapter, also with P2P_WEBGPU_SOFTWARE=1.
        assert.match(t.stderr, /backend: (native|wasm)\n/);
        continue;
      }
      const names = (await readdir(out)).sort();
      outs[backend] = await Promise.all(names.map((n) => pixels(join(out, n))));
    }
    assert.ok(outs.cpu!.length > 0);
    outs.webgpu!.forEach((img, i) => {
      const ref = outs.cpu![i]!;
      assert.equal(img.length, ref.length);
      let worst = 0;
      for (let j = 0; j < img.length; j++) worst = Math.max(worst, Math.abs(img[j]! - ref[j]!));
      assert.ok(worst <= 2, `image ${i}: off by ${worst} levels`);
    });
  });

  it('with no adapter, or only a software one not allowed, --backend webgpu is one error line saying why and how', () => {
    const args = [
      'train',
      '--data',
      data,
      '--out',
      join(root, 'never'),
      '--size',
      '32',
      '--backend',
      'webgpu',
    ];
    // A driver list that names no driver: no adapter, whatever GPU the machine has.
    const none = cli({ VK_ICD_FILENAMES: join(root, 'no-such-icd.json') }, ...args);
    assertOneLineError(none, /Dawn found no GPU adapter: .*P2P_WEBGPU_SOFTWARE=1/);
    const soft = cli({ VK_ICD_FILENAMES: softwareGpuEnv.VK_ICD_FILENAMES, P2P_WEBGPU_SOFTWARE: '' }, ...args);
    assertOneLineError(
      soft,
      /the only WebGPU adapter is a software one \(google \/ swiftshader.*set P2P_WEBGPU_SOFTWARE=1/,
    );
  });
});
