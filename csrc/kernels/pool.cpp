// pool.cpp: 2-D pooling over NCHW tensors (max_pool2d with indices, avg_pool2d,
// adaptive_avg_pool2d) and their backward computations. Inputs may be strided; outputs and
// gradients are contiguous. Work is split over the N*C planes, so a backward scatter never
// races (each plane is written by one thread). Window rules follow ATen's CPU kernels.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

#include "core/parallel.h"
#include "kernels/nchw.h"
#include "kernels/registry.h"

namespace fw {
namespace {

struct Window {  // kernel, stride, padding, dilation (each h, w)
  int64_t kh, kw, sh, sw, ph, pw, dh = 1, dw = 1;
};

Window read_window(const Attrs& a, size_t first, bool dilation, const char* op) {
  const auto &k = a.ints(first), &s = a.ints(first + 1), &p = a.ints(first + 2);
  FW_CHECK(k.size() == 2 && s.size() == 2 && p.size() == 2, op, ": kernel/stride/padding need 2 ints");
  Window w{k[0], k[1], s[0], s[1], p[0], p[1]};
  if (dilation) {
    const auto& d = a.ints(first + 3);
    FW_CHECK(d.size() == 2 && d[0] > 0 && d[1] > 0, op, ": dilation needs 2 positive ints");
    w.dh = d[0];
    w.dw = d[1];
  }
  FW_CHECK(w.kh > 0 && w.kw > 0 && w.sh > 0 && w.sw > 0 && w.ph >= 0 && w.pw >= 0, op,
           ": kernel and stride must be positive, padding non-negative");
  // As torch; also keeps the window loops short and free of overflow for crafted attributes.
  FW_CHECK(w.ph <= w.kh / 2 && w.pw <= w.kw / 2, op, ": padding must be at most half the kernel size");
  constexpr int64_t kMax = int64_t(1) << 24;
  FW_CHECK(w.kh <= kMax && w.kw <= kMax && w.sh <= kMax && w.sw <= kMax && w.dh <= kMax && w.dw <= kMax, op,
           ": kernel, stride or dilation too large");
  return w;
}

void check_pair(const char* op, const Planes& in, const Planes& out) {
  FW_CHECK(in.N == out.N && in.C == out.C, op, ": batch/channels of input (", in.N, ", ", in.C,
           ") and output (", out.N, ", ", out.C, ") differ");
}

// ---- max_pool2d ----------------------------------------------------------------------

// Calls f(index, flat_index_in_plane) for every in-bounds element of window (oh, ow).
template <class F>
inline void for_window(const Window& w, int64_t H, int64_t W, int64_t oh, int64_t ow, F&& f) {
  int64_t h0 = oh * w.sh - w.ph, w0 = ow * w.sw - w.pw;
  int64_t h1 = std::min(h0 + (w.kh - 1) * w.dh + 1, H), w1 = std::min(w0 + (w.kw - 1) * w.dw + 1, W);
  while (h0 < 0) h0 += w.dh;
  while (w0 < 0) w0 += w.dw;
  for (int64_t ih = h0; ih < h1; ih += w.dh)
    for (int64_t iw = w0; iw < w1; iw += w.dw) f(ih, iw);
}

// max_pool2d(x; kernel=#0, stride=#1, padding=#2, dilation=#3, ceil_mode=#4) -> (y, indices)
template <class T>
void max_pool2d_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  TensorView &y = k.output(0), &idx = k.output(1);
  Window w = read_window(*k.attrs, 0, true, "max_pool2d");
  Planes in(x, "max_pool2d"), out(y, "max_pool2d");
  check_pair("max_pool2d", in, out);
  FW_CHECK(y.is_contiguous() && idx.is_contiguous() && idx.numel() == y.numel(), "max_pool2d: bad outputs");
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  int64_t* ip = idx.ptr<int64_t>();
  const int64_t Ho = out.H, Wo = out.W;
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xpl = xp + in.offset(p);
      for (int64_t oh = 0; oh < Ho; ++oh) {
        for (int64_t ow = 0; ow < Wo; ++ow) {
          int64_t h0 = oh * w.sh - w.ph, w0 = ow * w.sw - w.pw;
          while (h0 < 0) h0 += w.dh;
          while (w0 < 0) w0 += w.dw;
          T best = -std::numeric_limits<T>::infinity();
          int64_t bi = h0 * in.W + w0;
          for_window(w, in.H, in.W, oh, ow, [&](int64_t ih, int64_t iw) {
            T v = xpl[ih * in.sh + iw * in.sw];
            if (v > best || std::isnan(v)) {
              best = v;
              bi = ih * in.W + iw;
            }
          });
          yp[(p * Ho + oh) * Wo + ow] = best;
          ip[(p * Ho + oh) * Wo + ow] = bi;
        }
      }
    }
  });
}

// max_pool2d_backward(grad_output, indices; input_size=#0) -> grad_input (scatter-add).
template <class T>
void max_pool2d_backward_k(const KernelArgs& k) {
  const TensorView &go = k.input(0), &idx = k.input(1);
  TensorView& gi = k.output(0);
  Planes in(gi, "max_pool2d_backward"), out(go, "max_pool2d_backward");
  check_pair("max_pool2d_backward", in, out);
  FW_CHECK(go.numel() == 0 || (go.is_contiguous() && idx.is_contiguous() && gi.is_contiguous()), "max_pool2d_backward: operands must be contiguous");
  FW_CHECK(idx.numel() == go.numel(),
           "max_pool2d_backward: indices must be shaped like grad_output");
  FW_CHECK(idx.dtype == DType::i64, "max_pool2d_backward: indices must be int64");
  const T* gp = go.ptr<T>();
  const int64_t* ip = idx.ptr<int64_t>();
  T* gip = gi.ptr<T>();
  const int64_t HW = in.H * in.W, HoWo = out.H * out.W;
  std::atomic<bool> bad{false};
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* dst = gip + p * HW;
      std::fill(dst, dst + HW, T(0));
      for (int64_t o = p * HoWo; o < (p + 1) * HoWo; ++o) {
        int64_t i = ip[o];
        if (i < 0 || i >= HW) {
          bad.store(true, std::memory_order_relaxed);
          continue;
        }
        dst[i] += gp[o];
      }
    }
  });
  FW_CHECK(!bad.load(), "max_pool2d_backward: an index is outside the ", in.H, "x", in.W, " input plane");
}

// ---- avg_pool2d ----------------------------------------------------------------------

struct AvgWindow {
  int64_t h0, h1, w0, w1;  // clipped to the input
  double divisor;
  bool empty;
};

inline AvgWindow avg_window(const Window& w, int64_t H, int64_t W, int64_t oh, int64_t ow,
                            bool include_pad, int64_t divisor_override) {
  AvgWindow a;
  a.h0 = oh * w.sh - w.ph;
  a.w0 = ow * w.sw - w.pw;
  a.h1 = std::min(a.h0 + w.kh, H + w.ph);
  a.w1 = std::min(a.w0 + w.kw, W + w.pw);
  const int64_t pool_size = (a.h1 - a.h0) * (a.w1 - a.w0);
  a.h0 = std::max<int64_t>(a.h0, 0);
  a.w0 = std::max<int64_t>(a.w0, 0);
  a.h1 = std::min(a.h1, H);
  a.w1 = std::min(a.w1, W);
  a.empty = a.h0 >= a.h1 || a.w0 >= a.w1;
  if (divisor_override > 0) a.divisor = double(divisor_override);
  else if (include_pad) a.divisor = double(pool_size);
  else a.divisor = double((a.h1 - a.h0) * (a.w1 - a.w0));
  return a;
}

int64_t read_divisor(const Attrs& a, size_t i) {
  if (a.is_none(i)) return 0;
  int64_t d = a.i(i);
  FW_CHECK(d != 0, "avg_pool2d: divisor must be not zero");
  return d;
}

// avg_pool2d(x; kernel=#0, stride=#1, padding=#2, ceil_mode=#3, count_include_pad=#4,
// divisor_override=#5 or None)
template <class T>
void avg_pool2d_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  TensorView& y = k.output(0);
  Window w = read_window(*k.attrs, 0, false, "avg_pool2d");
  const bool include_pad = k.attrs->i(4) != 0;
  const int64_t div = read_divisor(*k.attrs, 5);
  Planes in(x, "avg_pool2d"), out(y, "avg_pool2d");
  check_pair("avg_pool2d", in, out);
  FW_CHECK(y.is_contiguous(), "avg_pool2d: output must be contiguous");
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xpl = xp + in.offset(p);
      T* ypl = yp + p * out.H * out.W;
      for (int64_t oh = 0; oh < out.H; ++oh) {
        for (int64_t ow = 0; ow < out.W; ++ow) {
          AvgWindow a = avg_window(w, in.H, in.W, oh, ow, include_pad, div);
          T s = T(0);
          if (!a.empty)
            for (int64_t ih = a.h0; ih < a.h1; ++ih)
              for (int64_t iw = a.w0; iw < a.w1; ++iw) s += xpl[ih * in.sh + iw * in.sw];
          ypl[oh * out.W + ow] = a.empty ? T(0) : T(s / T(a.divisor));
        }
      }
    }
  });
}

// avg_pool2d_backward(grad_output; input_size=#0, kernel=#1, stride=#2, padding=#3,
// ceil_mode=#4, count_include_pad=#5, divisor_override=#6) -> grad_input
template <class T>
void avg_pool2d_backward_k(const KernelArgs& k) {
  const TensorView& go = k.input(0);
  TensorView& gi = k.output(0);
  Window w = read_window(*k.attrs, 1, false, "avg_pool2d_backward");
  const bool include_pad = k.attrs->i(5) != 0;
  const int64_t div = read_divisor(*k.attrs, 6);
  Planes in(gi, "avg_pool2d_backward"), out(go, "avg_pool2d_backward");
  check_pair("avg_pool2d_backward", in, out);
  FW_CHECK(gi.is_contiguous(), "avg_pool2d_backward: grad_input must be contiguous");
  const T* gp = go.ptr<T>();
  T* gip = gi.ptr<T>();
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* gpl = gp + out.offset(p);
      T* dst = gip + p * in.H * in.W;
      std::fill(dst, dst + in.H * in.W, T(0));
      for (int64_t oh = 0; oh < out.H; ++oh) {
        for (int64_t ow = 0; ow < out.W; ++ow) {
          AvgWindow a = avg_window(w, in.H, in.W, oh, ow, include_pad, div);
          if (a.empty) continue;
          const T v = gpl[oh * out.sh + ow * out.sw] / T(a.divisor);
          for (int64_t ih = a.h0; ih < a.h1; ++ih)
            for (int64_t iw = a.w0; iw < a.w1; ++iw) dst[ih * in.W + iw] += v;
        }
      }
    }
  });
}

// ---- adaptive_avg_pool2d -------------------------------------------------------------

inline int64_t start_index(int64_t o, int64_t out, int64_t in) { return (o * in) / out; }
inline int64_t end_index(int64_t o, int64_t out, int64_t in) { return ((o + 1) * in + out - 1) / out; }

// adaptive_avg_pool2d(x; output_size=#0); the output view carries the size.
template <class T>
void adaptive_avg_pool2d_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  TensorView& y = k.output(0);
  Planes in(x, "adaptive_avg_pool2d"), out(y, "adaptive_avg_pool2d");
  check_pair("adaptive_avg_pool2d", in, out);
  FW_CHECK(y.is_contiguous(), "adaptive_avg_pool2d: output must be contiguous");
  FW_CHECK(y.numel() == 0 || (in.H > 0 && in.W > 0), "adaptive_avg_pool2d: empty input plane");
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xpl = xp + in.offset(p);
      for (int64_t oh = 0; oh < out.H; ++oh) {
        const int64_t h0 = start_index(oh, out.H, in.H), h1 = end_index(oh, out.H, in.H);
        for (int64_t ow = 0; ow < out.W; ++ow) {
          const int64_t w0 = start_index(ow, out.W, in.W), w1 = end_index(ow, out.W, in.W);
          T s = T(0);
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) s += xpl[ih * in.sh + iw * in.sw];
          yp[(p * out.H + oh) * out.W + ow] = s / T((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

// adaptive_avg_pool2d_backward(grad_output; input_size=#0) -> grad_input
template <class T>
void adaptive_avg_pool2d_backward_k(const KernelArgs& k) {
  const TensorView& go = k.input(0);
  TensorView& gi = k.output(0);
  Planes in(gi, "adaptive_avg_pool2d_backward"), out(go, "adaptive_avg_pool2d_backward");
  check_pair("adaptive_avg_pool2d_backward", in, out);
  FW_CHECK(gi.is_contiguous(), "adaptive_avg_pool2d_backward: grad_input must be contiguous");
  const T* gp = go.ptr<T>();
  T* gip = gi.ptr<T>();
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* gpl = gp + out.offset(p);
      T* dst = gip + p * in.H * in.W;
      std::fill(dst, dst + in.H * in.W, T(0));
      for (int64_t oh = 0; oh < out.H; ++oh) {
        const int64_t h0 = start_index(oh, out.H, in.H), h1 = end_index(oh, out.H, in.H);
        for (int64_t ow = 0; ow < out.W; ++ow) {
          const int64_t w0 = start_index(ow, out.W, in.W), w1 = end_index(ow, out.W, in.W);
          const T v = gpl[oh * out.sh + ow * out.sw] / T((h1 - h0) * (w1 - w0));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) dst[ih * in.W + iw] += v;
        }
      }
    }
  });
}

}  // namespace

FW_REGISTER_KERNELS(pool) {
  register_kernel("max_pool2d", DType::f32, &max_pool2d_k<float>);
  register_kernel("max_pool2d", DType::f64, &max_pool2d_k<double>);
  register_kernel("max_pool2d_backward", DType::f32, &max_pool2d_backward_k<float>);
  register_kernel("max_pool2d_backward", DType::f64, &max_pool2d_backward_k<double>);
  register_kernel("avg_pool2d", DType::f32, &avg_pool2d_k<float>);
  register_kernel("avg_pool2d", DType::f64, &avg_pool2d_k<double>);
  register_kernel("avg_pool2d_backward", DType::f32, &avg_pool2d_backward_k<float>);
  register_kernel("avg_pool2d_backward", DType::f64, &avg_pool2d_backward_k<double>);
  register_kernel("adaptive_avg_pool2d", DType::f32, &adaptive_avg_pool2d_k<float>);
  register_kernel("adaptive_avg_pool2d", DType::f64, &adaptive_avg_pool2d_k<double>);
  register_kernel("adaptive_avg_pool2d_backward", DType::f32, &adaptive_avg_pool2d_backward_k<float>);
  register_kernel("adaptive_avg_pool2d_backward", DType::f64, &adaptive_avg_pool2d_backward_k<double>);
}

}  // namespace fw
