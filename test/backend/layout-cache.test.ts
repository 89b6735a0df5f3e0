import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { srcModule, TREE_NODE_FLAGS, tempDir } from '../helpers.js';
import { nativeSkip } from './native-helpers.js';

/**
 * One process: a 3-layer conv stack (forward and gradients) on the native backend with the cache in
 * `dir`; prints how many layout choices it timed, how many it loaded, and a checksum of the results.
 */
const SCRIPT = `
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers';
import { registerNativeBackend } from '${srcModule('backend/native')}';
import { loadAddon } from '${srcModule('backend/native-addon')}';
await registerNativeBackend();
await tf.setBackend('native');
const addon = loadAddon();
const loaded = addon.convChoices().length;
const x = tf.randomNormal([2, 16, 16, 8], 0, 1, 'float32', 1);
const ws = [[4, 4, 8, 16], [4, 4, 16, 32], [3, 3, 32, 8]].map((s, i) => tf.variable(tf.randomNormal(s, 0, 0.1, 'float32', i + 2)));
const f = () => tf.sum(tf.conv2d(tf.conv2d(tf.conv2d(x, ws[0], 2, 'same'), ws[1], 2, 'same'), ws[2], 1, 'same'));
const { value, grads } = tf.variableGrads(f, ws);
// Inference's passes, with a constant filter: chosen under keys of their own.
const attrs = { strides: 2, pad: 'same', dataFormat: 'NHWC', dilations: 1, constantFilter: true };
const y = tf.engine().runKernel('Conv2D', { x, filter: ws[0] }, attrs);
const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy: y, filter: ws[0] }, { ...attrs, inputShape: x.shape });
const sum = [value, ...Object.values(grads), y, dx].map((t) => tf.sum(t).dataSync()[0]).join(',');
console.log(JSON.stringify({ tunings: addon.convTunings(), loaded, sum }));
`;

function runOnce(dir: string): { tunings: number; loaded: number; sum: string } {
  const r = spawnSync(process.execPath, [...TREE_NODE_FLAGS, '--input-type=module', '-e', SCRIPT], {
    env: { ...process.env, P2P_LAYOUT_CACHE: dir, P2P_CONV_LAYOUT: '' },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

const cacheFiles = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('conv-layouts-'));

describe('oneDNN layout cache', { skip: nativeSkip }, () => {
  test("a second process takes the first one's layout choices from disk and times none itself; results unchanged", async () => {
    const dir = await tempDir('p2p-layouts-');
    const first = runOnce(dir);
    // 3 layers x (forward, backward-data where needed, backward-weights), and the constant-filter
    // forward and backward-data: at least 8 choices timed.
    // The same choices run the same kernels: the second process's results are bit-identical.
    assert.ok(first.tunings >= 8, `first run timed ${first.tunings}`);
    assert.equal(first.loaded, 0);
    const [file] = cacheFiles(dir);
    assert.ok(file, 'no cache file written');
    const saved = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    assert.equal(saved.choices.length, first.tunings);
    assert.ok(saved.machine.onednn && saved.machine.threads >= 1 && saved.machine.cpu);
    const second = runOnce(dir);
    assert.equal(second.tunings, 0);
    assert.equal(second.loaded, first.tunings);
    assert.equal(second.sum, first.sum);
  });

  test('a damaged, foreign or nonsensical cache is ignored and rewritten, never an error', async () => {
    const dir = await tempDir('p2p-layouts-');
    const reference = runOnce(dir);
    const [file] = cacheFiles(dir);
    const path = join(dir, file!);
    const good = JSON.parse(readFileSync(path, 'utf8'));
    const bad = [
      '{"format": 1, "machine": {', // cut short
      JSON.stringify({ ...good, machine: { ...good.machine, threads: good.machine.threads + 1 } }),
      JSON.stringify({ ...good, format: 999 }),
      // Right machine, wrong contents: unknown passes, a mode that is no candidate, not pairs at all.
      JSON.stringify({ ...good, choices: [['x0-,1', 2], [good.choices[0][0], 77], 'junk', [1, 2, 3]] }),
    ];
    for (const text of bad) {
      writeFileSync(path, text);
      const r = runOnce(dir);
      assert.equal(r.loaded, 0, text.slice(0, 60));
      assert.equal(r.tunings, reference.tunings);
      // Timed anew, a layout may win that sums in another order: equal up to float rounding.
      const got = r.sum.split(',').map(Number);
      reference.sum.split(',').forEach((v, i) => {
        assert.ok(
          Math.abs(got[i]! - Number(v)) <= 1e-5 * Math.abs(Number(v)),
          `${r.sum} vs ${reference.sum}`,
        );
      });
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).choices.length, reference.tunings);
    }
  });

  test('P2P_LAYOUT_CACHE=off writes nothing', async () => {
    const dir = await tempDir('p2p-layouts-');
    const r = spawnSync(process.execPath, [...TREE_NODE_FLAGS, '--input-type=module', '-e', SCRIPT], {
      env: { ...process.env, P2P_LAYOUT_CACHE: 'off', XDG_CACHE_HOME: dir, HOME: dir },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout.trim()).tunings >= 8);
    assert.deepEqual(readdirSync(dir), []);
  });
});
