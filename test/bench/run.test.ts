import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { anchorBlasCore } from '../../bench/run.js';

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
