import assert from 'node:assert/strict';
import { lstat, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { encodePng, newImage } from '../../src/data/image.js';
import { writeSyntheticDataset } from '../../src/data/synthetic.js';
import { epochEvaluator, evaluateRun } from '../../src/eval/evaluate.js';
import { exportModel } from '../../src/export/export.js';
import { type ExportSource, exportFiles } from '../../src/export/metadata.js';
import { loadGenerator } from '../../src/infer/load.js';
import { translate } from '../../src/infer/translate.js';
import { latestCheckpoint } from '../../src/run/checkpoints.js';
import { readSavedRun } from '../../src/run/folder.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { type TrainConfig, validateConfig } from '../../src/train/config.js';
import { train } from '../../src/train/loop.js';
import { runFolderZip } from '../../src/train/run-files.js';
import { createTrainState, disposeTrainState, type TrainState } from '../../src/train/step.js';
import type { FileBytes } from '../../src/util/zip.js';
import { readCheckpoints } from '../../src/web/runs.js';
import { extract, relErr, rng, tempDir, useWasm } from '../helpers.js';

before(useWasm);

const SIZE = 32;

/** What the train page's downloads are made from: a state in memory, its config and where it is. */
interface PageState {
  config: TrainConfig;
  state: TrainState;
  source: ExportSource;
}

async function writeFiles(dir: string, files: FileBytes[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const f of files) await writeFile(join(dir, f.path), f.data);
}

describe('loadGenerator on the train page downloads (run folder zip, tfjs model)', () => {
  let root: string;
  let data: string;
  let page: PageState;
  let x: tf.Tensor4D;
  /** The page generator's output on `x`. */
  let ref: Float32Array;
  const outputOf = (G: tfl.LayersModel) => (G.predict(x) as tf.Tensor).dataSync() as Float32Array;

  before(async () => {
    root = await tempDir('p2p-load-');
    data = join(root, 'data');
    await writeSyntheticDataset(data, { count: 6, size: SIZE, seed: 2 });
    // A Node run stands in for the page's training: BtoA, so the direction that travels is not the default.
    const node = join(root, 'node');
    const config = validateConfig({
      data,
      out: node,
      size: SIZE,
      ngf: 8,
      ndf: 8,
      batchSize: 2,
      epochs: 1,
      maxStepsPerEpoch: 1,
      direction: 'BtoA',
      evalEvery: 1,
    });
    await train(config, false, { evaluate: epochEvaluator(config) });
    const state = createTrainState(config);
    const meta = await loadCheckpoint((await latestCheckpoint(node))!, state);
    page = {
      config,
      state,
      source: { checkpoint: 'train page', meta, config, pix2pixVersion: '0.0.0-test' },
    };
    const r = rng(11);
    x = tf.tensor4d(
      Float32Array.from({ length: SIZE * SIZE * 3 }, () => r() * 2 - 1),
      [1, SIZE, SIZE, 3],
    );
    ref = outputOf(state.G);
  });
  after(() => {
    disposeTrainState(page.state);
    x.dispose();
  });

  it('a run folder zip unzipped by Python (latest a file): translate, eval, export and serve take it', async () => {
    const saved = (await readSavedRun(page.config.out))!;
    const archive = join(root, 'run.zip');
    await writeFile(
      archive,
      await runFolderZip({
        config: page.config,
        started: saved.started!,
        backend: 'wasm',
        dataset: saved.dataset,
        state: page.state,
        meta: page.source.meta,
        folder: 'page-run',
      }),
    );
    extract('python', archive, join(root, 'py'));
    const run = join(root, 'py', 'page-run');
    assert.ok((await lstat(join(run, 'checkpoints', 'latest'))).isFile());
    const g = await loadGenerator(run);
    assert.equal(g.checkpoint, join(run, 'checkpoints', 'epoch-0001'));
    assert.equal(g.meta.epoch, 1);
    assert.equal(g.direction, 'BtoA');
    assert.deepEqual(outputOf(g.G), ref);
    g.G.dispose();

    // serve's run page marks it as latest too.
    assert.deepEqual(
      (await readCheckpoints(run, 'page-run')).map((c) => [c.name, c.latest]),
      [['epoch-0001', true]],
    );

    const scored = await evaluateRun(run);
    assert.deepEqual(
      scored.rows.map((r) => r.epoch),
      [1],
    );
    assert.ok(scored.rows[0]!.ssim > -1 && scored.rows[0]!.ssim <= 1);

    // `pix2pix export` of the unzipped run, and the page's own tfjs download: the same model files.
    const exported = await exportModel(run, join(root, 'exported'));
    const { files, metadata } = await exportFiles(page.state.G, {
      ...page.source,
      pix2pixVersion: exported.metadata.versions.pix2pixTs,
    });
    assert.deepEqual(files.map((f) => f.path).sort(), [...exported.files].sort());
    for (const f of files.filter((f) => f.path !== 'metadata.json')) {
      assert.ok((await readFile(join(root, 'exported', f.path))).equals(f.data), f.path);
    }
    const onDisk = JSON.parse(await readFile(join(root, 'exported', 'metadata.json'), 'utf8'));
    // input.name is the symbolic tensor's, numbered per process: the rest must agree.
    const { name: _, ...input } = metadata.input;
    const { name: __, ...inputOnDisk } = onDisk.input;
    assert.deepEqual(input, inputOnDisk);
    for (const key of ['format', 'tfjs', 'output', 'direction', 'training', 'versions'] as const) {
      assert.deepEqual(metadata[key], onDisk[key], key);
    }
    assert.equal(metadata.checkpoint.step, onDisk.checkpoint.step);
  });

  it('an export folder (the page tfjs download) loads with its metadata: same output, direction, epoch; --epoch refused', async () => {
    const dir = join(root, 'page-model');
    const { files, metadata } = await exportFiles(page.state.G, page.source);
    assert.deepEqual(
      files.map((f) => f.path),
      ['group1-shard1of1.bin', 'model.json', 'metadata.json'],
    );
    await writeFiles(dir, files);
    const g = await loadGenerator(dir);
    assert.deepEqual(outputOf(g.G), ref);
    g.G.dispose();
    assert.equal(g.checkpoint, dir);
    assert.deepEqual(g.meta, { epoch: 1, step: 1, time: page.source.meta.time });
    assert.equal(g.direction, 'BtoA');
    assert.equal(g.runDir, undefined);
    assert.equal(g.size, SIZE);
    assert.equal(metadata.scores, null, 'the page has no eval.csv row to give');
    await assert.rejects(loadGenerator(dir, 'latest'), (e: Error) => {
      assert.equal(e.name, 'UserError');
      assert.match(e.message, /is one exported model: --epoch chooses among a run's checkpoints, drop it$/);
      return true;
    });

    // translate --model EXPORT_DIR
    const input = join(root, 'in.png');
    await writeFile(input, await encodePng(newImage(40, 24)));
    const result = await translate({ model: dir, input, output: join(root, 'out.png') });
    assert.equal(result.direction, 'BtoA');
    assert.equal(result.epoch, 1);
    assert.equal(result.outputs.length, 1);
  });

  it('an export with float16 weights in several shards (pix2pix export --quantize float16) loads too', async () => {
    const dir = join(root, 'half');
    const { files } = await exportFiles(page.state.G, page.source, {
      quantize: 'float16',
      shardBytes: 32 * 1024,
    });
    await writeFiles(dir, files);
    const shards = (await readdir(dir)).filter((f) => f.endsWith('.bin'));
    assert.ok(shards.length > 2, `${shards.length} shards`);
    const g = await loadGenerator(dir);
    const err = relErr(ref, outputOf(g.G));
    g.G.dispose();
    assert.ok(err > 0 && err < 2e-2, `float16 relative error ${err}`);
  });

  it('a folder that is neither a run, a checkpoint nor an export is one line naming all three', async () => {
    const dir = join(root, 'other');
    await mkdir(dir);
    await writeFile(join(dir, 'metadata.json'), JSON.stringify({ format: 'something-else' }));
    await assert.rejects(loadGenerator(dir), (e: Error) => {
      assert.equal(e.name, 'UserError');
      assert.match(
        e.message,
        /is neither a training run \(config\.json\) nor a checkpoint \(meta\.json\) nor an export \(metadata\.json\): point --model at a folder made by pix2pix train or pix2pix export$/,
      );
      return true;
    });
  });
});
