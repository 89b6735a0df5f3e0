#include "eltwise.h"
#include "transcendental.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace p2p {

namespace {

// Element-wise loops are memory-bound: one core already streams ~20 GB/s, so a second one gains
// little, while every parallel region costs a wake-up of the other thread, which takes
// milliseconds when another process holds that core. Only very large arrays (Adam's biggest
// weights, full-batch activations) are split.
constexpr int64_t kParallelMin = 1 << 22;
constexpr int64_t kChunk = 1 << 14;

inline int threads_for(int64_t n) { return n < kParallelMin ? 1 : omp_get_max_threads(); }

struct Bin {
  int nd = 0;
  int64_t dims[8];
  int64_t sa[8], sb[8];
};

// Strides of a and b over out's dims (0 where broadcast), then adjacent dims merged wherever both
// operands stay contiguous across them, so most calls end up as one or two flat loops.
Bin collapse(const std::vector<int64_t>& as, const std::vector<int64_t>& bs, const std::vector<int64_t>& os) {
  const int r = static_cast<int>(os.size());
  int64_t da[8], db[8], st_a = 1, st_b = 1;
  for (int i = r - 1; i >= 0; --i) {
    const int ia = i - (r - static_cast<int>(as.size())), ib = i - (r - static_cast<int>(bs.size()));
    const int64_t na = ia >= 0 ? as[ia] : 1, nb = ib >= 0 ? bs[ib] : 1;
    da[i] = na == 1 && os[i] != 1 ? 0 : st_a;
    db[i] = nb == 1 && os[i] != 1 ? 0 : st_b;
    st_a *= na;
    st_b *= nb;
  }
  Bin c;
  for (int i = 0; i < r; ++i) {
    if (os[i] == 1) continue;
    if (c.nd > 0) {
      const int j = c.nd - 1;
      if (c.sa[j] == da[i] * os[i] && c.sb[j] == db[i] * os[i]) {
        c.dims[j] *= os[i];
        c.sa[j] = da[i];
        c.sb[j] = db[i];
        continue;
      }
    }
    c.dims[c.nd] = os[i];
    c.sa[c.nd] = da[i];
    c.sb[c.nd] = db[i];
    ++c.nd;
  }
  if (c.nd == 0) {
    c.nd = 1;
    c.dims[0] = 1;
    c.sa[0] = c.sb[0] = 0;
  }
  return c;
}

// Comparisons into tfjs's bool bytes. gcc will not vectorise a float compare stored as bytes, and
// as a branch the random signs of activations mispredict half the time (5 ns an element), so
// 8 lanes at a time through a movemask and a byte-spreading table.
struct ByteTable {
  uint64_t spread[256];
  ByteTable() {
    for (int m = 0; m < 256; ++m) {
      uint64_t v = 0;
      for (int b = 0; b < 8; ++b)
        if (m & (1 << b)) v |= uint64_t(1) << (8 * b);
      spread[m] = v;
    }
  }
};
const ByteTable kBytes;

template <int Pred>
inline void compare_row(const float* a, int64_t sa, const float* b, int64_t sb, uint8_t* o, int64_t n) {
  int64_t i = 0;
  if ((sa == 0 || sa == 1) && (sb == 0 || sb == 1)) {
    const __m256 av0 = _mm256_set1_ps(*a), bv0 = _mm256_set1_ps(*b);
    for (; i + 8 <= n; i += 8) {
      const __m256 av = sa ? _mm256_loadu_ps(a + i) : av0;
      const __m256 bv = sb ? _mm256_loadu_ps(b + i) : bv0;
      const int m = _mm256_movemask_ps(_mm256_cmp_ps(av, bv, Pred));
      std::memcpy(o + i, &kBytes.spread[m], 8);
    }
  }
  for (; i < n; ++i) {
    const float x = a[i * sa], y = b[i * sb];
    bool r;
    switch (Pred) {
      case _CMP_GT_OQ: r = x > y; break;
      case _CMP_GE_OQ: r = x >= y; break;
      case _CMP_LT_OQ: r = x < y; break;
      case _CMP_LE_OQ: r = x <= y; break;
      case _CMP_EQ_OQ: r = x == y; break;
      default: r = x != y; break;
    }
    o[i] = r;
  }
}

template <int Pred>
struct Cmp {};

template <int Pred>
inline void row(const float* a, int64_t sa, const float* b, int64_t sb, uint8_t* o, int64_t n, Cmp<Pred>) {
  compare_row<Pred>(a, sa, b, sb, o, n);
}

template <typename Out, typename F>
inline void row(const float* a, int64_t sa, const float* b, int64_t sb, Out* o, int64_t n, F f) {
  if (sa == 1 && sb == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = f(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i * sa], b[i * sb]);
  }
}

template <typename Out, typename F>
void binary_run(const Bin& c, const float* a, const float* b, Out* out, F f) {
  const int last = c.nd - 1;
  const int64_t len = c.dims[last];
  int64_t rows = 1;
  for (int i = 0; i < last; ++i) rows *= c.dims[i];
  // Short rows go many to a task: an image's 3 channels plus a bias, one row per task, spent its time
  // on the index arithmetic (1 ms for 256x256x3), not on the row.
  const int64_t per = len >= kChunk ? 1 : kChunk / std::max<int64_t>(len, 1);
  const int64_t chunks = (len + kChunk - 1) / kChunk;
  const int64_t blocks = (rows + per - 1) / per;
  const int64_t tasks = blocks * chunks;
#pragma omp parallel for schedule(static) num_threads(threads_for(rows * len))
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t r0 = (t / chunks) * per, r1 = std::min(rows, r0 + per), k = t % chunks;
    int64_t idx[8];
    int64_t oa = 0, ob = 0, rix = r0;
    for (int i = last - 1; i >= 0; --i) {
      idx[i] = rix % c.dims[i];
      rix /= c.dims[i];
      oa += idx[i] * c.sa[i];
      ob += idx[i] * c.sb[i];
    }
    const int64_t s = k * kChunk, e = std::min(len, s + kChunk);
    for (int64_t r = r0; r < r1; ++r) {
      row(a + oa + s * c.sa[last], c.sa[last], b + ob + s * c.sb[last], c.sb[last], out + r * len + s, e - s, f);
      // Odometer step to the next row.
      for (int i = last - 1; i >= 0; --i) {
        oa += c.sa[i];
        ob += c.sb[i];
        if (++idx[i] < c.dims[i]) break;
        oa -= c.dims[i] * c.sa[i];
        ob -= c.dims[i] * c.sb[i];
        idx[i] = 0;
      }
    }
  }
}

template <typename F>
void parallel_flat(int64_t n, F body) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) num_threads(threads_for(n))
  for (int64_t k = 0; k < chunks; ++k) body(k * kChunk, std::min(n, (k + 1) * kChunk));
}

}  // namespace

void binary(int op, const float* a, const std::vector<int64_t>& ashape, const float* b,
            const std::vector<int64_t>& bshape, void* out, const std::vector<int64_t>& oshape) {
  Bin c = collapse(ashape, bshape, oshape);
  float* of = static_cast<float*>(out);
  uint8_t* ob = static_cast<uint8_t*>(out);
  switch (op) {
    case kAdd: return binary_run(c, a, b, of, [](float x, float y) { return x + y; });
    case kSub: return binary_run(c, a, b, of, [](float x, float y) { return x - y; });
    case kMul: return binary_run(c, a, b, of, [](float x, float y) { return x * y; });
    case kDiv: return binary_run(c, a, b, of, [](float x, float y) { return x / y; });
    case kMax: return binary_run(c, a, b, of, [](float x, float y) { return std::isnan(x) || x > y ? x : y; });
    case kMin: return binary_run(c, a, b, of, [](float x, float y) { return std::isnan(x) || x < y ? x : y; });
    case kSqDiff: return binary_run(c, a, b, of, [](float x, float y) { return (x - y) * (x - y); });
    case kPow: return binary_run(c, a, b, of, [](float x, float y) { return std::pow(x, y); });
    case kGreater: return binary_run(c, a, b, ob, Cmp<_CMP_GT_OQ>());
    case kGreaterEq: return binary_run(c, a, b, ob, Cmp<_CMP_GE_OQ>());
    case kLess: return binary_run(c, a, b, ob, Cmp<_CMP_LT_OQ>());
    case kLessEq: return binary_run(c, a, b, ob, Cmp<_CMP_LE_OQ>());
    case kEqual: return binary_run(c, a, b, ob, Cmp<_CMP_EQ_OQ>());
    case kNotEqual: return binary_run(c, a, b, ob, Cmp<_CMP_NEQ_UQ>());
    default: throw std::invalid_argument("unknown binary op");
  }
}

namespace {

template <typename F>
void unary_run(const float* x, float* o, int64_t n, F f) {
  parallel_flat(n, [&](int64_t s, int64_t e) {
#pragma omp simd
    for (int64_t i = s; i < e; ++i) o[i] = f(x[i]);
  });
}

// tfjs's softplus, with its thresholds, so results match the cpu backend's.
inline float softplus(float x) {
  const float threshold = std::log(1.1920928955078125e-7f) + 2.0f;
  if (x > -threshold) return x;
  const float ex = std::exp(x);
  if (x < threshold) return ex;
  return std::log1p(ex);
}

}  // namespace

void unary(int op, float alpha, const float* x, float* o, int64_t n) {
  switch (op) {
    case kNeg: return unary_run(x, o, n, [](float v) { return -v; });
    case kSquare: return unary_run(x, o, n, [](float v) { return v * v; });
    case kSqrt: return unary_run(x, o, n, [](float v) { return std::sqrt(v); });
    case kRsqrt: return unary_run(x, o, n, [](float v) { return 1.0f / std::sqrt(v); });
    case kAbs: return unary_run(x, o, n, [](float v) { return std::fabs(v); });
    case kExp: return parallel_flat(n, [&](int64_t s, int64_t e) { vec_exp(x + s, o + s, e - s); });
    case kLog: return parallel_flat(n, [&](int64_t s, int64_t e) { vec_log(x + s, o + s, e - s); });
    case kLog1p: return parallel_flat(n, [&](int64_t s, int64_t e) { vec_log1p(x + s, o + s, e - s); });
    case kTanh: return parallel_flat(n, [&](int64_t s, int64_t e) { vec_tanh(x + s, o + s, e - s); });
    case kSigmoid: return parallel_flat(n, [&](int64_t s, int64_t e) { vec_sigmoid(x + s, o + s, e - s); });
    case kRelu: return unary_run(x, o, n, [](float v) { return v < 0.0f ? 0.0f : v; });
    case kRelu6: return unary_run(x, o, n, [](float v) { return std::min(std::max(v, 0.0f), 6.0f); });
    // Branch-free: activations' signs are random, and a branch on them mispredicts half the time.
    case kLeakyRelu:
      return unary_run(x, o, n, [alpha](float v) { return std::max(v, 0.0f) + alpha * std::min(v, 0.0f); });
    case kElu: return unary_run(x, o, n, [](float v) { return v >= 0.0f ? v : std::expm1(v); });
    case kStep:
      return unary_run(x, o, n, [alpha](float v) { return std::isnan(v) ? v : (v > 0.0f ? 1.0f : alpha); });
    case kSign: return unary_run(x, o, n, [](float v) { return v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : 0.0f); });
    case kReciprocal: return unary_run(x, o, n, [](float v) { return 1.0f / v; });
    case kSoftplus: return unary_run(x, o, n, [](float v) { return softplus(v); });
    default: throw std::invalid_argument("unknown unary op");
  }
}

void select(const uint8_t* cond, const float* a, const float* b, float* o, int64_t n) {
  // Bit masks rather than `?:`, which gcc leaves as a branch on random conditions.
  const uint32_t* ai = reinterpret_cast<const uint32_t*>(a);
  const uint32_t* bi = reinterpret_cast<const uint32_t*>(b);
  uint32_t* oi = reinterpret_cast<uint32_t*>(o);
  parallel_flat(n, [&](int64_t s, int64_t e) {
#pragma omp simd
    for (int64_t i = s; i < e; ++i) {
      const uint32_t m = 0u - static_cast<uint32_t>(cond[i] != 0);
      oi[i] = (ai[i] & m) | (bi[i] & ~m);
    }
  });
}

void fill(float* o, float value, int64_t n) {
  parallel_flat(n, [&](int64_t s, int64_t e) { std::fill(o + s, o + e, value); });
}

void add_n(const std::vector<const float*>& xs, float* o, int64_t n) {
  parallel_flat(n, [&](int64_t s, int64_t e) {
    std::memcpy(o + s, xs[0] + s, (e - s) * sizeof(float));
    for (size_t k = 1; k < xs.size(); ++k) {
      const float* x = xs[k];
#pragma omp simd
      for (int64_t i = s; i < e; ++i) o[i] += x[i];
    }
  });
}

void reduce_sum(const float* x, int64_t outer, int64_t r, int64_t inner, float* out, bool mean) {
  const int nt = threads_for(outer * r * inner);
  // Split r too when there are fewer outer rows than threads, so a whole-tensor or per-channel sum
  // (bias gradients) still uses both cores; partial sums are double, as tfjs's JS loops sum in double.
  int64_t split = 1;
  if (outer < 2 * nt && r >= 64) split = std::min<int64_t>(r / 32, 4 * nt);
  const int64_t tasks = outer * split;
  std::vector<double> part(static_cast<size_t>(tasks * inner), 0.0);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t o = t / split, k = t % split;
    const int64_t r0 = r * k / split, r1 = r * (k + 1) / split;
    double* acc = part.data() + t * inner;
    const float* base = x + o * r * inner;
    if (inner == 1) {
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = r0; i < r1; ++i) s += base[i];
      acc[0] = s;
    } else {
      for (int64_t i = r0; i < r1; ++i) {
        const float* row = base + i * inner;
#pragma omp simd
        for (int64_t j = 0; j < inner; ++j) acc[j] += row[j];
      }
    }
  }
  const double scale = mean ? 1.0 / static_cast<double>(r) : 1.0;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < split; ++k) s += part[(o * split + k) * inner + j];
      out[o * inner + j] = static_cast<float>(s * scale);
    }
  }
}

void concat_rows(const std::vector<const float*>& xs, const std::vector<int64_t>& widths, int64_t rows, float* out) {
  int64_t total = 0;
  for (int64_t w : widths) total += w;
  const int nt = threads_for(rows * total);
  if (rows >= 4 * nt) {
    // Each output row written whole, in order: the output streams once, where a copy per input
    // wrote every row's parts in as many passes.
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t r = 0; r < rows; ++r) {
      float* o = out + r * total;
      for (size_t i = 0; i < xs.size(); ++i) {
        std::memcpy(o, xs[i] + r * widths[i], static_cast<size_t>(widths[i]) * sizeof(float));
        o += widths[i];
      }
    }
    return;
  }
  // Few long rows (a concat along the first axes): the copies themselves are split.
  int64_t at = 0;
  for (int64_t r = 0; r < rows; ++r) {
    for (size_t i = 0; i < xs.size(); ++i) {
      const float* src = xs[i] + r * widths[i];
      float* dst = out + at;
      const int64_t w = widths[i];
      parallel_flat(w, [&](int64_t s, int64_t e) { std::memcpy(dst + s, src + s, static_cast<size_t>(e - s) * sizeof(float)); });
      at += w;
    }
  }
}

void copy_box(const float* src, const std::vector<int64_t>& sshape, const std::vector<int64_t>& sbegin, float* dst,
              const std::vector<int64_t>& dshape, const std::vector<int64_t>& dbegin, const std::vector<int64_t>& box) {
  const int r = static_cast<int>(box.size());
  if (r == 0) {
    dst[0] = src[0];
    return;
  }
  for (int64_t v : box)
    if (v == 0) return;
  std::vector<int64_t> ss(r), ds(r);
  int64_t s1 = 1, d1 = 1;
  for (int i = r - 1; i >= 0; --i) {
    ss[i] = s1;
    ds[i] = d1;
    s1 *= sshape[i];
    d1 *= dshape[i];
  }
  // One memcpy covers the last dim and every inner dim the box spans whole in both tensors.
  int j = r - 1;
  int64_t run = box[j];
  while (j > 0 && box[j] == sshape[j] && box[j] == dshape[j]) {
    --j;
    run *= box[j];
  }
  int64_t s0 = 0, d0 = 0;
  for (int i = j; i < r; ++i) {
    s0 += sbegin[i] * ss[i];
    d0 += dbegin[i] * ds[i];
  }
  int64_t rows = 1;
  for (int i = 0; i < j; ++i) rows *= box[i];
  const int nt = threads_for(rows * run);
#pragma omp parallel num_threads(nt)
  {
    const int tid = omp_get_thread_num(), n = omp_get_num_threads();
    const int64_t r0 = rows * tid / n, r1 = rows * (tid + 1) / n;
    if (r0 < r1) {
      std::vector<int64_t> c(j > 0 ? j : 1, 0);
      int64_t rem = r0;
      for (int i = j - 1; i >= 0; --i) {
        c[i] = rem % box[i];
        rem /= box[i];
      }
      int64_t so = s0, dof = d0;
      for (int i = 0; i < j; ++i) {
        so += (sbegin[i] + c[i]) * ss[i];
        dof += (dbegin[i] + c[i]) * ds[i];
      }
      for (int64_t rr = r0; rr < r1; ++rr) {
        std::memcpy(dst + dof, src + so, run * sizeof(float));
        // Odometer step over the outer dims.
        for (int i = j - 1; i >= 0; --i) {
          so += ss[i];
          dof += ds[i];
          if (++c[i] < box[i]) break;
          so -= box[i] * ss[i];
          dof -= box[i] * ds[i];
          c[i] = 0;
        }
      }
    }
  }
}

void adam(float* w, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
          double epsilon, double t) {
  // Scalars in double, then rounded once, as PyTorch passes Python floats into its float kernels:
  // 1 - 0.999f in float differs from float(0.001) by 5e-5 relative.
  const double bc1 = 1.0 - std::pow(beta1, t);
  const double bc2 = 1.0 - std::pow(beta2, t);
  const float step = static_cast<float>(lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  const float b1 = static_cast<float>(beta1), b2 = static_cast<float>(beta2), eps = static_cast<float>(epsilon);
  const float c1 = static_cast<float>(1.0 - beta1), c2 = static_cast<float>(1.0 - beta2);
  parallel_flat(n, [&](int64_t s, int64_t e) {
#pragma omp simd
    for (int64_t i = s; i < e; ++i) {
      const float gi = g[i];
      const float mi = b1 * m[i] + c1 * gi;
      const float vi = b2 * v[i] + c2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      w[i] -= step * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);
    }
  });
}

}  // namespace p2p

namespace p2p {

namespace {

template <typename F>
void each_position(int64_t n, int64_t hw, int64_t c, F f) {
  const int64_t total = n * hw;
  const int nt = threads_for(total * c);
#pragma omp parallel for schedule(static) num_threads(nt)
  for (int64_t r = 0; r < total; ++r) {
    const int64_t s = r / hw;
    const int64_t base = r * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) f(base + j, s * c + j);
  }
}

// How the norm's two per-(sample, channel) sums over positions are split: over samples, and over
// positions where there are fewer samples than threads. Task t covers positions [p0(t), p1(t)) of
// sample t / split and adds into part[t * 2c, t * 2c + c) and the c after. Each kernel writes its
// own loop over the tasks: a shared helper taking the loop as a lambda left gcc's loops scalar (the
// backward's sums 7x slower at batch 4).
struct MapSums {
  int nt;
  int64_t n, hw, c, split;
  std::vector<double> part;

  MapSums(int64_t n_, int64_t hw_, int64_t c_) : n(n_), hw(hw_), c(c_) {
    nt = threads_for(n * hw * c);
    split = n < nt ? std::max<int64_t>(1, std::min<int64_t>(nt, hw / 64)) : 1;
    part.assign(static_cast<size_t>(n * split * c * 2), 0.0);
  }
  int64_t tasks() const { return n * split; }
  int64_t p0(int64_t t) const { return hw * (t % split) / split; }
  int64_t p1(int64_t t) const { return hw * (t % split + 1) / split; }
  // The two sums of sample s, channel j, over all its tasks.
  std::pair<double, double> total(int64_t s, int64_t j) const {
    double a = 0.0, b = 0.0;
    for (int64_t k = 0; k < split; ++k) {
      a += part[((s * split + k) * 2) * c + j];
      b += part[((s * split + k) * 2 + 1) * c + j];
    }
    return {a, b};
  }
};

}  // namespace

void inorm_act_forward(const float* z, int64_t n, int64_t hw, int64_t c, float eps, bool has_alpha, float alpha,
                       float* h, float* rs) {
  // Mean and variance in one pass over z, from sums of z - k and (z - k)^2 in double, with k each
  // map's first value: shifted so that the difference of the two sums loses nothing to cancellation
  // when the mean is far from 0 (two passes, as tf.moments computes it, read z once more).
  std::vector<float> shift(static_cast<size_t>(n * c));
  if (hw > 0) {
    for (int64_t s = 0; s < n; ++s) std::copy(z + s * hw * c, z + s * hw * c + c, shift.data() + s * c);
  }
  MapSums ms(n, hw, c);
#pragma omp parallel for schedule(static) num_threads(ms.nt)
  for (int64_t t = 0; t < ms.tasks(); ++t) {
    const int64_t smp = t / ms.split, p0 = ms.p0(t), p1 = ms.p1(t);
    double* __restrict s1 = ms.part.data() + t * c * 2;
    double* __restrict s2 = s1 + c;
    const float* __restrict sh = shift.data() + smp * c;
    for (int64_t p = p0; p < p1; ++p) {
      const float* __restrict zr = z + (smp * hw + p) * c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const double d = static_cast<double>(zr[j] - sh[j]);
        s1[j] += d;
        s2[j] += d * d;
      }
    }
  }
  // Each map's mean less its shift: z - k is exact where z is near k, so (z - k) - mean keeps the digits
  // that z - mean would round away with the mean stored as a float.
  std::vector<float> mean(static_cast<size_t>(n * c));
  for (int64_t s = 0; s < n; ++s) {
    for (int64_t j = 0; j < c; ++j) {
      const auto [a, b] = ms.total(s, j);
      const double m = a / static_cast<double>(hw);
      const double var = std::max(0.0, b / static_cast<double>(hw) - m * m);
      mean[s * c + j] = static_cast<float>(m);
      rs[s * c + j] = 1.0f / std::sqrt(static_cast<float>(var) + eps);
    }
  }
  const float a = has_alpha ? alpha : 1.0f;
  each_position(n, hw, c, [&](int64_t i, int64_t sc) {
    const float y = ((z[i] - shift[sc]) - mean[sc]) * rs[sc];
    h[i] = std::max(y, 0.0f) + a * std::min(y, 0.0f);
  });
}

void inorm_act_backward(const float* g, const float* h, const float* rs, int64_t n, int64_t hw, int64_t c,
                        bool has_alpha, float alpha, float* dz) {
  // Plain loops over restrict pointers (see MapSums). y and the slope come from the sign of h
  // (alpha > 0 keeps it), as arithmetic rather than `?:`, since the signs are random.
  const float a = has_alpha ? alpha : 1.0f;
  const float inv_a = 1.0f / a;
  MapSums ms(n, hw, c);
#pragma omp parallel for schedule(static) num_threads(ms.nt)
  for (int64_t t = 0; t < ms.tasks(); ++t) {
    const int64_t smp = t / ms.split, p0 = ms.p0(t), p1 = ms.p1(t);
    double* __restrict sg = ms.part.data() + t * c * 2;
    double* __restrict sgy = sg + c;
    for (int64_t p = p0; p < p1; ++p) {
      const float* __restrict gr = g + (smp * hw + p) * c;
      const float* __restrict hr = h + (smp * hw + p) * c;
#pragma omp simd
      for (int64_t j = 0; j < c; ++j) {
        const float pos = static_cast<float>(hr[j] > 0.0f);
        const float y = hr[j] * (inv_a + (1.0f - inv_a) * pos);
        const float gp = gr[j] * (a + (1.0f - a) * pos);
        sg[j] += gp;
        sgy[j] += gp * y;
      }
    }
  }
  std::vector<float> mg(static_cast<size_t>(n * c)), mgy(static_cast<size_t>(n * c));
  for (int64_t smp = 0; smp < n; ++smp) {
    for (int64_t j = 0; j < c; ++j) {
      const auto [s1, s2] = ms.total(smp, j);
      mg[smp * c + j] = static_cast<float>(s1 / static_cast<double>(hw));
      mgy[smp * c + j] = static_cast<float>(s2 / static_cast<double>(hw));
    }
  }
#pragma omp parallel for schedule(static) num_threads(ms.nt)
  for (int64_t r = 0; r < n * hw; ++r) {
    const int64_t smp = r / hw;
    const float* __restrict gr = g + r * c;
    const float* __restrict hr = h + r * c;
    float* __restrict out = dz + r * c;
    const float* __restrict m1 = mg.data() + smp * c;
    const float* __restrict m2 = mgy.data() + smp * c;
    const float* __restrict rr = rs + smp * c;
#pragma omp simd
    for (int64_t j = 0; j < c; ++j) {
      const float pos = static_cast<float>(hr[j] > 0.0f);
      const float y = hr[j] * (inv_a + (1.0f - inv_a) * pos);
      const float gp = gr[j] * (a + (1.0f - a) * pos);
      out[j] = (gp - m1[j] - y * m2[j]) * rr[j];
    }
  }
}

void leaky_backward(const float* g, const float* h, int64_t n, float alpha, float* dz) {
  // The slope picked by a bit mask, as in select (gcc leaves `?:` on random signs a branch), then one
  // multiply: g * 1 is g exactly.
  uint32_t one_bits, alpha_bits;
  const float one = 1.0f;
  std::memcpy(&one_bits, &one, 4);
  std::memcpy(&alpha_bits, &alpha, 4);
  parallel_flat(n, [&](int64_t s, int64_t e) {
#pragma omp simd
    for (int64_t i = s; i < e; ++i) {
      const uint32_t m = 0u - static_cast<uint32_t>(h[i] > 0.0f);
      const uint32_t bits = (one_bits & m) | (alpha_bits & ~m);
      float slope;
      std::memcpy(&slope, &bits, 4);
      dz[i] = g[i] * slope;
    }
  });
}

}  // namespace p2p
