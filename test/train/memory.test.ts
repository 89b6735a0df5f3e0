import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseMicroBatch } from '../../src/train/memory.js';

const GB = 1e9;
const machine = { total: 24 * GB, free: 22 * GB };

describe('chooseMicroBatch', () => {
  it('keeps a batch that fits whole', () => {
    const c = chooseMicroBatch({
      backend: 'native',
      size: 64,
      batchSize: 64,
      norm: 'instance',
      memory: machine,
    });
    assert.equal(c.microBatch, 64);
    assert.match(c.reason, /whole batch/);
  });

  it('splits batch 64 at 256 px on native into equal chunks under a quarter of memory', () => {
    const c = chooseMicroBatch({
      backend: 'native',
      size: 256,
      batchSize: 64,
      norm: 'instance',
      memory: machine,
    });
    assert.ok(c.microBatch < 64 && c.microBatch >= 8, String(c.microBatch));
    assert.equal(64 % c.microBatch, 0, 'equal chunks');
    assert.ok(c.microBatch * 300e6 <= machine.total / 4, 'activations within a quarter of the machine');
    assert.match(c.reason, /--micro-batch \d+/);
  });

  it('uses less when less memory is free', () => {
    const busy = chooseMicroBatch({
      backend: 'native',
      size: 256,
      batchSize: 64,
      norm: 'instance',
      memory: { total: 24 * GB, free: 4 * GB },
    });
    const idle = chooseMicroBatch({
      backend: 'native',
      size: 256,
      batchSize: 64,
      norm: 'instance',
      memory: machine,
    });
    assert.ok(busy.microBatch < idle.microBatch);
    assert.ok(busy.microBatch >= 1);
  });

  it('on wasm sizes the micro-batch to the 4 GB heap and the image size', () => {
    const at256 = chooseMicroBatch({
      backend: 'wasm',
      size: 256,
      batchSize: 16,
      norm: 'none',
      memory: machine,
    });
    assert.equal(at256.microBatch, 4);
    const at128 = chooseMicroBatch({
      backend: 'wasm',
      size: 128,
      batchSize: 64,
      norm: 'none',
      memory: machine,
    });
    assert.ok(at128.microBatch > at256.microBatch);
  });

  it('refuses batch norm when the batch would have to be split', () => {
    assert.throws(
      () => chooseMicroBatch({ backend: 'native', size: 256, batchSize: 64, norm: 'batch', memory: machine }),
      /--norm batch cannot split it/,
    );
    const fits = chooseMicroBatch({
      backend: 'native',
      size: 256,
      batchSize: 2,
      norm: 'batch',
      memory: machine,
    });
    assert.equal(fits.microBatch, 2);
  });
});

describe('chooseMicroBatch on webgpu', () => {
  it("keeps each pair's largest tensor under the adapter's binding limit, in equal chunks", () => {
    const gpu = { maxStorageBufferBindingSize: 128 * 2 ** 20 };
    const c = chooseMicroBatch({
      backend: 'webgpu',
      size: 256,
      batchSize: 64,
      norm: 'instance',
      ngf: 64,
      gpu,
    });
    // 2 x 128 x 128 x 128 channels x 4 bytes = 16 MiB a pair: 8 pairs under 128 MiB.
    assert.equal(c.microBatch, 8);
    assert.match(
      c.reason,
      /--micro-batch 8: WebGPU reports no memory size; the adapter binds at most 128 MiB/,
    );
    const whole = chooseMicroBatch({
      backend: 'webgpu',
      size: 64,
      batchSize: 4,
      norm: 'instance',
      ngf: 8,
      gpu,
    });
    assert.equal(whole.microBatch, 4);
    assert.match(whole.reason, /the whole batch of 4/);
    // --full-res: G's outermost concat is at the full side, 4x the pair's largest tensor (64 MiB).
    const full = chooseMicroBatch({
      backend: 'webgpu',
      size: 256,
      batchSize: 64,
      norm: 'instance',
      ngf: 64,
      fullRes: true,
      gpu,
    });
    assert.equal(full.microBatch, 2);
    assert.match(full.reason, /largest tensor is ~64 MiB/);
    assert.throws(
      () => chooseMicroBatch({ backend: 'webgpu', size: 256, batchSize: 64, norm: 'batch', ngf: 64, gpu }),
      /larger than the 128 MiB this WebGPU adapter can bind, and --norm batch cannot split it/,
    );
  });

  it('refuses, naming both sizes, a model whose single pair overflows what the adapter can bind', () => {
    // 2 x 128 x 128 x 128 channels x 4 bytes = 16 MiB for one 256 px pair at ngf 64.
    const gpu = { maxStorageBufferBindingSize: 8 * 2 ** 20 };
    assert.throws(
      () => chooseMicroBatch({ backend: 'webgpu', size: 256, batchSize: 1, norm: 'instance', ngf: 64, gpu }),
      /^UserError: the model is too big for this WebGPU adapter: one 256 px pair at ngf 64 makes a ~16 MiB tensor and the adapter binds at most 8 MiB; lower the size or ngf$/,
    );
  });

  it('needs the machine memory on the CPU backends (passed in: the browser bundles this module)', () => {
    assert.throws(
      () => chooseMicroBatch({ backend: 'native', size: 64, batchSize: 4, norm: 'instance' }),
      /needs the machine's memory/,
    );
  });
});
