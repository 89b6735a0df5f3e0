#pragma once
#include <cstdint>

namespace p2p {

void vec_exp(const float* x, float* o, int64_t n);
void vec_log(const float* x, float* o, int64_t n);
void vec_log1p(const float* x, float* o, int64_t n);
void vec_tanh(const float* x, float* o, int64_t n);
void vec_sigmoid(const float* x, float* o, int64_t n);

}  // namespace p2p
