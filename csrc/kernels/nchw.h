// nchw.h: a 4-d (N, C, H, W) view seen as N*C planes of H x W elements, shared by the
// pooling and resize kernels.
#pragma once
#include <algorithm>
#include <cstdint>

#include "core/attrs.h"
#include "core/tensor_view.h"

namespace fw {

// The graph runtime's channel-blocked layout nchw16c (runtime/layout.h): channels per block,
// and the layout attribute it appends at #idx after an op's own attributes (absent in eager
// calls: 0, plain NCHW).
constexpr int64_t kNchwBlock = 16;
inline int64_t layout_attr(const Attrs& a, size_t idx) { return a.size() > idx ? a.i(idx) : 0; }

// A pooling window: kernel, stride, padding, dilation (each h, w).
struct Window {
  int64_t kh, kw, sh, sw, ph, pw, dh = 1, dw = 1;
};

// The window in attributes #first.. (kernel, stride, padding [, dilation]: 2 ints each),
// checked (kernels/pool.cpp): positive kernel, stride and dilation, padding at most half the
// kernel, each at most 2^24. Errors name `op`.
Window read_window(const Attrs& a, size_t first, bool dilation, const char* op);

// ATen's pooling_output_shape (as framework/ops/pool.py's _pool_out): the output size of a
// window over n input rows (or columns).
int64_t pool_out_size(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode);

// That an H x W input pooled by w gives Ho x Wo (torch's output shape): a model file states
// its output shapes, and a stated size that does not follow from the window (a few input rows
// pooled into 65538 output rows, each scanning them all) is an error, not a long loop.
void check_pool_output(const char* op, const Window& w, bool ceil_mode, int64_t H, int64_t W, int64_t Ho, int64_t Wo);

struct Planes {
  int64_t N, C, H, W, sn, sc, sh, sw;
  Planes(const TensorView& v, const char* op) {
    FW_CHECK(v.ndim == 4, op, ": expected a 4-d (N, C, H, W) tensor, got ", v.ndim, "-d");
    N = v.shape[0];
    C = v.shape[1];
    H = v.shape[2];
    W = v.shape[3];
    sn = v.strides[0];
    sc = v.strides[1];
    sh = v.strides[2];
    sw = v.strides[3];
  }
  int64_t count() const { return N * C; }
  // Offset (in elements) of plane p = n * C + c.
  int64_t offset(int64_t p) const { return (p / std::max<int64_t>(C, 1)) * sn + (p % std::max<int64_t>(C, 1)) * sc; }
};

}  // namespace fw
