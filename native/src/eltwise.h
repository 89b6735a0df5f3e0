#pragma once
#include <cstdint>
#include <vector>

namespace p2p {

// Op codes shared with src/backend/native-ops.ts (keep in sync).
enum BinaryOp : int {
  kAdd = 0, kSub, kMul, kDiv, kMax, kMin, kSqDiff, kPow,
  kGreater = 32, kGreaterEq, kLess, kLessEq, kEqual, kNotEqual
};
enum UnaryOp : int {
  kNeg = 0, kSquare, kSqrt, kRsqrt, kAbs, kExp, kLog, kLog1p, kTanh, kSigmoid, kRelu, kLeakyRelu, kStep,
  kSign, kReciprocal, kSoftplus, kElu, kRelu6
};

// out = a (op) b with numpy broadcasting; shapes are right-aligned to out's rank by the caller.
void binary(int op, const float* a, const std::vector<int64_t>& ashape, const float* b,
            const std::vector<int64_t>& bshape, void* out, const std::vector<int64_t>& oshape);
void unary(int op, float alpha, const float* x, float* out, int64_t n);
void select(const uint8_t* cond, const float* a, const float* b, float* out, int64_t n);
void fill(float* out, float value, int64_t n);
void add_n(const std::vector<const float*>& xs, float* out, int64_t n);
// Sum (or mean) of x viewed as [outer, r, inner] over r.
void reduce_sum(const float* x, int64_t outer, int64_t r, int64_t inner, float* out, bool mean);
// Copies the box `box` at `src_begin` of src into dst at `dst_begin` (slice, pad and concat are all this).
// out row r = [xs[0] row r, xs[1] row r, ...], row r of xs[i] being its widths[i] elements from r *
// widths[i]: a concat along an axis, with `rows` the product of the dims before it. One pass over out.
void concat_rows(const std::vector<const float*>& xs, const std::vector<int64_t>& widths, int64_t rows, float* out);
void copy_box(const float* src, const std::vector<int64_t>& sshape, const std::vector<int64_t>& sbegin, float* dst,
              const std::vector<int64_t>& dshape, const std::vector<int64_t>& dbegin, const std::vector<int64_t>& box);
// PyTorch's Adam, in place, one pass.
void adam(float* w, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
          double epsilon, double t);

}  // namespace p2p

namespace p2p {

// Instance norm over the spatial positions of each sample and channel ([n, hw, c], NHWC), then
// LeakyReLU(alpha) where has_alpha: h = act((z - mean) * rs), rs = 1 / sqrt(var + eps) ([n, c]).
void inorm_act_forward(const float* z, int64_t n, int64_t hw, int64_t c, float eps, bool has_alpha, float alpha,
                       float* h, float* rs);
// Its gradient from the saved output h: y = act^-1(h), g' = g * act'(y), and
// dz = (g' - mean(g') - y * mean(g' y)) * rs, means over hw.
void inorm_act_backward(const float* g, const float* h, const float* rs, int64_t n, int64_t hw, int64_t c,
                        bool has_alpha, float alpha, float* dz);
// LeakyReLU's gradient from its output h (alpha > 0 keeps the sign): dz = g * (h > 0 ? 1 : alpha).
void leaky_backward(const float* g, const float* h, int64_t n, float alpha, float* dz);

}  // namespace p2p
