import assert from 'node:assert/strict';
import { lstat, readFile, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { before, describe, it } from 'node:test';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { latestCheckpoint } from '../../src/run/checkpoints.js';
import { readSavedRun } from '../../src/run/folder.js';
import type { MetricsRow } from '../../src/run/records.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { type TrainConfig, validateConfig } from '../../src/train/config.js';
import { TrainingStopped, train } from '../../src/train/loop.js';
import { runFolderZip } from '../../src/train/run-files.js';
import { createTrainState, disposeTrainState } from '../../src/train/step.js';
import { noNodeInTheBrowser } from '../../src/web/build.js';
import {
  extract,
  latestCheckpointBytes,
  metricsWithoutTiming,
  readMetrics,
  tempDir,
  trainStateValues,
  useWasm,
} from '../helpers.js';

before(useWasm);

it('the download builders bundle for a browser worker: no Node module on their import chains', async () => {
  const esbuild = await import('esbuild');
  const modules = [
    'util/zip.ts',
    'train/run-files.ts',
    'train/checkpoint-files.ts',
    'export/metadata.ts',
    'models/model-files.ts',
  ];
  const r = await esbuild.build({
    stdin: {
      contents: modules.map((m, i) => `export * as m${i} from './src/${m}';`).join('\n'),
      resolveDir: process.cwd(),
      loader: 'ts',
    },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
    plugins: [noNodeInTheBrowser(process.cwd())],
  });
  assert.deepEqual(r.errors, []);
});

describe('run folder zip (the train page download)', () => {
  let data: string;
  let root: string;
  before(async () => {
    root = await tempDir('p2p-runzip-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 10, size: 32, seed: 3 });
  });
  // ngf 8: small and fast; its innermost levels still have dropout, so the seeded masks must match too.
  const config = (out: string): TrainConfig =>
    validateConfig({
      data,
      out,
      size: 32,
      ngf: 8,
      ndf: 8,
      batchSize: 4,
      epochs: 2,
      maxStepsPerEpoch: 2,
      seed: 4,
    });

  it('zipped mid-epoch from a state in memory, unzipped by unzip (latest a link) and by Python (latest a file): train --resume continues it to the weights and metrics of an uninterrupted run', async () => {
    const straight = join(root, 'straight');
    await train(config(straight), false);
    // Where the page would be: paused in epoch 2 after its first batch.
    const cut = join(root, 'cut');
    let steps = 0;
    await assert.rejects(
      train(config(cut), false, {
        onStep: () => steps++,
        shouldStop: () => (steps === 3 ? 'SIGINT' : undefined),
      }),
      TrainingStopped,
    );
    const cutCheckpoint = (await latestCheckpoint(cut))!;
    assert.equal(basename(cutCheckpoint), 'epoch-0002-step-00000003');
    // What the page holds: the networks and optimizers in memory, the run's settings and its metrics.
    const state = createTrainState(config(cut));
    const meta = await loadCheckpoint(cutCheckpoint, state);
    const saved = (await readSavedRun<TrainConfig>(cut))!;
    const archive = join(root, 'run.zip');
    await writeFile(
      archive,
      await runFolderZip({
        config: saved.config,
        started: saved.started!,
        backend: 'webgpu',
        versions: { browser: 'test' },
        dataset: saved.dataset,
        metrics: (await readMetrics(cut)) as unknown as MetricsRow[],
        state,
        meta,
      }),
    );
    const values = trainStateValues(state);
    disposeTrainState(state);

    for (const tool of ['unzip', 'python'] as const) {
      const out = join(root, tool);
      extract(tool, archive, out);
      const latest = join(out, 'checkpoints', 'latest');
      assert.equal((await lstat(latest)).isSymbolicLink(), tool === 'unzip');
      const checkpoint = (await latestCheckpoint(out))!;
      assert.equal(basename(checkpoint), 'epoch-0002-step-00000003', tool);
      // The same files as the checkpoint Node wrote from this state, meta.json and its digests included.
      for (const f of ['meta.json', 'generator/model.json', 'optimizer-d.bin', 'optimizer-g.json']) {
        assert.ok((await readFile(join(checkpoint, f))).equals(await readFile(join(cutCheckpoint, f))), f);
      }
      const run = (await readSavedRun(out))!;
      assert.deepEqual(run.config, saved.config);
      assert.deepEqual(run.versions?.browser, 'test');
      // Loaded into a differently seeded state, every weight and moment comes back bit for bit.
      const fresh = createTrainState({ ...config(out), seed: 99 });
      await loadCheckpoint(checkpoint, fresh);
      const restored = trainStateValues(fresh);
      disposeTrainState(fresh);
      assert.equal(restored.length, values.length);
      for (const [i, x] of restored.entries()) assert.deepEqual(x, values[i], `${tool}: tensor ${i}`);

      await train(config(out), true);
      assert.deepEqual(await metricsWithoutTiming(out), await metricsWithoutTiming(straight), tool);
      const [a, b] = [await latestCheckpointBytes(straight), await latestCheckpointBytes(out)];
      for (const [i, buf] of a.entries()) assert.ok(buf.equals(b[i]!), `${tool}: file ${i} differs`);
      assert.equal(basename((await latestCheckpoint(out))!), 'epoch-0002');
    }
  });
});
