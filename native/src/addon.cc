// N-API surface of the native backend. Every function works on the Float32Arrays that tfjs's tensors
// already hold (no copies); the JS side allocates outputs.
//
// Every argument is checked here, before any kernel runs: a wrong size from JS would be a write past
// an array's end, a stride of 0 a division by zero, an Adam step of 0 a 0/0 in the bias correction,
// an Int32Array read as floats garbage. A failed check throws a C++ exception (the addon is built
// with -fexceptions; only node-addon-api's own C++ exceptions are off), which leaves the function
// body at once, so nothing after a failed check runs; `guarded` turns it into the call's one JS
// exception (TypeError for a wrong JS type or a missing argument, RangeError for a bad value).
#include <napi.h>
#include <omp.h>
#include <sys/mman.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "conv.h"
#include "eltwise.h"
#include "oneapi/dnnl/dnnl.hpp"
#include "peak.h"

namespace {

using p2p::ConvShape;

struct ArgTypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ArgRangeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr int64_t kMaxSafe = (int64_t(1) << 53) - 1;  // Number.MAX_SAFE_INTEGER

// A number as JS would print it, for messages: shortest round-tripping digits, NaN, Infinity.
std::string fmt_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  if (v == std::trunc(v) && std::fabs(v) < 1e21) {  // JS prints whole numbers below 1e21 in full
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

const char* typed_array_name(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    case napi_bigint64_array: return "BigInt64Array";
    case napi_biguint64_array: return "BigUint64Array";
    default: return "a typed array";
  }
}

// What a value is, for "(got ...)": a number's value, otherwise its kind. None of these calls runs
// JS or fails with an exception pending.
std::string describe(const Napi::Value& v) {
  if (v.IsEmpty()) return "nothing";
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return fmt_number(v.As<Napi::Number>().DoubleValue());
    case napi_string: return "string";
    case napi_symbol: return "symbol";
    case napi_function: return "function";
    case napi_bigint: return "bigint";
    case napi_external: return "external";
    default: break;
  }
  if (v.IsArray()) return "Array";
  if (v.IsArrayBuffer()) return "ArrayBuffer";
  if (v.IsDataView()) return "DataView";
  if (v.IsTypedArray()) {
    napi_typedarray_type t;
    if (napi_get_typedarray_info(v.Env(), v, &t, nullptr, nullptr, nullptr, nullptr) == napi_ok)
      return typed_array_name(t);
  }
  return "object";
}

// One call's arguments and the checks on them. Messages are one line, "fn: what must ... (got ...)".
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count) : info_(info), fn_(fn) {
    if (info.Length() < count) {
      throw ArgTypeError(fn_ + ": expected " + std::to_string(count) + " arguments (got " +
                         std::to_string(info.Length()) + ")");
    }
  }

  Napi::Value operator[](size_t i) const { return info_[i]; }
  size_t length() const { return info_.Length(); }
  static bool absent(const Napi::Value& v) { return v.IsNull() || v.IsUndefined(); }

  [[noreturn]] void type_fail(const std::string& what, const char* want, const Napi::Value& got) const {
    throw ArgTypeError(fn_ + ": " + what + " must be " + want + " (got " + describe(got) + ")");
  }
  [[noreturn]] void range_fail(const std::string& what, const std::string& must, const std::string& got) const {
    throw ArgRangeError(fn_ + ": " + what + " must " + must + " (got " + got + ")");
  }
  [[noreturn]] void fail(const std::string& msg) const { throw ArgRangeError(fn_ + ": " + msg); }
  void check(bool ok, const std::string& what, const std::string& must, double got) const {
    if (!ok) range_fail(what, must, fmt_number(got));
  }

  // Any number, NaN and Infinity included (a fill value may well be -Infinity).
  double number(const Napi::Value& v, const std::string& what) const {
    if (!v.IsNumber()) type_fail(what, "a number", v);
    return v.As<Napi::Number>().DoubleValue();
  }
  double finite(const Napi::Value& v, const std::string& what) const {
    const double d = number(v, what);
    check(std::isfinite(d), what, "be a finite number", d);
    return d;
  }
  // A whole number in [lo, hi]: sizes, counts, op codes. 2.5 or NaN would otherwise truncate silently.
  int64_t integer(const Napi::Value& v, const std::string& what, int64_t lo, int64_t hi = kMaxSafe) const {
    const double d = number(v, what);
    if (!(d == std::trunc(d) && d >= static_cast<double>(lo) && d <= static_cast<double>(hi))) {
      // Only name the upper bound where it is small, or is what the value broke.
      const bool open = hi >= INT32_MAX && !(d > static_cast<double>(hi));
      range_fail(what,
                 open ? "be an integer >= " + std::to_string(lo)
                      : "be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]",
                 fmt_number(d));
    }
    return static_cast<int64_t>(d);
  }
  bool boolean(const Napi::Value& v, const std::string& what) const {
    if (!v.IsBoolean()) type_fail(what, "a boolean", v);
    return v.As<Napi::Boolean>().Value();
  }

  // A plain Array's elements, read before any typed array's data pointer is taken: a getter on an
  // element runs JS, which could detach a buffer looked at earlier. A throwing getter leaves its
  // exception pending and an empty value, which then fails its own check; `guarded` keeps the first.
  std::vector<Napi::Value> elements(const Napi::Value& v, const std::string& what, uint32_t max_len) const {
    if (!v.IsArray()) type_fail(what, "an Array", v);
    auto arr = v.As<Napi::Array>();
    const uint32_t n = arr.Length();
    if (n > max_len) range_fail(what, "have at most " + std::to_string(max_len) + " elements", std::to_string(n));
    std::vector<Napi::Value> out;
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) out.push_back(arr.Get(i));
    return out;
  }
  // A tensor shape: an Array of integers >= 0, at most max_rank of them.
  std::vector<int64_t> shape(const Napi::Value& v, const std::string& what, uint32_t max_rank) const {
    std::vector<int64_t> out;
    auto els = elements(v, what, max_rank);
    for (size_t i = 0; i < els.size(); ++i) out.push_back(integer(els[i], what + "[" + std::to_string(i) + "]", 0));
    return out;
  }

  // Element count of a shape, refused where it passes 2^53 (it sizes arrays, so it must not wrap).
  size_t count(const std::vector<int64_t>& dims, const std::string& what) const {
    int64_t p = 1;
    for (int64_t d : dims) {
      if (__builtin_mul_overflow(p, d, &p) || p > kMaxSafe) fail(what + " has too many elements");
    }
    return static_cast<size_t>(p);
  }

  // The data of a typed array of exactly this kind (an Int32Array has 4-byte elements too, but they
  // are not floats), with at least `need` elements, so the kernel stays inside it.
  void* typed(const Napi::Value& v, const std::string& what, napi_typedarray_type type, size_t need) const {
    napi_typedarray_type t;
    size_t len = 0;
    void* data = nullptr;
    if (!v.IsTypedArray() ||
        napi_get_typedarray_info(v.Env(), v, &t, &len, &data, nullptr, nullptr) != napi_ok || t != type) {
      type_fail(what, type == napi_float32_array ? "a Float32Array" : "a Uint8Array", v);
    }
    if (len < need) range_fail(what, "have at least " + std::to_string(need) + " elements", std::to_string(len));
    return data;
  }
  float* f32(const Napi::Value& v, const std::string& what, size_t need) const {
    return static_cast<float*>(typed(v, what, napi_float32_array, need));
  }
  const float* f32_or_null(const Napi::Value& v, const std::string& what, size_t need) const {
    return absent(v) ? nullptr : f32(v, what, need);
  }
  uint8_t* u8(const Napi::Value& v, const std::string& what, size_t need) const {
    return static_cast<uint8_t*>(typed(v, what, napi_uint8_array, need));
  }

 private:
  const Napi::CallbackInfo& info_;
  std::string fn_;
};

// A convolution's 16 params (see NativeAddon.convForward in src/backend/native-addon.ts) and the
// element counts of its three tensors. Sizes may be 0 (oneDNN handles empty problems); strides and
// dilations divide in the GEMM backward-data path, so they must be >= 1. Each value stays below 2^31
// so that the padding arithmetic in conv.cc cannot overflow.
struct Conv {
  ConvShape s;
  int mode;
  size_t src, wei, dst;
};

Conv conv_args(const Args& a, const Napi::Value& v) {
  static const char* const kNames[16] = {"n",  "ih", "iw", "ic",     "oh",      "ow", "oc", "kh",
                                         "kw", "sh", "sw", "padTop", "padLeft", "dh", "dw", "layoutMode"};
  static const int64_t kMin[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0};
  auto els = a.elements(v, "params", 16);
  if (els.size() != 16) a.range_fail("params", "have 16 elements", std::to_string(els.size()));
  int64_t p[16];
  for (int i = 0; i < 16; ++i) {
    const int64_t hi = i == 15 ? static_cast<int64_t>(p2p::kLayoutGemmCol2im) : INT32_MAX;
    p[i] = a.integer(els[i], "params[" + std::to_string(i) + "] (" + kNames[i] + ")", kMin[i], hi);
  }
  Conv c;
  c.s = ConvShape{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12], p[13], p[14]};
  c.mode = static_cast<int>(p[15]);
  c.src = a.count({c.s.n, c.s.ih, c.s.iw, c.s.ic}, "x [n, ih, iw, ic]");
  c.wei = a.count({c.s.kh, c.s.kw, c.s.ic, c.s.oc}, "filter [kh, kw, ic, oc]");
  c.dst = a.count({c.s.n, c.s.oh, c.s.ow, c.s.oc}, "y [n, oh, ow, oc]");
  return c;
}

// Instance norm's alpha: null/undefined for no activation, else a LeakyReLU slope > 0 (the backward
// pass recovers the pre-activation from the sign of its output, which needs alpha > 0).
bool norm_alpha(const Args& a, const Napi::Value& v, float* alpha) {
  *alpha = 1.0f;
  if (Args::absent(v)) return false;
  const double d = a.finite(v, "alpha");
  a.check(d > 0.0, "alpha", "be > 0 or null", d);
  *alpha = static_cast<float>(d);
  return true;
}

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F body) {
  Napi::Env env = info.Env();
  // Raising a JS exception while another is pending aborts the process (napi_throw fails, and
  // node-addon-api treats that as fatal). One may be pending here when a getter on an argument
  // threw; that one is the call's error then, and propagates as it is.
  auto raise = [&](auto make) {
    if (!env.IsExceptionPending()) make().ThrowAsJavaScriptException();
  };
  try {
    return body(env);
  } catch (const ArgTypeError& e) {
    raise([&] { return Napi::TypeError::New(env, e.what()); });
  } catch (const ArgRangeError& e) {
    raise([&] { return Napi::RangeError::New(env, e.what()); });
  } catch (const dnnl::error& e) {
    raise([&] {
      return Napi::Error::New(env, std::string("oneDNN: ") + e.what() + " (status " + std::to_string(e.status) + ")");
    });
  } catch (const std::exception& e) {
    raise([&] { return Napi::Error::New(env, e.what()); });
  } catch (...) {
    // Nothing may escape into V8's frames: an unknown exception there terminates the process.
    raise([&] { return Napi::Error::New(env, "native addon: unknown C++ exception"); });
  }
  return env.Undefined();
}

// The optional weights id of a constant filter (see conv_forward in conv.h): absent or 0 for none.
int64_t weights_id(const Args& a, size_t i) {
  return a.length() > i && !Args::absent(a[i]) ? a.integer(a[i], "weightsId", 0) : 0;
}

Napi::Value ConvForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "convForward", 5);
    const Conv c = conv_args(a, a[0]);
    p2p::conv_forward(c.s, a.f32(a[1], "x", c.src), a.f32(a[2], "filter", c.wei), a.f32_or_null(a[3], "bias", c.s.oc),
                      a.f32(a[4], "y", c.dst), c.mode, weights_id(a, 5));
    return env.Undefined();
  });
}

Napi::Value ConvBackwardData(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "convBackwardData", 4);
    const Conv c = conv_args(a, a[0]);
    p2p::conv_backward_data(c.s, a.f32(a[1], "dy", c.dst), a.f32(a[2], "filter", c.wei), a.f32(a[3], "dx", c.src),
                            c.mode, weights_id(a, 4));
    return env.Undefined();
  });
}

Napi::Value ConvForgetWeights(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "convForgetWeights", 1);
    p2p::conv_forget_weights(a.integer(a[0], "weightsId", 1));
    return env.Undefined();
  });
}

Napi::Value ConvKeptWeightBytes(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(p2p::conv_kept_weight_bytes()));
  });
}

Napi::Value ConvBackwardWeights(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "convBackwardWeights", 4);
    const Conv c = conv_args(a, a[0]);
    p2p::conv_backward_weights(c.s, a.f32(a[1], "x", c.src), a.f32(a[2], "dy", c.dst), a.f32(a[3], "dw", c.wei),
                               c.mode);
    return env.Undefined();
  });
}

Napi::Value ConvImpl(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "convImpl", 1);
    const Conv c = conv_args(a, a[0]);
    return Napi::String::New(env, p2p::conv_impl_names(c.s, c.mode));
  });
}

Napi::Value ConvRelease(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    p2p::conv_release();
    return env.Undefined();
  });
}

// [[key, mode], ...]: the layout choices made so far (see conv_choices in conv.h).
Napi::Value ConvChoices(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    const auto choices = p2p::conv_choices();
    auto out = Napi::Array::New(env, choices.size());
    for (size_t i = 0; i < choices.size(); ++i) {
      auto pair = Napi::Array::New(env, 2);
      pair.Set(uint32_t{0}, Napi::String::New(env, choices[i].first));
      pair.Set(uint32_t{1}, Napi::Number::New(env, choices[i].second));
      out.Set(static_cast<uint32_t>(i), pair);
    }
    return out;
  });
}

// setConvChoices([[key, mode], ...]) -> how many were taken. Entries that are not a [string, integer]
// pair are skipped like unknown keys: the file they come from is a cache, never an error.
Napi::Value SetConvChoices(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "setConvChoices", 1);
    std::vector<std::pair<std::string, int>> choices;
    for (const auto& e : a.elements(a[0], "choices", 1u << 20)) {
      if (!e.IsArray()) continue;
      auto pair = e.As<Napi::Array>();
      if (pair.Length() != 2) continue;
      Napi::Value key = pair.Get(uint32_t{0}), mode = pair.Get(uint32_t{1});
      if (!key.IsString() || !mode.IsNumber()) continue;
      const double m = mode.As<Napi::Number>().DoubleValue();
      if (m != std::trunc(m) || m < 0 || m > 16) continue;
      choices.emplace_back(key.As<Napi::String>().Utf8Value(), static_cast<int>(m));
    }
    return Napi::Number::New(env, p2p::conv_set_choices(choices));
  });
}

Napi::Value ConvTunings(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(p2p::conv_tunings()));
  });
}

bool known_binary(int64_t op) {
  return (op >= p2p::kAdd && op <= p2p::kPow) || (op >= p2p::kGreater && op <= p2p::kNotEqual);
}

Napi::Value Binary(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "binary", 7);
    const int64_t op = a.integer(a[0], "op", 0, p2p::kNotEqual);
    a.check(known_binary(op), "op", "be a binary op code (0-7, 32-37)", static_cast<double>(op));
    // Shapes first: reading them may run JS (see Args::elements), taking data pointers does not.
    auto as = a.shape(a[2], "aShape", 8), bs = a.shape(a[4], "bShape", 8), os = a.shape(a[6], "outShape", 8);
    if (as.size() > os.size() || bs.size() > os.size())
      a.fail("aShape and bShape must not have more dims than outShape");
    for (size_t i = 0; i < os.size(); ++i) {
      const size_t ia = i + as.size(), ib = i + bs.size();
      const int64_t na = ia >= os.size() ? as[ia - os.size()] : 1, nb = ib >= os.size() ? bs[ib - os.size()] : 1;
      if ((na != 1 && na != os[i]) || (nb != 1 && nb != os[i]))
        a.fail("aShape and bShape do not broadcast to outShape");
    }
    const float* pa = a.f32(a[1], "a", a.count(as, "aShape"));
    const float* pb = a.f32(a[3], "b", a.count(bs, "bShape"));
    const size_t on = a.count(os, "outShape");
    // Comparisons write tfjs's bool bytes, the rest floats.
    void* out = op >= p2p::kGreater ? static_cast<void*>(a.u8(a[5], "out", on)) : a.f32(a[5], "out", on);
    p2p::binary(static_cast<int>(op), pa, as, pb, bs, out, os);
    return env.Undefined();
  });
}

Napi::Value Unary(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "unary", 5);
    const int op = static_cast<int>(a.integer(a[0], "op", p2p::kNeg, p2p::kRelu6));
    const float alpha = static_cast<float>(a.finite(a[1], "alpha"));
    const int64_t n = a.integer(a[4], "n", 0);
    p2p::unary(op, alpha, a.f32(a[2], "x", n), a.f32(a[3], "out", n), n);
    return env.Undefined();
  });
}

Napi::Value Select(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "select", 5);
    const int64_t n = a.integer(a[4], "n", 0);
    p2p::select(a.u8(a[0], "cond", n), a.f32(a[1], "a", n), a.f32(a[2], "b", n), a.f32(a[3], "out", n), n);
    return env.Undefined();
  });
}

Napi::Value Fill(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "fill", 3);
    const float value = static_cast<float>(a.number(a[1], "value"));  // NaN and +-Infinity are fill values too
    const int64_t n = a.integer(a[2], "n", 0);
    p2p::fill(a.f32(a[0], "out", n), value, n);
    return env.Undefined();
  });
}

Napi::Value AddN(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "addN", 3);
    const int64_t n = a.integer(a[2], "n", 0);
    auto els = a.elements(a[0], "xs", UINT32_MAX);
    if (els.empty()) a.range_fail("xs", "have at least 1 element", "0");
    std::vector<const float*> xs;
    for (size_t i = 0; i < els.size(); ++i) xs.push_back(a.f32(els[i], "xs[" + std::to_string(i) + "]", n));
    p2p::add_n(xs, a.f32(a[1], "out", n), n);
    return env.Undefined();
  });
}

Napi::Value ReduceSum(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "reduceSum", 6);
    const int64_t outer = a.integer(a[1], "outer", 0);
    const int64_t r = a.integer(a[2], "r", 0);
    const int64_t inner = a.integer(a[3], "inner", 0);
    const bool mean = a.boolean(a[5], "mean");
    p2p::reduce_sum(a.f32(a[0], "x", a.count({outer, r, inner}, "[outer, r, inner]")), outer, r, inner,
                    a.f32(a[4], "out", a.count({outer, inner}, "[outer, inner]")), mean);
    return env.Undefined();
  });
}

Napi::Value ConcatRows(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "concatRows", 4);
    auto els = a.elements(a[0], "xs", UINT32_MAX);
    auto widths = a.shape(a[1], "widths", UINT32_MAX);
    if (els.empty()) a.range_fail("xs", "have at least 1 element", "0");
    if (widths.size() != els.size()) a.fail("xs and widths must have the same length");
    const int64_t rows = a.integer(a[2], "rows", 0);
    std::vector<const float*> xs;
    std::vector<int64_t> total{rows, 0};
    for (size_t i = 0; i < els.size(); ++i) {
      const std::string what = "xs[" + std::to_string(i) + "]";
      xs.push_back(a.f32(els[i], what, a.count({rows, widths[i]}, what)));
      if (__builtin_add_overflow(total[1], widths[i], &total[1])) a.fail("widths sum too large");
    }
    p2p::concat_rows(xs, widths, rows, a.f32(a[3], "out", a.count(total, "out [rows, sum of widths]")));
    return env.Undefined();
  });
}

Napi::Value CopyBox(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "copyBox", 7);
    constexpr uint32_t kMaxRank = 64;
    auto ss = a.shape(a[1], "srcShape", kMaxRank), sb = a.shape(a[2], "srcBegin", kMaxRank);
    auto ds = a.shape(a[4], "dstShape", kMaxRank), db = a.shape(a[5], "dstBegin", kMaxRank);
    auto box = a.shape(a[6], "box", kMaxRank);
    const size_t r = box.size();
    if (ss.size() != r || sb.size() != r || ds.size() != r || db.size() != r)
      a.fail("srcShape, srcBegin, dstShape, dstBegin and box must have the same length");
    for (size_t i = 0; i < r; ++i) {
      if (sb[i] + box[i] > ss[i] || db[i] + box[i] > ds[i]) a.fail("box out of bounds in dim " + std::to_string(i));
    }
    p2p::copy_box(a.f32(a[0], "src", a.count(ss, "srcShape")), ss, sb, a.f32(a[3], "dst", a.count(ds, "dstShape")),
                  ds, db, box);
    return env.Undefined();
  });
}

Napi::Value Adam(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "adam", 10);
    const int64_t n = a.integer(a[4], "n", 0);
    // PyTorch's own checks on Adam's hyper-parameters; beta 1 or step 0 make a bias correction
    // 1 - beta^t of 0, whose division writes Inf/NaN into every weight.
    const double lr = a.finite(a[5], "lr");
    a.check(lr >= 0.0, "lr", "be >= 0", lr);
    const double beta1 = a.finite(a[6], "beta1");
    a.check(beta1 >= 0.0 && beta1 < 1.0, "beta1", "be in [0, 1)", beta1);
    const double beta2 = a.finite(a[7], "beta2");
    a.check(beta2 >= 0.0 && beta2 < 1.0, "beta2", "be in [0, 1)", beta2);
    const double eps = a.finite(a[8], "epsilon");
    a.check(eps >= 0.0, "epsilon", "be >= 0", eps);
    const int64_t step = a.integer(a[9], "step", 1);
    p2p::adam(a.f32(a[0], "w", n), a.f32(a[1], "g", n), a.f32(a[2], "m", n), a.f32(a[3], "v", n), n, lr, beta1, beta2,
              eps, static_cast<double>(step));
    return env.Undefined();
  });
}

// n, hw, c of the instance-norm kernels; hw >= 1 since the means divide by it.
void norm_dims(const Args& a, size_t i, int64_t* n, int64_t* hw, int64_t* c, size_t* nhwc, size_t* nc) {
  *n = a.integer(a[i], "n", 0);
  *hw = a.integer(a[i + 1], "hw", 1);
  *c = a.integer(a[i + 2], "c", 0);
  *nhwc = a.count({*n, *hw, *c}, "[n, hw, c]");
  *nc = a.count({*n, *c}, "[n, c]");
}

Napi::Value InormActForward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "inormActForward", 8);
    int64_t n, hw, c;
    size_t nhwc, nc;
    norm_dims(a, 1, &n, &hw, &c, &nhwc, &nc);
    const double eps = a.finite(a[4], "epsilon");
    a.check(eps >= 0.0, "epsilon", "be >= 0", eps);
    float alpha;
    const bool has_alpha = norm_alpha(a, a[5], &alpha);
    p2p::inorm_act_forward(a.f32(a[0], "z", nhwc), n, hw, c, static_cast<float>(eps), has_alpha, alpha,
                           a.f32(a[6], "h", nhwc), a.f32(a[7], "rs", nc));
    return env.Undefined();
  });
}

Napi::Value InormActBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "inormActBackward", 8);
    int64_t n, hw, c;
    size_t nhwc, nc;
    norm_dims(a, 3, &n, &hw, &c, &nhwc, &nc);
    float alpha;
    const bool has_alpha = norm_alpha(a, a[6], &alpha);
    p2p::inorm_act_backward(a.f32(a[0], "g", nhwc), a.f32(a[1], "h", nhwc), a.f32(a[2], "rs", nc), n, hw, c, has_alpha,
                            alpha, a.f32(a[7], "dz", nhwc));
    return env.Undefined();
  });
}

Napi::Value LeakyBackward(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "leakyBackward", 5);
    const int64_t n = a.integer(a[2], "n", 0);
    const double alpha = a.finite(a[3], "alpha");
    a.check(alpha > 0.0, "alpha", "be > 0", alpha);
    p2p::leaky_backward(a.f32(a[0], "g", n), a.f32(a[1], "h", n), n, static_cast<float>(alpha),
                        a.f32(a[4], "dz", n));
    return env.Undefined();
  });
}

// Asks the kernel for 2 MiB pages under the 2 MiB-aligned part of x (transparent huge pages in
// "madvise" mode, as on Debian): one fault per 2 MiB instead of 512, and fewer TLB misses on the
// weights. Returns whether the kernel took the advice (false: nothing aligned inside, or no THP).
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "adviseHugePages", 2);
    const int64_t n = a.integer(a[1], "n", 0);
    const uintptr_t p = reinterpret_cast<uintptr_t>(a.f32(a[0], "x", static_cast<size_t>(n)));
    constexpr uintptr_t kHuge = uintptr_t{1} << 21;
    const uintptr_t start = (p + kHuge - 1) & ~(kHuge - 1);
    const uintptr_t end = (p + static_cast<uintptr_t>(n) * sizeof(float)) & ~(kHuge - 1);
    const bool ok = end > start && madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE) == 0;
    return Napi::Boolean::New(env, ok);
  });
}

Napi::Value Peak(const Napi::CallbackInfo& info) {
  return guarded(info, [&](Napi::Env env) -> Napi::Value {
    Args a(info, "peak", 1);
    // Bounded: the loop doubles until one run lasts this long, and each thread is an OS thread.
    const double seconds = a.finite(a[0], "secondsEach");
    a.check(seconds > 0.0 && seconds <= 60.0, "secondsEach", "be in (0, 60]", seconds);
    const bool has_threads = a.length() > 1 && !a[1].IsUndefined();
    const int threads = has_threads ? static_cast<int>(a.integer(a[1], "threads", 0, 1024)) : 0;
    auto r = p2p::measure_peak(seconds, threads);
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
  exports.Set("convForgetWeights", Napi::Function::New(env, ConvForgetWeights));
  exports.Set("convKeptWeightBytes", Napi::Function::New(env, ConvKeptWeightBytes));
  exports.Set("convImpl", Napi::Function::New(env, ConvImpl));
  exports.Set("convRelease", Napi::Function::New(env, ConvRelease));
  exports.Set("convChoices", Napi::Function::New(env, ConvChoices));
  exports.Set("setConvChoices", Napi::Function::New(env, SetConvChoices));
  exports.Set("convTunings", Napi::Function::New(env, ConvTunings));
  exports.Set("binary", Napi::Function::New(env, Binary));
  exports.Set("unary", Napi::Function::New(env, Unary));
  exports.Set("select", Napi::Function::New(env, Select));
  exports.Set("fill", Napi::Function::New(env, Fill));
  exports.Set("addN", Napi::Function::New(env, AddN));
  exports.Set("reduceSum", Napi::Function::New(env, ReduceSum));
  exports.Set("copyBox", Napi::Function::New(env, CopyBox));
  exports.Set("concatRows", Napi::Function::New(env, ConcatRows));
  exports.Set("adam", Napi::Function::New(env, Adam));
  exports.Set("inormActForward", Napi::Function::New(env, InormActForward));
  exports.Set("inormActBackward", Napi::Function::New(env, InormActBackward));
  exports.Set("leakyBackward", Napi::Function::New(env, LeakyBackward));
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages));
  exports.Set("peak", Napi::Function::New(env, Peak));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace

NODE_API_MODULE(pix2pix_native, Init)
