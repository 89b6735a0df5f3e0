import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { type BackendChoice, setupBackend } from '../../src/backend/index.js';

describe('setupBackend', () => {
  it('activates the backend asked for', async () => {
    for (const name of ['cpu', 'wasm'] as const) {
      assert.equal((await setupBackend(name)).name, name);
      assert.equal(tf.getBackend(), name);
    }
  });

  it('auto takes native, or wasm with the reason why not', async () => {
    const r = await setupBackend('auto');
    assert.equal(tf.getBackend(), r.name);
    if (r.name === 'native') assert.equal(r.fallbackReason, undefined);
    else assert.match(r.fallbackReason ?? '', /^native backend unavailable \(.+\); using wasm$/);
  });

  it('rejects an unknown name', async () => {
    await assert.rejects(setupBackend('cuda' as BackendChoice), /unknown backend 'cuda'/);
  });
});
