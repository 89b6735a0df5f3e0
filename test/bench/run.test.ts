import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { anchorBlasCore, onCpu, pytorchAnchor, webgpuNotes, webgpuPlan } from '../../bench/run.js';

const AVX512 = ['avx2', 'fma', 'avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'];

describe('bench: the PyTorch anchor runs the BLAS kernels its CPU supports', () => {
  test("OpenBLAS's generic fallback is replaced by the widest kernels the flags allow", () => {
    assert.equal(anchorBlasCore('Prescott', new Set(AVX512)), 'SKYLAKEX');
    assert.equal(anchorBlasCore('Haswell', new Set(AVX512)), 'SKYLAKEX');
    assert.equal(anchorBlasCore('Prescott', new Set(['sse3', 'avx', 'avx2', 'fma'])), 'HASWELL');
  });

  test("OpenBLAS's own choice stands where it already uses those kernels, or the CPU has no wider ones", () => {
    assert.equal(anchorBlasCore('SkylakeX', new Set(AVX512)), null);
    assert.equal(anchorBlasCore('Cooperlake', new Set(AVX512)), null);
    assert.equal(anchorBlasCore('Zen', new Set(['avx2', 'fma'])), null);
    assert.equal(anchorBlasCore('Sandybridge', new Set(['sse3', 'avx'])), null);
    // AVX-512F alone (no BW/DQ/VL) is not what OpenBLAS's SkylakeX kernels need.
    assert.equal(anchorBlasCore('Haswell', new Set(['avx2', 'fma', 'avx512f'])), null);
  });
});

describe('bench: each backend is timed against PyTorch on its own kind of device', () => {
  const both = {};
  const cpuOnly = { cuda: 'no CUDA PyTorch here (no NVIDIA GPU)' };

  test('the CPU backends get PyTorch on the CPU, whatever CUDA the machine has', () => {
    assert.deepEqual(pytorchAnchor('native', both), { device: 'cpu' });
    assert.deepEqual(pytorchAnchor('wasm', cpuOnly), { device: 'cpu' });
    assert.deepEqual(pytorchAnchor('native', { cpu: 'torch is not importable' }), {
      skipped: 'torch is not importable',
    });
  });

  test('WebGPU on a hardware adapter gets PyTorch with CUDA where there is one, else none (never the CPU one), saying why', () => {
    const hw = { software: false };
    assert.deepEqual(pytorchAnchor('webgpu', both, hw), { device: 'cuda' });
    assert.deepEqual(pytorchAnchor('webgpu', cpuOnly, hw), { skipped: cpuOnly.cuda });
    assert.deepEqual(pytorchAnchor('webgpu', { cpu: 'torch is not importable', cuda: 'x' }, hw), {
      skipped: 'x',
    });
  });

  test('WebGPU on a software adapter gets no anchor, even with CUDA PyTorch at hand', () => {
    const a = pytorchAnchor('webgpu', both, { software: true });
    assert.ok('skipped' in a && /software/.test(a.skipped));
  });
});

describe('bench: WebGPU runs name the adapter and make no speed claims for a software one', () => {
  test('a hardware adapter runs every batch, round and step; a software one a step of its smallest batch', () => {
    assert.deepEqual(webgpuPlan(false, [1, 4, 16], 5), { batches: [1, 4, 16], rounds: 5 });
    assert.deepEqual(webgpuPlan(true, [4, 1, 16], 5), { batches: [1], rounds: 1, reps: 1 });
  });

  test('% of the CPU FMA peak (and RSS as memory) is only for runs on the CPU', () => {
    assert.equal(onCpu({ backend: 'native' }), true);
    assert.equal(onCpu({ backend: 'wasm' }), true);
    assert.equal(onCpu({ backend: 'onnxruntime' }), true);
    assert.equal(onCpu({ backend: 'pytorch', device: 'cpu' }), true);
    assert.equal(onCpu({ backend: 'webgpu' }), false);
    assert.equal(onCpu({ backend: 'pytorch', device: 'cuda' }), false);
  });

  test('the notes name the adapter, and the CUDA anchor or why there is none', () => {
    const hw = { adapter: 'nvidia / hopper / NVIDIA H100; max buffer 4096 MiB', software: false };
    const withCuda = webgpuNotes(hw, { device: 'cuda' }, 'NVIDIA H100 80GB HBM3');
    assert.equal(withCuda[0], `WebGPU adapter: ${hw.adapter}`);
    assert.match(withCuda[1]!, /PyTorch with CUDA on NVIDIA H100 80GB HBM3/);
    const without = webgpuNotes(hw, { skipped: 'no CUDA PyTorch here (no NVIDIA GPU)' });
    assert.equal(without.length, 2);
    assert.match(without[1]!, /no PyTorch anchor for webgpu: no CUDA PyTorch here/);
  });

  test('on a software adapter one line says its timings mean nothing, and nothing compares them', () => {
    const sw = { adapter: 'google / swiftshader / SwiftShader driver 5.0.0 (software)', software: true };
    const notes = webgpuNotes(sw, { skipped: 'the WebGPU adapter is software: nothing to compare' });
    assert.equal(notes[0], `WebGPU adapter: ${sw.adapter}`);
    assert.equal(notes.filter((l) => /mean nothing/.test(l)).length, 1);
    assert.ok(!notes.some((l) => /anchor|ratio|faster|slower/.test(l)));
  });
});
