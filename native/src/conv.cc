#include "conv.h"

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

// Layout choice per pass, from timing each layer of the pix2pix models with both (bench/conv-layouts.ts):
// blocked layouts win wherever oneDNN's blocked kernels have enough channels to fill a 16-wide block.
int layout_for(const ConvShape& s, int mode) {
  if (mode != kLayoutAuto) return mode;
  if (s.ic < 16 || s.oc < 16) return kLayoutPlainActAnyWei;
  return kLayoutBlocked;
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

void conv_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y, int mode) {
  Entry& e = fwd_entry(s, layout_for(s, mode), bias != nullptr);
  memory src = e.a.input(x, kSrc);
  memory wei = e.b.input(w, kWei);
  memory dst = e.c.output(y, kDst);
  std::unordered_map<int, memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratchpad(e)}};
  if (bias) args.insert({DNNL_ARG_BIAS, memory({{s.oc}, dt::f32, tag::x}, eng(), const_cast<float*>(bias))});
  e.prim.execute(strm(), args);
  e.c.finish(dst, y);
  strm().wait();
}

void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, int mode) {
  Entry& e = bwd_data_entry(s, layout_for(s, mode));
  memory ddst = e.a.input(dy, kSrc);
  memory wei = e.b.input(w, kWei);
  memory dsrc = e.c.output(dx, kDst);
  e.prim.execute(strm(), {{DNNL_ARG_DIFF_DST, ddst},
                          {DNNL_ARG_WEIGHTS, wei},
                          {DNNL_ARG_DIFF_SRC, dsrc},
                          {DNNL_ARG_SCRATCHPAD, scratchpad(e)}});
  e.c.finish(dsrc, dx);
  strm().wait();
}

void conv_backward_weights(const ConvShape& s, const float* x, const float* dy, float* dw, int mode) {
  Entry& e = bwd_weights_entry(s, layout_for(s, mode));
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

std::string conv_impl_names(const ConvShape& s, int mode) {
  int m = layout_for(s, mode);
  std::string out = fwd_entry(s, m, false).impl;
  out += " / " + bwd_data_entry(s, m).impl;
  out += " / " + bwd_weights_entry(s, m).impl;
  return out;
}

void conv_release() {
  g_cache.clear();
  for (auto& b : g_scratch) b.release();
}

}  // namespace p2p
