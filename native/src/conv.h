#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace p2p {

// One 2-D convolution as tfjs describes it: activations NHWC, filter HWIO ([kh, kw, in, out]).
// Pads are tfjs's top/left; the bottom/right pads oneDNN needs are derived from the output size,
// which is what tfjs's own loops do too when a pad does not divide evenly.
struct ConvShape {
  int64_t n, ih, iw, ic, oh, ow, oc, kh, kw, sh, sw, pt, pl, dh, dw;
};

// Where oneDNN may choose its own memory layouts. Plain NHWC/HWIO is what tfjs holds; the blocked
// layouts oneDNN prefers cost a reorder at the kernel boundary but its blocked kernels are often
// faster. Auto times the candidates on a shape's first call (see `tuned` in conv.cc); the
// environment variable P2P_CONV_LAYOUT=1|2|3 forces one mode everywhere.
enum LayoutMode : int {
  kLayoutAuto = 0,
  kLayoutPlain = 1,
  kLayoutBlocked = 2,
  kLayoutPlainActAnyWei = 3,
  // Backward-data only (other passes run it as plain): one GEMM W x dy^T then a col2im gather.
  // oneDNN's own GEMM-based backward-data is 5x slower on the UNet's small deep maps (a 16-row
  // dy against 8 M weights), where this orientation streams the weights once.
  kLayoutGemmCol2im = 4,
};

// `weights_id` > 0 says the filter is constant under that id until conv_forget_weights(id) (a model
// in inference): the reorder into the primitive's weight layout then runs once and its result is kept,
// and the layout is chosen for that (a blocked layout whose weight reorder would cost more than it
// saves on every call is often the fastest once the reorder is paid once, as in an inference graph).
// 0: the filter may change between calls (training), and is reordered on each one where needed.
void conv_forward(const ConvShape& s, const float* x, const float* w, const float* bias, float* y, int mode,
                  int64_t weights_id = 0);
void conv_backward_data(const ConvShape& s, const float* dy, const float* w, float* dx, int mode,
                        int64_t weights_id = 0);
// Drops the reordered copies kept for `weights_id` (its filter changed or was freed).
void conv_forget_weights(int64_t weights_id);
// Bytes of reordered filter copies kept (for tests and the bench).
int64_t conv_kept_weight_bytes();
void conv_backward_weights(const ConvShape& s, const float* x, const float* dy, float* dw, int mode);

// The oneDNN implementation each pass picked for this shape (its verbose name), for the bench.
std::string conv_impl_names(const ConvShape& s, int mode);
// Drops cached primitives and scratch buffers (tests, and the bench between configurations).
void conv_release();

// The layout choices made so far, as (key, mode) pairs: what a later process may start from instead
// of timing the candidates again (src/backend/layout-cache.ts keeps them on disk).
std::vector<std::pair<std::string, int>> conv_choices();
// Adds choices another process made; a key already chosen here, a malformed key or a mode that is
// not a candidate for its pass is skipped. Returns how many were taken.
int conv_set_choices(const std::vector<std::pair<std::string, int>>& choices);
// How many (pass, shape) choices this process has timed itself.
int64_t conv_tunings();

}  // namespace p2p
