import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { setupBackend } from '../../src/backend/index.js';
import { withDropoutSeed } from '../../src/models/fused.js';
import { latestCheckpoint } from '../../src/run/checkpoints.js';
import { checkpointDirName } from '../../src/run/layout.js';
import type { CheckpointMeta } from '../../src/run/records.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { checkpointFiles } from '../../src/train/checkpoint-files.js';
import { validateConfig } from '../../src/train/config.js';
import { applyStep, createTrainState, disposeTrainState, stepGradients } from '../../src/train/step.js';
import { tempDir } from '../helpers.js';

before(() => setupBackend('cpu'));

/** Every file below `dir`, relative with '/', with its bytes. */
async function filesOf(dir: string, prefix = ''): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of await filesOf(dir, rel)) out.set(k, v);
    else out.set(rel, await readFile(join(dir, rel)));
  }
  return out;
}

describe('checkpoint files without the file system', () => {
  it('saveCheckpoint writes exactly the files checkpointFiles gives (epoch and mid-epoch), digests included', async () => {
    const s = createTrainState(validateConfig({ data: 'x', out: 'y', size: 32, ngf: 8, ndf: 8 }));
    const a = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 1) as tf.Tensor4D;
    const b = tf.randomUniform([1, 32, 32, 3], -1, 1, 'float32', 2) as tf.Tensor4D;
    // A step first, so the optimizer moments compared are not all zeros.
    await applyStep(withDropoutSeed(5, () => stepGradients(s, a, b, true)));
    tf.dispose([a, b]);
    const run = await tempDir('p2p-ckfiles-');
    const metas: CheckpointMeta[] = [
      { epoch: 1, step: 1, time: '2026-12-06T10:00:00.000Z', trainSeconds: 1.5, images: 1 },
      { epoch: 2, step: 3, time: '2026-12-06T10:01:00.000Z', trainSeconds: 2.5, images: 3, batchInEpoch: 1 },
    ];
    for (const meta of metas) {
      const dir = await saveCheckpoint(run, s, meta);
      assert.equal(basename(dir), checkpointDirName(meta));
      const onDisk = await filesOf(dir);
      // The default digest (WebCrypto, as in the browser) against node:crypto's that saveCheckpoint uses.
      const built = new Map<string, Uint8Array>();
      for await (const f of checkpointFiles(s, meta)) built.set(f.path, f.data);
      assert.deepEqual([...built.keys()].sort(), [...onDisk.keys()].sort());
      for (const [path, bytes] of built) assert.ok(onDisk.get(path)!.equals(bytes), path);
      const listed = JSON.parse(onDisk.get('meta.json')!.toString()).files;
      assert.deepEqual(Object.keys(listed), [...onDisk.keys()].filter((p) => p !== 'meta.json').sort());
      assert.ok(onDisk.get('optimizer-g.bin')!.some((x) => x !== 0));
    }
    assert.equal(basename((await latestCheckpoint(run))!), 'epoch-0002-step-00000003');
    disposeTrainState(s);
  });

  it("latest as a small file holding a checkpoint folder's name (what Python's zipfile makes of the link) is followed; anything else is no latest", async () => {
    const run = await tempDir('p2p-latest-');
    const root = join(run, 'checkpoints');
    await mkdir(join(root, 'epoch-0003'), { recursive: true });
    await writeFile(join(root, 'not-a-dir'), 'x');
    const latest = join(root, 'latest');
    for (const text of ['epoch-0003', 'epoch-0003\n']) {
      await writeFile(latest, text);
      assert.equal(await latestCheckpoint(run), join(root, 'epoch-0003'), JSON.stringify(text));
    }
    for (const text of [
      'epoch-0009',
      '../checkpoints/epoch-0003',
      '/etc',
      '.',
      '..',
      'not-a-dir',
      '',
      'e'.repeat(300),
    ]) {
      await writeFile(latest, text);
      assert.equal(await latestCheckpoint(run), undefined, JSON.stringify(text));
    }
    await rm(latest);
    assert.equal(await latestCheckpoint(run), undefined);
    await symlink('epoch-0003', latest);
    assert.equal(await latestCheckpoint(run), join(root, 'epoch-0003'));
  });
});
