// N-API surface of the native backend. Every function works on the Float32Arrays that tfjs's tensors
// already hold (no copies); the JS side allocates outputs. Sizes are checked here, since a wrong
// shape from JS would otherwise be a write past an array's end.
#include <napi.h>
#include <omp.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "conv.h"
#include "eltwise.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "peak.h"

namespace {

using p2p::ConvShape;

struct Fail : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
T* data_of(const Napi::Value& v, size_t need, const char* what) {
  if (!v.IsTypedArray()) throw Fail(std::string(what) + ": expected a typed array");
  auto ta = v.As<Napi::TypedArray>();
  const size_t elem = ta.ElementSize();
  if (elem != sizeof(T)) throw Fail(std::string(what) + ": wrong element type");
  if (ta.ElementLength() < need) throw Fail(std::string(what) + ": array too short");
  auto* base = static_cast<uint8_t*>(ta.ArrayBuffer().Data());
  return reinterpret_cast<T*>(base + ta.ByteOffset());
}

const float* floats_or_null(const Napi::Value& v, size_t need, const char* what) {
  if (v.IsNull() || v.IsUndefined()) return nullptr;
  return data_of<float>(v, need, what);
}

std::vector<int64_t> ints(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Fail(std::string(what) + ": expected an array");
  auto a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return out;
}

int64_t prod(const std::vector<int64_t>& s) {
  int64_t p = 1;
  for (int64_t v : s) p *= v;
  return p;
}

ConvShape conv_shape(const Napi::Value& v, int* mode) {
  auto p = ints(v, "conv params");
  if (p.size() != 16) throw Fail("conv params: expected 16 numbers");
  *mode = static_cast<int>(p[15]);
  return ConvShape{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]};
}

size_t src_n(const ConvShape& s) { return static_cast<size_t>(s.n * s.ih * s.iw * s.ic); }
size_t dst_n(const ConvShape& s) { return static_cast<size_t>(s.n * s.oh * s.ow * s.oc); }
size_t wei_n(const ConvShape& s) { return static_cast<size_t>(s.kh * s.kw * s.ic * s.oc); }

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F body) {
  Napi::Env env = info.Env();
  try {
    return body(env);
  } catch (const dnnl::error& e) {
    Napi::Error::New(env, std::string("oneDNN: ") + e.what() + " (status " + std::to_string(e.status) + ")")
        .ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value ConvForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    int mode;
    ConvShape s = conv_shape(info[0], &mode);
    p2p::conv_forward(s, data_of<float>(info[1], src_n(s), "x"), data_of<float>(info[2], wei_n(s), "filter"),
                      floats_or_null(info[3], s.oc, "bias"), data_of<float>(info[4], dst_n(s), "y"), mode);
    return env.Undefined();
  });
}

Napi::Value ConvBackwardData(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    int mode;
    ConvShape s = conv_shape(info[0], &mode);
    p2p::conv_backward_data(s, data_of<float>(info[1], dst_n(s), "dy"), data_of<float>(info[2], wei_n(s), "filter"),
                            data_of<float>(info[3], src_n(s), "dx"), mode);
    return env.Undefined();
  });
}

Napi::Value ConvBackwardWeights(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    int mode;
    ConvShape s = conv_shape(info[0], &mode);
    p2p::conv_backward_weights(s, data_of<float>(info[1], src_n(s), "x"), data_of<float>(info[2], dst_n(s), "dy"),
                               data_of<float>(info[3], wei_n(s), "dw"), mode);
    return env.Undefined();
  });
}

Napi::Value ConvImpl(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    int mode;
    ConvShape s = conv_shape(info[0], &mode);
    return Napi::String::New(env, p2p::conv_impl_names(s, mode));
  });
}

Napi::Value ConvRelease(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    p2p::conv_release();
    return env.Undefined();
  });
}

Napi::Value Binary(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int op = info[0].As<Napi::Number>().Int32Value();
    auto as = ints(info[2], "a shape"), bs = ints(info[4], "b shape"), os = ints(info[6], "out shape");
    if (as.size() > 8 || bs.size() > 8 || os.size() > 8 || as.size() > os.size() || bs.size() > os.size())
      throw Fail("binary: bad ranks");
    for (size_t i = 0; i < os.size(); ++i) {
      const size_t ia = i + as.size(), ib = i + bs.size();
      const int64_t na = ia >= os.size() ? as[ia - os.size()] : 1, nb = ib >= os.size() ? bs[ib - os.size()] : 1;
      if ((na != 1 && na != os[i]) || (nb != 1 && nb != os[i])) throw Fail("binary: shapes do not broadcast");
    }
    const float* a = data_of<float>(info[1], prod(as), "a");
    const float* b = data_of<float>(info[3], prod(bs), "b");
    void* out = op >= p2p::kGreater ? static_cast<void*>(data_of<uint8_t>(info[5], prod(os), "out"))
                                    : static_cast<void*>(data_of<float>(info[5], prod(os), "out"));
    p2p::binary(op, a, as, b, bs, out, os);
    return env.Undefined();
  });
}

Napi::Value Unary(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int op = info[0].As<Napi::Number>().Int32Value();
    const float alpha = info[1].As<Napi::Number>().FloatValue();
    const int64_t n = info[4].As<Napi::Number>().Int64Value();
    p2p::unary(op, alpha, data_of<float>(info[2], n, "x"), data_of<float>(info[3], n, "out"), n);
    return env.Undefined();
  });
}

Napi::Value Select(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int64_t n = info[4].As<Napi::Number>().Int64Value();
    p2p::select(data_of<uint8_t>(info[0], n, "cond"), data_of<float>(info[1], n, "a"), data_of<float>(info[2], n, "b"),
                data_of<float>(info[3], n, "out"), n);
    return env.Undefined();
  });
}

Napi::Value Fill(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int64_t n = info[2].As<Napi::Number>().Int64Value();
    p2p::fill(data_of<float>(info[0], n, "out"), info[1].As<Napi::Number>().FloatValue(), n);
    return env.Undefined();
  });
}

Napi::Value AddN(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int64_t n = info[2].As<Napi::Number>().Int64Value();
    auto arr = info[0].As<Napi::Array>();
    if (arr.Length() == 0) throw Fail("addN: no inputs");
    std::vector<const float*> xs;
    for (uint32_t i = 0; i < arr.Length(); ++i) xs.push_back(data_of<float>(arr.Get(i), n, "x"));
    p2p::add_n(xs, data_of<float>(info[1], n, "out"), n);
    return env.Undefined();
  });
}

Napi::Value ReduceSum(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int64_t outer = info[1].As<Napi::Number>().Int64Value();
    const int64_t r = info[2].As<Napi::Number>().Int64Value();
    const int64_t inner = info[3].As<Napi::Number>().Int64Value();
    p2p::reduce_sum(data_of<float>(info[0], outer * r * inner, "x"), outer, r, inner,
                    data_of<float>(info[4], outer * inner, "out"), info[5].ToBoolean().Value());
    return env.Undefined();
  });
}

Napi::Value CopyBox(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    auto ss = ints(info[1], "src shape"), sb = ints(info[2], "src begin");
    auto ds = ints(info[4], "dst shape"), db = ints(info[5], "dst begin"), box = ints(info[6], "box");
    const size_t r = box.size();
    if (ss.size() != r || sb.size() != r || ds.size() != r || db.size() != r) throw Fail("copyBox: rank mismatch");
    for (size_t i = 0; i < r; ++i) {
      if (sb[i] < 0 || db[i] < 0 || box[i] < 0 || sb[i] + box[i] > ss[i] || db[i] + box[i] > ds[i])
        throw Fail("copyBox: box out of bounds");
    }
    p2p::copy_box(data_of<float>(info[0], prod(ss), "src"), ss, sb, data_of<float>(info[3], prod(ds), "dst"), ds, db,
                  box);
    return env.Undefined();
  });
}

Napi::Value Adam(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int64_t n = info[4].As<Napi::Number>().Int64Value();
    auto f = [&](int i) { return info[i].As<Napi::Number>().DoubleValue(); };
    p2p::adam(data_of<float>(info[0], n, "w"), data_of<float>(info[1], n, "g"), data_of<float>(info[2], n, "m"),
              data_of<float>(info[3], n, "v"), n, f(5), f(6), f(7), f(8), f(9));
    return env.Undefined();
  });
}

Napi::Value InormActForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int64_t n = info[1].As<Napi::Number>().Int64Value();
    const int64_t hw = info[2].As<Napi::Number>().Int64Value();
    const int64_t c = info[3].As<Napi::Number>().Int64Value();
    const bool has_alpha = !info[5].IsNull() && !info[5].IsUndefined();
    const float alpha = has_alpha ? info[5].As<Napi::Number>().FloatValue() : 1.0f;
    if (has_alpha && !(alpha > 0.0f)) throw Fail("inormAct: alpha must be > 0");
    p2p::inorm_act_forward(data_of<float>(info[0], n * hw * c, "z"), n, hw, c, info[4].As<Napi::Number>().FloatValue(),
                           has_alpha, alpha, data_of<float>(info[6], n * hw * c, "h"),
                           data_of<float>(info[7], n * c, "rs"));
    return env.Undefined();
  });
}

Napi::Value InormActBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int64_t n = info[3].As<Napi::Number>().Int64Value();
    const int64_t hw = info[4].As<Napi::Number>().Int64Value();
    const int64_t c = info[5].As<Napi::Number>().Int64Value();
    const bool has_alpha = !info[6].IsNull() && !info[6].IsUndefined();
    const float alpha = has_alpha ? info[6].As<Napi::Number>().FloatValue() : 1.0f;
    if (has_alpha && !(alpha > 0.0f)) throw Fail("inormActGrad: alpha must be > 0");
    p2p::inorm_act_backward(data_of<float>(info[0], n * hw * c, "g"), data_of<float>(info[1], n * hw * c, "h"),
                            data_of<float>(info[2], n * c, "rs"), n, hw, c, has_alpha, alpha,
                            data_of<float>(info[7], n * hw * c, "dz"));
    return env.Undefined();
  });
}

Napi::Value Peak(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const int threads = info.Length() > 1 ? info[1].As<Napi::Number>().Int32Value() : 0;
    auto r = p2p::measure_peak(info[0].As<Napi::Number>().DoubleValue(), threads);
    auto o = Napi::Object::New(env);
    o.Set("avx2Gflops", r.avx2_gflops);
    o.Set("avx512Gflops", r.avx512_gflops);
    o.Set("hasAvx512", r.has_avx512);
    o.Set("threads", r.threads);
    return o;
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const dnnl_version_t* v = dnnl_version();
    auto o = Napi::Object::New(env);
    o.Set("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
    o.Set("threads", omp_get_max_threads());
    return o;
  });
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("convForward", Napi::Function::New(env, ConvForward));
  exports.Set("convBackwardData", Napi::Function::New(env, ConvBackwardData));
  exports.Set("convBackwardWeights", Napi::Function::New(env, ConvBackwardWeights));
  exports.Set("convImpl", Napi::Function::New(env, ConvImpl));
  exports.Set("convRelease", Napi::Function::New(env, ConvRelease));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("select", Napi::Function::New(env, Select));
  exports.Set("fill", Napi::Function::New(env, Fill));
  exports.Set("addN", Napi::Function::New(env, AddN));
  exports.Set("reduceSum", Napi::Function::New(env, ReduceSum));
  exports.Set("copyBox", Napi::Function::New(env, CopyBox));
  exports.Set("adam", Napi::Function::New(env, Adam));
  exports.Set("inormActForward", Napi::Function::New(env, InormActForward));
  exports.Set("inormActBackward", Napi::Function::New(env, InormActBackward));
  exports.Set("peak", Napi::Function::New(env, Peak));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace

NODE_API_MODULE(pix2pix_native, Init)
