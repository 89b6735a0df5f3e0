#include "peak.h"

#include <immintrin.h>
#include <omp.h>

#include <chrono>

namespace p2p {

namespace {

// Twelve independent FMA chains: enough to cover FMA latency on both FMA pipes of current x86 cores,
// so the loop runs at the core's FMA throughput and nothing else.
__attribute__((target("avx2,fma"))) float fma_avx2(int64_t iters) {
  __m256 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm256_set1_ps(0.001f * j);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < 12; ++j) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
  }
  __m256 s = acc[0];
  for (int j = 1; j < 12; ++j) s = _mm256_add_ps(s, acc[j]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f"))) float fma_avx512(int64_t iters) {
  __m512 acc[12];
  for (int j = 0; j < 12; ++j) acc[j] = _mm512_set1_ps(0.001f * j);
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
  for (int64_t i = 0; i < iters; ++i) {
    for (int j = 0; j < 12; ++j) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
  }
  // Every chain must feed the result, or the compiler drops the unused ones.
  __m512 s = acc[0];
  for (int j = 1; j < 12; ++j) s = _mm512_add_ps(s, acc[j]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace

PeakResult measure_peak(double seconds_each, int threads) {
  PeakResult r;
  r.threads = threads > 0 ? threads : omp_get_max_threads();
  r.has_avx512 = __builtin_cpu_supports("avx512f");
  auto run = [&](bool wide) {
    const int lanes = wide ? 16 : 8;
    int64_t iters = 1 << 20;
    double best = 0.0;
    // Grow the loop until one run lasts the requested time, then keep the best of three.
    for (int attempt = 0; attempt < 40; ++attempt) {
      volatile float sink = 0.0f;
      auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(r.threads)
      {
        float v = wide ? fma_avx512(iters) : fma_avx2(iters);
#pragma omp atomic
        sink += v;
      }
      const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const double gflops = 2.0 * 12 * lanes * static_cast<double>(iters) * r.threads / dt / 1e9;
      if (dt < seconds_each / 3) {
        iters *= 2;
        continue;
      }
      if (gflops > best) best = gflops;
      if (++r.runs >= 3) break;
    }
    return best;
  };
  r.avx2_gflops = run(false);
  r.runs = 0;
  r.avx512_gflops = r.has_avx512 ? run(true) : 0.0;
  return r;
}

}  // namespace p2p
