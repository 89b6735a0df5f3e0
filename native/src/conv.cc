#include "conv.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"

namespace p2p {

using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

namespace {

dnnl::engine& eng() {
  static dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

dnnl::stream& strm() {
  static dnnl::stream s(eng());
  return s;
}

// Grow-only 64-byte-aligned buffers, one per role in a call. Fresh allocations of this size come from
// mmap and pay a page fault per 4 KiB on every call, which costs more than small layers' compute.
class Scratch {
 public:
  void* get(size_t bytes) {
    if (bytes > cap_) {
      std::free(p_);
      cap_ = (bytes + 4095) & ~size_t(4095);
      p_ = std::aligned_alloc(64, cap_);
      if (!p_) {
        cap_ = 0;
        throw std::bad_alloc();
      }
    }
    return p_;
  }
  void release() {
    std::free(p_);
    p_ = nullptr;
    cap_ = 0;
  }
  ~Scratch() { release(); }

 private:
  void* p_ = nullptr;
  size_t cap_ = 0;
};

enum Slot { kSrc, kWei, kDst, kPad, kSlots };
Scratch g_scratch[kSlots];

// A tensor as tfjs holds it and as the primitive wants it, with the reorders between the two.
struct Operand {
  memory::desc user, prim;
  bool reorder = false;
  dnnl::reorder to_prim, to_user;

  void init(const memory::desc& u, const memory::desc& p, bool in, bool out) {
    user = u;
    prim = p;
    reorder = !(u == p);
    if (!reorder) return;
    if (in) to_prim = dnnl::reorder(dnnl::reorder::primitive_desc(eng(), u, eng(), p));
    if (out) to_user = dnnl::reorder(dnnl::reorder::primitive_desc(eng(), p, eng(), u));
  }

  // The memory the primitive reads: the user's array, or a reordered copy of it in `slot`.
  memory input(const void* data, Slot slot) const {
    memory um(user, eng(), const_cast<void*>(data));
    if (!reorder) return um;
    memory pm(prim, eng(), g_scratch[slot].get(prim.get_size()));
    to_prim.execute(strm(), um, pm);
    return pm;
  }
  // The same for a constant input: the reordered copy is made on the first call and kept in `kept`.
  memory input_kept(const void* data, std::unique_ptr<memory>& kept) const {
    if (!reorder) return memory(user, eng(), const_cast<void*>(data));
    if (!kept) {
      memory um(user, eng(), const_cast<void*>(data));
      auto pm = std::make_unique<memory>(prim, eng());  // oneDNN owns (and frees) this buffer
      to_prim.execute(strm(), um, *pm);
      kept = std::move(pm);
    }
    return *kept;
  }
  // The memory the primitive writes: the user's array, or scratch reordered by `finish`.
  memory output(void* data, Slot slot) const {
    if (!reorder) return memory(user, eng(), data);
    return memory(prim, eng(), g_scratch[slot].get(prim.get_size()));
  }
  void finish(const memory& pm, void* data) const {
    if (!reorder) return;
    memory um(user, eng(), data);
    memory src = pm;
    to_user.execute(strm(), src, um);
  }
};

struct Entry {
  dnnl::primitive prim;
  Operand a, b, c;  // fwd: src, wei, dst; bwd-data: diff_dst, wei, diff_src; bwd-weights: src, diff_dst, diff_wei
  memory::desc pad;
  bool bias = false;
  std::string impl;
};

std::unordered_map<std::string, std::unique_ptr<Entry>> g_cache;

// Reordered copies of constant filters: by weights id, then by the key of the primitive whose layout
// they are in (an Entry's key, not its address: a dropped Entry's address may be reused).
std::unordered_map<int64_t, std::unordered_map<std::string, std::unique_ptr<memory>>> g_kept;

// The filter a call reads: kept across calls for a constant filter (weights_id > 0).
memory weights_of(const Entry& e, const std::string& key, const float* w, int64_t weights_id) {
  if (weights_id <= 0 || !e.b.reorder) return e.b.input(w, kWei);
  return e.b.input_kept(w, g_kept[weights_id][key]);
}

int fixed_layout(int mode) {
  static const int forced = [] {
    const char* e = std::getenv("P2P_CONV_LAYOUT");
    return e ? std::atoi(e) : 0;
  }();
  return forced > 0 ? forced : mode;
}

struct Descs {
  memory::dims src, wei, dst, strides, dil, pl, pr;
};

Descs dims_of(const ConvShape& s) {
  Descs d;
  d.src = {s.n, s.ic, s.ih, s.iw};
  d.wei = {s.oc, s.ic, s.kh, s.kw};
  d.dst = {s.n, s.oc, s.oh, s.ow};
  d.strides = {s.sh, s.sw};
  d.dil = {s.dh - 1, s.dw - 1};
  d.pl = {s.pt, s.pl};
  // oneDNN wants padding_r consistent with the output size; tfjs's own bottom pad may include rows the
  // stride never reaches, which change nothing.
  d.pr = {(s.oh - 1) * s.sh + (s.kh - 1) * s.dh + 1 - s.ih - s.pt, (s.ow - 1) * s.sw + (s.kw - 1) * s.dw + 1 - s.iw - s.pl};
  return d;
}

std::string key_of(char pass, const ConvShape& s, int mode, bool bias) {
  std::ostringstream k;
  k << pass << mode << (bias ? 'b' : '-');
  for (int64_t v : {s.n, s.ih, s.iw, s.ic, s.oh, s.ow, s.oc, s.kh, s.kw, s.sh, s.sw, s.pt, s.pl, s.dh, s.dw}) k << ',' << v;
  return k.str();
}

dnnl::primitive_attr scratch_attr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

struct ProblemDescs {
  memory::desc src_u, wei_u, dst_u, src_p, wei_p, dst_p, bias;
};

ProblemDescs problem(const ConvShape& s, int mode, bool bias) {
  Descs d = dims_of(s);
  ProblemDescs p;
  p.src_u = memory::desc(d.src, dt::f32, tag::nhwc);
  p.wei_u = memory::desc(d.wei, dt::f32, tag::hwio);
  p.dst_u = memory::desc(d.dst, dt::f32, tag::nhwc);
  const bool act_any = mode == kLayoutBlocked;
  const bool wei_any = mode == kLayoutBlocked || mode == kLayoutPlainActAnyWei;
  p.src_p = act_any ? memory::desc(d.src, dt::f32, tag::any) : p.src_u;
  p.dst_p = act_any ? memory::desc(d.dst, dt::f32, tag::any) : p.dst_u;
  p.wei_p = wei_any ? memory::desc(d.wei, dt::f32, tag::any) : p.wei_u;
  if (bias) p.bias = memory::desc({s.oc}, dt::f32, tag::x);
  return p;
}

dnnl::convolution_forward::primitive_desc fwd_pd(const ConvShape& s, const ProblemDescs& p, bool bias,
                                                 const dnnl::primitive_attr& attr) {
  Descs d = dims_of(s);
  auto prop = dnnl::prop_kind::forward_training;
  auto desc = bias ? dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, p.src_p, p.wei_p,
                                                     p.bias, p.dst_p, d.strides, d.dil, d.pl, d.pr)
                   : dnnl::convolution_forward::desc(prop, dnnl::algorithm::convolution_direct, p.src_p, p.wei_p,
                                                     p.dst_p, d.strides, d.dil, d.pl, d.pr);
  return dnnl::convolution_forward::primitive_desc(desc, attr, eng());
}

Entry& fwd_entry(const ConvShape& s, int mode, bool bias) {
  std::string key = key_of('f', s, mode, bias);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) return *it->second;
  auto p = problem(s, mode, bias);
  auto pd = fwd_pd(s, p, bias, scratch_attr());
  auto e = std::make_unique<Entry>();
  e->prim = dnnl::convolution_forward(pd);
  e->a.init(p.src_u, pd.src_desc(), true, false);
  e->b.init(p.wei_u, pd.weights_desc(), true, false);
  e->c.init(p.dst_u, pd.dst_desc(), false, true);
  e->pad = pd.scratchpad_desc();
  e->bias = bias;
  e->impl = pd.impl_info_str();
  return *(g_cache[key] = std::move(e));
}

Entry& bwd_data_entry(const ConvShape& s, int mode) {
  std::string key = key_of('d', s, mode, false);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) return *it->second;
  auto p = problem(s, mode, false);
  auto hint = fwd_pd(s, p, false, dnnl::primitive_attr());
  Descs d = dims_of(s);
  dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, p.src_p, p.wei_p, p.dst_p, d.strides,
                                             d.dil, d.pl, d.pr);
  dnnl::convolution_backward_data::primitive_desc pd(desc, scratch_attr(), eng(), hint);
  auto e = std::make_unique<Entry>();
  e->prim = dnnl::convolution_backward_data(pd);
  e->a.init(p.dst_u, pd.diff_dst_desc(), true, false);
  e->b.init(p.wei_u, pd.weights_desc(), true, false);
  e->c.init(p.src_u, pd.diff_src_desc(), false, true);
  e->pad = pd.scratchpad_desc();
  e->impl = pd.impl_info_str();
  return *(g_cache[key] = std::move(e));
}

Entry& bwd_weights_entry(const ConvShape& s, int mode) {
  std::string key = key_of('w', s, mode, false);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) return *it->second;
  auto p = problem(s, mode, false);
  auto hint = fwd_pd(s, p, false, dnnl::primitive_attr());
  Descs d = dims_of(s);
  dnnl::convolution_backward_weights::desc desc(dnnl::algorithm::convolution_direct, p.src_p, p.wei_p, p.dst_p,
                                                d.strides, d.dil, d.pl, d.pr);
  dnnl::convolution_backward_weights::primitive_desc pd(desc, scratch_attr(), eng(), hint);
  auto e = std::make_unique<Entry>();
  e->prim = dnnl::convolution_backward_weights(pd);
  e->a.init(p.src_u, pd.src_desc(), true, false);
  e->b.init(p.dst_u, pd.diff_dst_desc(), true, false);
  e->c.init(p.wei_u, pd.diff_weights_desc(), false, true);
  e->pad = pd.scratchpad_desc();
  e->impl = pd.impl_info_str();
  return *(g_cache[key] = std::move(e));
}

memory scratchpad(const Entry& e) { return memory(e.pad, eng(), g_scratch[kPad].get(e.pad.get_size() + 64)); }

}  // namespace

namespace {

void run_forward(Entry& e, const ConvShape& s, const float* x, const memory& wei, const float* bias, float* y) {
  memory src = e.a.input(x, kSrc);
  memory dst = e.c.output(y, kDst);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratchpad(e)}};
  if (bias) args.insert({DNNL_ARG_BIAS, memory({{s.oc}, dt::f32, tag::x}, eng(), const_cast<float*>(bias))});
  e.prim.execute(strm(), args);
  e.c.finish(dst, y);
  strm().wait();
}

void run_backward_data(Entry& e, const float* dy, const memory& wei, float* dx) {
  memory ddst = e.a.input(dy, kSrc);
  memory dsrc = e.c.output(dx, kDst);
  e.prim.execute(strm(), {{DNNL_ARG_DIFF_DST, ddst},
                          {DNNL_ARG_WEIGHTS, wei},
                          {DNNL_ARG_DIFF_SRC, dsrc},
                          {DNNL_ARG_SCRATCHPAD, scratchpad(e)}});
  e.c.finish(dsrc, dx);
  strm().wait();
}

void run_backward_weights(Entry& e, const float* x, const float* dy, float* dw) {
  memory src = e.a.input(x, kSrc);
  memory ddst = e.b.input(dy, kDst);
  memory dwei = e.c.output(dw, kWei);
  e.prim.execute(strm(), {{DNNL_ARG_SRC, src},
                          {DNNL_ARG_DIFF_DST, ddst},
                          {DNNL_ARG_DIFF_WEIGHTS, dwei},
                          {DNNL_ARG_SCRATCHPAD, scratchpad(e)}});
  e.c.finish(dwei, dw);
  strm().wait();
}

int plain_if_gemm(int m) { return m == kLayoutGemmCol2im ? static_cast<int>(kLayoutPlain) : m; }

// dx = col2im(W x dy^T): C^T [kh*kw*ic, n*oh*ow] in one GEMM (weights as stored, HWIO rows), then
// each dx element gathers the taps that reach it, so no two threads write the same element.
// Its columns live in scratch: only for undilated problems up to 64 MB of them (the small deep maps
// it is for); elsewhere mode 4 runs as plain.
bool gemm_applicable(const ConvShape& s) {
  // The product in double: convImpl's shapes come with no arrays to bound them, and int64 could wrap.
  const double cols = static_cast<double>(s.n) * s.oh * s.ow * s.kh * s.kw * s.ic;
  return s.dh == 1 && s.dw == 1 && cols <= static_cast<double>(int64_t(1) << 24);
}

// Strides >= 1 and array sizes are checked at the addon boundary (conv_args in addon.cc): the gather
// below divides by the strides.
void gemm_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx) {
  const int64_t m = s.n * s.oh * s.ow, k = s.oc, taps = s.kh * s.kw, nrow = taps * s.ic;
  float* ct = static_cast<float*>(g_scratch[kDst].get(static_cast<size_t>(m * nrow) * sizeof(float)));
  if (dnnl_sgemm('N', 'T', nrow, m, k, 1.0f, w, k, dy, k, 0.0f, ct, m) != dnnl_success) {
    throw dnnl::error(dnnl_runtime_error, "dnnl_sgemm failed");
  }
  // C = (C^T)^T, [n*oh*ow, kh*kw*ic], so the gather below reads whole ic rows.
  float* c = static_cast<float*>(g_scratch[kSrc].get(static_cast<size_t>(m * nrow) * sizeof(float)));
  constexpr int64_t B = 32;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t r0 = 0; r0 < nrow; r0 += B) {
    for (int64_t c0 = 0; c0 < m; c0 += B) {
      for (int64_t r = r0; r < std::min(nrow, r0 + B); ++r)
        for (int64_t q = c0; q < std::min(m, c0 + B); ++q) c[q * nrow + r] = ct[r * m + q];
    }
  }
  const int64_t ic = s.ic;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < s.n; ++b) {
    for (int64_t ih = 0; ih < s.ih; ++ih) {
      for (int64_t iw = 0; iw < s.iw; ++iw) {
        float* __restrict out = dx + ((b * s.ih + ih) * s.iw + iw) * ic;
        std::fill(out, out + ic, 0.0f);
        for (int64_t kh = 0; kh < s.kh; ++kh) {
          const int64_t th = ih + s.pt - kh;
          if (th < 0 || th % s.sh != 0 || th / s.sh >= s.oh) continue;
          const int64_t oh = th / s.sh;
          for (int64_t kw = 0; kw < s.kw; ++kw) {
            const int64_t tw = iw + s.pl - kw;
            if (tw < 0 || tw % s.sw != 0 || tw / s.sw >= s.ow) continue;
            const int64_t ow = tw / s.sw;
            const float* __restrict src = c + ((b * s.oh + oh) * s.ow + ow) * nrow + (kh * s.kw + kw) * ic;
#pragma omp simd
            for (int64_t j = 0; j < ic; ++j) out[j] += src[j];
          }
        }
      }
    }
  }
}

// Which layout mode won for each pass and shape. Which of oneDNN's kernels is fastest depends on the
// layer (plain-layout GEMM for tiny maps with big filters, blocked direct kernels for wide layers,
// brgemm on NHWC in between) and on the reorder traffic, so the first call of each times them all.
std::unordered_map<std::string, int> g_choice;
int64_t g_tunings = 0;

// A pass's choice key: its letter, upper case where the filter is constant (the reorder of a kept
// filter is paid once, so the same shape may choose another layout than in training).
char choice_pass(char pass, int64_t weights_id) {
  return weights_id > 0 ? static_cast<char>(pass - 'a' + 'A') : pass;
}

template <typename Run>
int tuned(char pass, const ConvShape& s, bool bias, int mode, int64_t weights_id, Run run) {
  mode = fixed_layout(mode);
  if (mode != kLayoutAuto) {
    run(mode);
    return mode;
  }
  const std::string key = key_of(choice_pass(pass, weights_id), s, 0, bias);
  auto it = g_choice.find(key);
  if (it != g_choice.end()) {
    try {
      run(it->second);
      return it->second;
    } catch (const dnnl::error&) {
      // A choice loaded from another process (conv_set_choices) that this build cannot run: time anew.
      g_choice.erase(it);
    }
  }
  ++g_tunings;
  // Two timed rounds over the candidates, interleaved, keeping each one's best: one round alone is
  // easily skewed by another process taking a core for a moment.
  const int cands[] = {kLayoutPlain, kLayoutPlainActAnyWei, kLayoutBlocked, kLayoutGemmCol2im};
  const int ncand = pass == 'd' && gemm_applicable(s) ? 4 : 3;
  double t_best[4] = {1e300, 1e300, 1e300, 1e300};
  bool ok[4] = {true, true, true, true};
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < ncand; ++i) {
      if (!ok[i]) continue;
      try {
        auto t0 = std::chrono::steady_clock::now();
        run(cands[i]);
        const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        // Round 0 creates the primitive, first-touches scratch memory and reorders a kept filter:
        // not timed.
        if (round > 0) t_best[i] = std::min(t_best[i], t);
      } catch (const dnnl::error&) {
        ok[i] = false;  // a layout oneDNN has no implementation for is not a candidate
      }
    }
  }
  int best = kLayoutBlocked;
  double best_t = 1e300;
  for (int i = 0; i < ncand; ++i) {
    if (ok[i] && t_best[i] < best_t) {
      best_t = t_best[i];
      best = cands[i];
    }
  }
  // Losers' primitives hold JIT code and descriptors only; drop them anyway to keep the cache small.
  // Their kept filter copies are as big as the filter: dropped too.
  auto kept = weights_id > 0 ? g_kept.find(weights_id) : g_kept.end();
  for (int m : {kLayoutPlain, kLayoutPlainActAnyWei, kLayoutBlocked}) {
    if (m == best) continue;
    g_cache.erase(key_of(pass, s, m, bias));
    if (kept != g_kept.end()) kept->second.erase(key_of(pass, s, m, bias));
  }
  g_choice[key] = best;
  run(best);  // the output must come from the chosen kernel's last run, whatever ran before
  return best;
}

}  // namespace

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y, int mode,
                  int64_t weights_id) {
  const bool b = bias != nullptr;
  tuned('f', s, b, mode, weights_id, [&](int m) {
    const int pm = plain_if_gemm(m);
    Entry& e = fwd_entry(s, pm, b);
    run_forward(e, s, x, weights_of(e, key_of('f', s, pm, b), w, weights_id), bias, y);
  });
}

void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, int mode,
                        int64_t weights_id) {
  tuned('d', s, false, mode, weights_id, [&](int m) {
    if (m == kLayoutGemmCol2im && gemm_applicable(s)) {
      gemm_backward_data(s, dy, w, dx);
    } else {
      const int pm = plain_if_gemm(m);
      Entry& e = bwd_data_entry(s, pm);
      run_backward_data(e, dy, weights_of(e, key_of('d', s, pm, false), w, weights_id), dx);
    }
  });
}

void conv_backward_weights(const ConvShape& s, const float* x, const float* dy, float* dw, int mode) {
  tuned('w', s, false, mode, 0,
        [&](int m) { run_backward_weights(bwd_weights_entry(s, plain_if_gemm(m)), x, dy, dw); });
}

void conv_forget_weights(int64_t weights_id) { g_kept.erase(weights_id); }

int64_t conv_kept_weight_bytes() {
  int64_t bytes = 0;
  for (const auto& [id, copies] : g_kept) {
    for (const auto& [key, mem] : copies) bytes += static_cast<int64_t>(mem->get_desc().get_size());
  }
  return bytes;
}

std::string conv_impl_names(const ConvShape& s, int mode) {
  auto pick = [&](char pass) {
    if (fixed_layout(mode) != kLayoutAuto) return fixed_layout(mode);
    auto it = g_choice.find(key_of(pass, s, 0, false));
    return it == g_choice.end() ? static_cast<int>(kLayoutBlocked) : it->second;
  };
  auto tagged = [](int m, const std::string& impl) { return std::to_string(m) + ":" + impl; };
  std::string out = tagged(pick('f'), fwd_entry(s, plain_if_gemm(pick('f')), false).impl);
  const bool gemm = pick('d') == kLayoutGemmCol2im && gemm_applicable(s);
  out += " / " + (gemm ? tagged(kLayoutGemmCol2im, "sgemm+col2im")
                       : tagged(pick('d'), bwd_data_entry(s, plain_if_gemm(pick('d'))).impl));
  out += " / " + tagged(pick('w'), bwd_weights_entry(s, plain_if_gemm(pick('w'))).impl);
  return out;
}

std::vector<std::pair<std::string, int>> conv_choices() {
  return {g_choice.begin(), g_choice.end()};
}

int conv_set_choices(const std::vector<std::pair<std::string, int>>& choices) {
  int taken = 0;
  for (const auto& [key, mode] : choices) {
    // key_of(pass, shape, 0, bias): "f0b,1,2,..." with 15 numbers; anything else is not ours.
    // Upper case F/D: the same passes with a constant filter (choice_pass).
    if (key.size() < 4 || std::string("fdwFD").find(key[0]) == std::string::npos || key[1] != '0') continue;
    if (std::count(key.begin(), key.end(), ',') != 15) continue;
    const bool candidate = mode == kLayoutPlain || mode == kLayoutPlainActAnyWei || mode == kLayoutBlocked ||
                           (mode == kLayoutGemmCol2im && (key[0] == 'd' || key[0] == 'D'));
    if (!candidate || g_choice.count(key)) continue;
    g_choice[key] = mode;
    ++taken;
  }
  return taken;
}

int64_t conv_tunings() { return g_tunings; }

void conv_release() {
  g_kept.clear();
  g_cache.clear();
  g_choice.clear();
  for (auto& b : g_scratch) b.release();
}

}  // namespace p2p
