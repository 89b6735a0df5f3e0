#pragma once
#include <cstdint>

namespace p2p {

struct PeakResult {
  double avx2_gflops = 0.0;
  double avx512_gflops = 0.0;
  bool has_avx512 = false;
  int threads = 0;
  int runs = 0;
};

// FP32 FMA throughput of `threads` OpenMP threads together (0: all), for 256- and (where present)
// 512-bit vectors.
PeakResult measure_peak(double seconds_each, int threads);

}  // namespace p2p
