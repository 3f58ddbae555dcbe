// resize.cpp: ops that change spatial sizes by resampling or extending: interpolate
// (nearest, bilinear over NCHW) and pad (constant over any dims, reflect, replicate), with
// their backward computations (scatter-adds, the adjoints of the forward gathers).
// Inputs may be strided; outputs are contiguous. Index rules follow ATen's CPU kernels.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "kernels/nchw.h"
#include "kernels/registry.h"

namespace fw {
namespace {

// ---- pad -----------------------------------------------------------------------------

enum class PadMode { constant, reflect, replicate };

PadMode pad_mode(const std::string& s) {
  if (s == "constant") return PadMode::constant;
  if (s == "reflect") return PadMode::reflect;
  if (s == "replicate") return PadMode::replicate;
  fail("pad: unsupported mode '", s, "'");
}

// Source index along a dim of size n for output index o with `lo` leading pad; -1 = fill.
inline int64_t pad_source(int64_t o, int64_t lo, int64_t n, PadMode m) {
  int64_t i = o - lo;
  if (i >= 0 && i < n) return i;
  switch (m) {
    case PadMode::constant:
      return -1;
    case PadMode::replicate:
      return i < 0 ? 0 : n - 1;
    case PadMode::reflect:
      return i < 0 ? -i : 2 * (n - 1) - i;
  }
  return -1;
}

struct PadPlan {
  int nd;
  PadMode mode;
  std::vector<int64_t> lo, in_shape, out_shape, in_strides, out_strides;
  std::vector<std::vector<int64_t>> src;  // per dim: source index of each output index

  // `small` is the unpadded tensor (input of pad, grad_input of its backward), `big` the padded.
  PadPlan(const TensorView& small, const TensorView& big, const Attrs& a, const char* op) {
    nd = small.ndim;
    mode = pad_mode(a.str(1));
    const auto& pads = a.ints(0);
    FW_CHECK(big.ndim == nd && int(pads.size()) == 2 * nd, op, ": expected ", 2 * nd, " pad values for a ",
             nd, "-d tensor, got ", pads.size());
    src.resize(size_t(nd));
    for (int d = 0; d < nd; ++d) {
      const int64_t l = pads[size_t(2 * d)], h = pads[size_t(2 * d + 1)], n = small.shape[d];
      int64_t want = 0;
      FW_CHECK(!__builtin_add_overflow(n, l, &want) && !__builtin_add_overflow(want, h, &want), op,
               ": padding (", l, ", ", h, ") at dim ", d, " is too large");
      FW_CHECK(big.shape[d] == want, op, ": dim ", d, " has size ", big.shape[d], ", expected ", n + l + h);
      if (mode != PadMode::constant && big.shape[d] > 0) {
        FW_CHECK(n > 0, op, ": cannot pad an empty dim ", d, " in ", a.str(1), " mode");
        FW_CHECK(l >= 0 && h >= 0, op, ": negative padding needs mode 'constant'");
        if (mode == PadMode::reflect)
          FW_CHECK(l < n && h < n, op, ": padding (", l, ", ", h, ") at dim ", d,
                   " should be less than the input size ", n);
      }
      lo.push_back(l);
      in_shape.push_back(n);
      out_shape.push_back(big.shape[d]);
      in_strides.push_back(small.strides[d]);
      out_strides.push_back(big.strides[d]);
      auto& s = src[size_t(d)];
      s.resize(size_t(big.shape[d]));
      for (int64_t o = 0; o < big.shape[d]; ++o) s[size_t(o)] = pad_source(o, l, n, mode);
    }
  }
  int64_t rows() const {
    int64_t r = 1;
    for (int d = 0; d + 1 < nd; ++d) r *= out_shape[size_t(d)];
    return r;
  }
  // Offsets of padded row r (all dims but the last) in the big and small tensors; false
  // when the row lies in constant padding.
  bool row(int64_t r, int64_t& big_off, int64_t& small_off) const {
    big_off = 0;
    small_off = 0;
    bool inside = true;
    for (int d = nd - 2; d >= 0; --d) {
      const int64_t o = r % out_shape[size_t(d)];
      r /= out_shape[size_t(d)];
      big_off += o * out_strides[size_t(d)];
      const int64_t s = src[size_t(d)][size_t(o)];
      if (s < 0) inside = false;
      else small_off += s * in_strides[size_t(d)];
    }
    return inside;
  }
};

// pad(x; pads=#0 (lo, hi per dim, dim order), mode=#1, value=#2)
template <class T>
void pad_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  TensorView& y = k.output(0);
  FW_CHECK(y.is_contiguous(), "pad: output must be contiguous");
  const T value = k.attrs->scalar<T>(2);
  if (x.ndim == 0) {
    FW_CHECK(y.numel() == 1, "pad: a 0-d tensor has nothing to pad");
    y.ptr<T>()[0] = x.ptr<T>()[0];
    return;
  }
  PadPlan plan(x, y, *k.attrs, "pad");
  if (y.numel() == 0) return;
  const int64_t Wo = plan.out_shape.back(), xs = plan.in_strides.back();
  const auto& last = plan.src.back();
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  parallel_for(plan.rows(), std::max<int64_t>(1, 4096 / std::max<int64_t>(Wo, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      int64_t yo, xo;
      T* dst = yp + r * Wo;
      if (!plan.row(r, yo, xo)) {
        std::fill(dst, dst + Wo, value);
        continue;
      }
      for (int64_t o = 0; o < Wo; ++o) {
        const int64_t s = last[size_t(o)];
        dst[o] = s < 0 ? value : xp[xo + s * xs];
      }
    }
  });
}

// pad_backward(grad_output; pads=#0, mode=#1, input_size=#2) -> grad_input: each input element
// receives the sum of the gradients of the output elements that copied it.
template <class T>
void pad_backward_k(const KernelArgs& k) {
  const TensorView& go = k.input(0);
  TensorView& gi = k.output(0);
  FW_CHECK(gi.is_contiguous(), "pad_backward: grad_input must be contiguous");
  T* gip = gi.ptr<T>();
  std::fill(gip, gip + gi.numel(), T(0));
  if (gi.ndim == 0) {
    FW_CHECK(go.numel() == 1, "pad_backward: shape mismatch");
    gip[0] = go.ptr<T>()[0];
    return;
  }
  PadPlan plan(gi, go, *k.attrs, "pad_backward");
  if (go.numel() == 0 || gi.numel() == 0) return;
  const int64_t Wo = plan.out_shape.back(), gs = plan.out_strides.back();
  const auto& last = plan.src.back();
  const T* gp = go.ptr<T>();
  // Rows that share a leading index in unpadded dims never write the same element, so the
  // work splits over those (constant padding is injective: every row is independent).
  int64_t outer = 1;
  if (plan.mode == PadMode::constant) {
    outer = plan.rows();
  } else {
    for (int d = 0; d + 1 < plan.nd && plan.lo[size_t(d)] == 0 && plan.out_shape[size_t(d)] == plan.in_shape[size_t(d)]; ++d)
      outer *= plan.out_shape[size_t(d)];
  }
  const int64_t per = plan.rows() / outer;
  parallel_for(outer, 1, [&](int64_t q0, int64_t q1) {
    for (int64_t r = q0 * per; r < q1 * per; ++r) {
      int64_t go_off, gi_off;
      if (!plan.row(r, go_off, gi_off)) continue;
      const T* src = gp + go_off;
      T* dst = gip + gi_off;
      for (int64_t o = 0; o < Wo; ++o) {
        const int64_t s = last[size_t(o)];
        if (s >= 0) dst[s] += src[o * gs];
      }
    }
  });
}

// ---- interpolate ---------------------------------------------------------------------

// The source position of each output index along one dim: out[o] = w0 * in[i0] + w1 * in[i1].
template <class T>
struct Taps {
  std::vector<int64_t> i0, i1;
  std::vector<T> w0, w1;
};

bool opt_scale(const Attrs& a, size_t i, double& s) {
  if (a.is_none(i)) return false;
  s = a.f(i);
  return s > 0;
}

// floor(v) as a source index in [0, in - 1]; NaN and out-of-range values (from absurd
// scales in a model file) clamp instead of overflowing the conversion.
inline int64_t clamp_index(double v, int64_t in) {
  if (!(v < double(in - 1))) return in - 1;
  return v > 0 ? int64_t(v) : 0;
}

// ATen's nearest_idx: float arithmetic, with the exact 1x and 2x cases.
Taps<double> nearest_taps(int64_t in, int64_t out, bool has_scale, double scale) {
  Taps<double> t;
  const float s = has_scale ? float(1.0 / scale) : float(in) / float(out);
  for (int64_t o = 0; o < out; ++o) {
    int64_t i;
    if (out == in) i = o;
    else if (out == 2 * in) i = o >> 1;
    else i = clamp_index(std::floor(float(o) * s), in);
    t.i0.push_back(i);
  }
  return t;
}

// ATen's linear index rule (area_pixel_compute_source_index, then guard_index_and_lambda).
template <class T>
Taps<T> linear_taps(int64_t in, int64_t out, bool align_corners, bool has_scale, double scale) {
  Taps<T> t;
  T s;
  if (align_corners) s = out > 1 ? T(in - 1) / T(out - 1) : T(0);
  else s = has_scale ? T(1.0 / scale) : T(in) / T(out);
  for (int64_t o = 0; o < out; ++o) {
    T real = align_corners ? s * T(o) : s * (T(o) + T(0.5)) - T(0.5);
    if (!align_corners && real < T(0)) real = T(0);
    int64_t i = clamp_index(std::floor(real), in);
    T lam = std::min(std::max(real - T(i), T(0)), T(1));
    t.i0.push_back(i);
    t.i1.push_back(i + (i < in - 1 ? 1 : 0));
    t.w0.push_back(T(1) - lam);
    t.w1.push_back(lam);
  }
  return t;
}

struct Interp {
  bool bilinear;
  bool align_corners;
  bool has_sh, has_sw;
  double sh = 0, sw = 0;
  Interp(const Attrs& a, const char* op) {
    const std::string& m = a.str(1);
    FW_CHECK(m == "nearest" || m == "bilinear", op, ": unsupported mode '", m, "'");
    bilinear = m == "bilinear";
    align_corners = !a.is_none(2) && a.i(2) != 0;
    has_sh = opt_scale(a, 3, sh);
    has_sw = opt_scale(a, 4, sw);
  }
};

// interpolate(x; size=#0, mode=#1, align_corners=#2, scale_h=#3, scale_w=#4)
template <class T>
void interpolate_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  TensorView& y = k.output(0);
  Interp ip(*k.attrs, "interpolate");
  Planes in(x, "interpolate"), out(y, "interpolate");
  FW_CHECK(in.N == out.N && in.C == out.C && y.is_contiguous(), "interpolate: bad output");
  if (y.numel() == 0) return;
  FW_CHECK(in.H > 0 && in.W > 0, "interpolate: input has an empty spatial dim");
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  const int64_t planes = in.N * in.C;
  if (!ip.bilinear) {
    Taps<double> th = nearest_taps(in.H, out.H, ip.has_sh, ip.sh), tw = nearest_taps(in.W, out.W, ip.has_sw, ip.sw);
    parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* src = xp + in.offset(p);
        T* dst = yp + p * out.H * out.W;
        for (int64_t oh = 0; oh < out.H; ++oh) {
          const T* row = src + th.i0[size_t(oh)] * in.sh;
          for (int64_t ow = 0; ow < out.W; ++ow) dst[oh * out.W + ow] = row[tw.i0[size_t(ow)] * in.sw];
        }
      }
    });
    return;
  }
  Taps<T> th = linear_taps<T>(in.H, out.H, ip.align_corners, ip.has_sh, ip.sh);
  Taps<T> tw = linear_taps<T>(in.W, out.W, ip.align_corners, ip.has_sw, ip.sw);
  parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* src = xp + in.offset(p);
      T* dst = yp + p * out.H * out.W;
      for (int64_t oh = 0; oh < out.H; ++oh) {
        const T* r0 = src + th.i0[size_t(oh)] * in.sh;
        const T* r1 = src + th.i1[size_t(oh)] * in.sh;
        const T h0 = th.w0[size_t(oh)], h1 = th.w1[size_t(oh)];
        for (int64_t ow = 0; ow < out.W; ++ow) {
          const int64_t a = tw.i0[size_t(ow)] * in.sw, b = tw.i1[size_t(ow)] * in.sw;
          const T w0 = tw.w0[size_t(ow)], w1 = tw.w1[size_t(ow)];
          dst[oh * out.W + ow] = h0 * (w0 * r0[a] + w1 * r0[b]) + h1 * (w0 * r1[a] + w1 * r1[b]);
        }
      }
    }
  });
}

// interpolate_backward(grad_output; input_size=#0, mode=#1, align_corners=#2, scale_h=#3,
// scale_w=#4) -> grad_input: scatter-add with the forward's taps.
template <class T>
void interpolate_backward_k(const KernelArgs& k) {
  const TensorView& go = k.input(0);
  TensorView& gi = k.output(0);
  Interp ip(*k.attrs, "interpolate_backward");
  Planes in(gi, "interpolate_backward"), out(go, "interpolate_backward");
  FW_CHECK(in.N == out.N && in.C == out.C && gi.is_contiguous(), "interpolate_backward: bad grad_input");
  T* gip = gi.ptr<T>();
  std::fill(gip, gip + gi.numel(), T(0));
  if (go.numel() == 0 || gi.numel() == 0) return;
  const T* gp = go.ptr<T>();
  const int64_t planes = in.N * in.C, HW = in.H * in.W;
  if (!ip.bilinear) {
    Taps<double> th = nearest_taps(in.H, out.H, ip.has_sh, ip.sh), tw = nearest_taps(in.W, out.W, ip.has_sw, ip.sw);
    parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const T* src = gp + out.offset(p);
        T* dst = gip + p * HW;
        for (int64_t oh = 0; oh < out.H; ++oh) {
          T* row = dst + th.i0[size_t(oh)] * in.W;
          for (int64_t ow = 0; ow < out.W; ++ow) row[tw.i0[size_t(ow)]] += src[oh * out.sh + ow * out.sw];
        }
      }
    });
    return;
  }
  Taps<T> th = linear_taps<T>(in.H, out.H, ip.align_corners, ip.has_sh, ip.sh);
  Taps<T> tw = linear_taps<T>(in.W, out.W, ip.align_corners, ip.has_sw, ip.sw);
  parallel_for(planes, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* src = gp + out.offset(p);
      T* dst = gip + p * HW;
      for (int64_t oh = 0; oh < out.H; ++oh) {
        T* r0 = dst + th.i0[size_t(oh)] * in.W;
        T* r1 = dst + th.i1[size_t(oh)] * in.W;
        const T h0 = th.w0[size_t(oh)], h1 = th.w1[size_t(oh)];
        for (int64_t ow = 0; ow < out.W; ++ow) {
          const int64_t a = tw.i0[size_t(ow)], b = tw.i1[size_t(ow)];
          const T w0 = tw.w0[size_t(ow)], w1 = tw.w1[size_t(ow)];
          const T g = src[oh * out.sh + ow * out.sw];
          r0[a] += h0 * w0 * g;
          r0[b] += h0 * w1 * g;
          r1[a] += h1 * w0 * g;
          r1[b] += h1 * w1 * g;
        }
      }
    }
  });
}

}  // namespace

FW_REGISTER_KERNELS(resize) {
  register_kernel("pad", DType::f32, &pad_k<float>);
  register_kernel("pad", DType::f64, &pad_k<double>);
  register_kernel("pad", DType::i64, &pad_k<int64_t>);
  register_kernel("pad", DType::i32, &pad_k<int32_t>);
  register_kernel("pad_backward", DType::f32, &pad_backward_k<float>);
  register_kernel("pad_backward", DType::f64, &pad_backward_k<double>);
  register_kernel("interpolate", DType::f32, &interpolate_k<float>);
  register_kernel("interpolate", DType::f64, &interpolate_k<double>);
  register_kernel("interpolate_backward", DType::f32, &interpolate_backward_k<float>);
  register_kernel("interpolate_backward", DType::f64, &interpolate_backward_k<double>);
}

}  // namespace fw
