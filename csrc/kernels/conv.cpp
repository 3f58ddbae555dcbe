// conv.cpp: 2-D convolution over NCHW tensors as im2col + OpenBLAS GEMM, and its two
// backward computations (grad of the input via GEMM + col2im, grad of the weight via GEMM
// over im2col). conv_transpose2d is the input-backward computation plus a bias.
//
// Layout: x (N, C, H, W), weight (Cout, C/groups, kh, kw), out (N, Cout, Ho, Wo), all
// contiguous (the Python side passes .contiguous()). Per sample and group the forward is
//   out[Cout_g, Ho*Wo] = weight_g[Cout_g, C_g*kh*kw] @ col[C_g*kh*kw, Ho*Wo]
// with the weights as the A operand; a 1x1 stride-1 unpadded conv uses x itself as col.
// Padding attrs are 4 ints (top, left, bottom, right), so padding="same" may be uneven.
#include <algorithm>
#include <cstring>

#include "core/allocator.h"
#include "core/parallel.h"
#include "kernels/blas.h"
#include "kernels/registry.h"

namespace fw {
namespace {

struct ConvGeom {
  int64_t N, C, H, W;     // input
  int64_t Cout, Ho, Wo;   // output
  int64_t kh, kw;
  int64_t sh, sw, pt, pl, pb, pr, dh, dw;
  int64_t groups;
  int64_t Cg() const { return C / groups; }
  int64_t Coutg() const { return Cout / groups; }
  int64_t K() const { return Cg() * kh * kw; }   // GEMM inner dim
  int64_t HW() const { return H * W; }
  int64_t HoWo() const { return Ho * Wo; }
  bool direct() const {  // 1x1, stride 1, no padding: x is already the im2col matrix
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && pb == 0 && pr == 0;
  }
};

int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d) {
  return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

// The geometry of the convolution x (*) w -> y, checked: x and y play the conv's input and
// output (the backward ops and conv_transpose2d pass their operands in those roles).
ConvGeom make_geom(const char* op, const TensorView& x, const TensorView& w, const TensorView& y,
                   const std::vector<int64_t>& stride, const std::vector<int64_t>& pad,
                   const std::vector<int64_t>& dil, int64_t groups) {
  FW_CHECK(x.ndim == 4 && w.ndim == 4 && y.ndim == 4, op, ": expected 4-d input, weight and output");
  FW_CHECK(stride.size() == 2 && pad.size() == 4 && dil.size() == 2, op,
           ": stride/dilation need 2 ints and padding 4 ints");
  // NOTE: an empty view may carry any strides (numpy broadcasts of size 0 have stride 0).
  auto dense = [](const TensorView& v) { return v.numel() == 0 || v.is_contiguous(); };
  FW_CHECK(dense(x) && dense(w) && dense(y), op, ": operands must be contiguous");
  ConvGeom g;
  g.N = x.shape[0];
  g.C = x.shape[1];
  g.H = x.shape[2];
  g.W = x.shape[3];
  g.Cout = w.shape[0];
  g.kh = w.shape[2];
  g.kw = w.shape[3];
  g.sh = stride[0];
  g.sw = stride[1];
  g.pt = pad[0];
  g.pl = pad[1];
  g.pb = pad[2];
  g.pr = pad[3];
  g.dh = dil[0];
  g.dw = dil[1];
  g.groups = groups;
  g.Ho = y.shape[2];
  g.Wo = y.shape[3];
  FW_CHECK(g.sh > 0 && g.sw > 0 && g.dh > 0 && g.dw > 0, op, ": stride and dilation must be positive");
  FW_CHECK(g.pt >= 0 && g.pl >= 0 && g.pb >= 0 && g.pr >= 0, op, ": padding must be non-negative");
  FW_CHECK(groups > 0 && g.C % groups == 0 && g.Cout % groups == 0, op, ": groups=", groups,
           " must divide in_channels ", g.C, " and out_channels ", g.Cout);
  FW_CHECK(w.shape[1] * groups == g.C, op, ": weight ", w.shape[1], "x", groups,
           " groups does not match ", g.C, " input channels");
  FW_CHECK(y.shape[0] == g.N && y.shape[1] == g.Cout, op, ": output batch/channels mismatch");
  FW_CHECK(g.H + g.pt + g.pb >= g.dh * (g.kh - 1) + 1 && g.W + g.pl + g.pr >= g.dw * (g.kw - 1) + 1, op,
           ": kernel ", g.kh, "x", g.kw, " larger than padded input");
  FW_CHECK(g.Ho == conv_out_size(g.H, g.kh, g.sh, g.pt, g.pb, g.dh) &&
               g.Wo == conv_out_size(g.W, g.kw, g.sw, g.pl, g.pr, g.dw),
           op, ": output ", g.Ho, "x", g.Wo, " does not match input ", g.H, "x", g.W);
  return g;
}

// The output columns [lo, hi) whose input column ow*s - p + j*d lies inside [0, W).
inline void valid_range(int64_t Wo, int64_t W, int64_t s, int64_t p, int64_t off, int64_t& lo,
                        int64_t& hi) {
  int64_t a = p - off;  // first ow with ow*s >= a
  lo = a <= 0 ? 0 : std::min(Wo, (a + s - 1) / s);
  int64_t b = W - 1 + p - off;  // last ow with ow*s <= b
  hi = b < 0 ? 0 : std::min(Wo, b / s + 1);
  hi = std::max(hi, lo);
}

// col[(c*kh + i)*kw + j, (oh - oh0)*Wo + ow] = x[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
// (0 outside) for output rows oh in [oh0, oh1). x: one sample's group (Cg, H, W); the rows
// of col are split over the thread pool.
template <class T>
void im2col(const ConvGeom& g, const T* x, T* col, int64_t oh0, int64_t oh1) {
  const int64_t rows = g.K(), len = (oh1 - oh0) * g.Wo, khw = g.kh * g.kw;
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(len, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r / khw, i = (r / g.kw) % g.kh, j = r % g.kw;
      int64_t lo, hi;
      valid_range(g.Wo, g.W, g.sw, g.pl, j * g.dw, lo, hi);
      T* dst = col + r * len;
      for (int64_t oh = oh0; oh < oh1; ++oh, dst += g.Wo) {
        const int64_t ih = oh * g.sh - g.pt + i * g.dh;
        if (ih < 0 || ih >= g.H) {
          std::fill(dst, dst + g.Wo, T(0));
          continue;
        }
        const T* src = x + (c * g.H + ih) * g.W - g.pl + j * g.dw;
        std::fill(dst, dst + lo, T(0));
        if (g.sw == 1) {
          std::memcpy(dst + lo, src + lo, size_t(hi - lo) * sizeof(T));
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sw];
        }
        std::fill(dst + hi, dst + g.Wo, T(0));
      }
    }
  });
}

// x[c, ih, iw] += col[...] for output rows [oh0, oh1): the adjoint of im2col. Channels are
// split over the pool (each writes only its own channel, so there are no races).
template <class T>
void col2im(const ConvGeom& g, const T* col, T* x, int64_t oh0, int64_t oh1) {
  const int64_t len = (oh1 - oh0) * g.Wo;
  parallel_for(g.Cg(), 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          int64_t lo, hi;
          valid_range(g.Wo, g.W, g.sw, g.pl, j * g.dw, lo, hi);
          const T* src = col + ((c * g.kh + i) * g.kw + j) * len;
          for (int64_t oh = oh0; oh < oh1; ++oh, src += g.Wo) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            T* dst = x + (c * g.H + ih) * g.W - g.pl + j * g.dw;
            if (g.sw == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.sw] += src[ow];
            }
          }
        }
      }
    }
  });
}

// Output rows per im2col tile: the column buffer stays near 1M elements (cache-friendly,
// and bounded: a whole 1024x1024 image would need K * 1M elements of scratch).
int64_t tile_rows(const ConvGeom& g) {
  const int64_t per_row = std::max<int64_t>(1, g.K() * g.Wo);
  return std::max<int64_t>(1, std::min<int64_t>(g.Ho, (int64_t(1) << 20) / per_row));
}

template <class T>
T* col_scratch(const ConvGeom& g) {
  if (g.direct()) return nullptr;
  return static_cast<T*>(thread_scratch(size_t(g.K() * tile_rows(g) * g.Wo) * sizeof(T)));
}

// C[M, N] = A[M, K] @ B[K, N] + beta * C with the larger of M and N split over the thread
// pool; each worker runs single-threaded BLAS on its block (a parallel region sets OpenBLAS
// to one thread). NOTE: OpenBLAS's own threads spin while they wait, which on a busy machine
// made shapes like the stem's weight gradient (64 x 147, inner 12544) 60x slower than one
// thread; the pool's workers sleep instead.
template <class T>
void gemm_split(int64_t M, int64_t N, int64_t K, const T* A, int64_t a_rs, int64_t a_cs, const T* B,
                int64_t b_rs, int64_t b_cs, T beta, T* C, int64_t ldc) {
  const int64_t threads = get_num_threads();
  if (threads <= 1 || in_parallel_region() || M * N * K < (int64_t(1) << 18)) {
    gemm_strided<T>(M, N, K, T(1), A, a_rs, a_cs, B, b_rs, b_cs, beta, C, ldc);
    return;
  }
  const bool split_n = N >= M;
  const int64_t len = split_n ? N : M;
  const int64_t chunk = ((len + threads - 1) / threads + 15) / 16 * 16;
  parallel_for((len + chunk - 1) / chunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t s = c * chunk, n = std::min(len, s + chunk) - s;
      if (split_n)
        gemm_strided<T>(M, n, K, T(1), A, a_rs, a_cs, B + s * b_cs, b_rs, b_cs, beta, C + s, ldc);
      else
        gemm_strided<T>(n, N, K, T(1), A + s * a_rs, a_rs, a_cs, B, b_rs, b_cs, beta, C + s * ldc, ldc);
    }
  });
}

// Fills each of `channels` rows of length `len` with bias[c] (or 0 without a bias).
template <class T>
void fill_rows(T* out, int64_t channels, int64_t len, const TensorView* bias) {
  for (int64_t c = 0; c < channels; ++c) {
    T v = T(0);
    if (bias) v = bias->ptr<T>()[c * (bias->ndim ? bias->strides[0] : 0)];
    std::fill(out + c * len, out + (c + 1) * len, v);
  }
}

const TensorView* optional_bias(const KernelArgs& k, int idx, int64_t channels, const char* op) {
  if (!k.has_input(idx)) return nullptr;
  const TensorView& b = k.input(idx);
  FW_CHECK(b.ndim == 1 && b.shape[0] == channels, op, ": bias must have shape [", channels, "]");
  return &b;
}

// One sample of the forward: out_n (Cout, Ho*Wo) = bias + sum over groups of W_g @ col_g,
// one tile of output rows at a time.
template <class T>
void conv_forward_sample(const ConvGeom& g, const T* x_n, const T* w, const TensorView* bias, T* out_n) {
  const int64_t K = g.K(), HoWo = g.HoWo(), Coutg = g.Coutg();
  if (bias) fill_rows<T>(out_n, g.Cout, HoWo, bias);
  const T beta = bias ? T(1) : T(0);
  T* col = col_scratch<T>(g);
  const int64_t th = tile_rows(g);
  for (int64_t gr = 0; gr < g.groups; ++gr) {
    const T* xg = x_n + gr * g.Cg() * g.HW();
    const T* wg = w + gr * Coutg * K;
    T* og = out_n + gr * Coutg * HoWo;
    if (g.direct()) {
      gemm_split<T>(Coutg, HoWo, K, wg, K, 1, xg, HoWo, 1, beta, og, HoWo);
      continue;
    }
    for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += th) {
      const int64_t oh1 = std::min(g.Ho, oh0 + th), len = (oh1 - oh0) * g.Wo;
      im2col<T>(g, xg, col, oh0, oh1);
      gemm_split<T>(Coutg, len, K, wg, K, 1, col, len, 1, beta, og + oh0 * g.Wo, HoWo);
    }
  }
}

// Runs f(n) for every sample: several samples at once (single-threaded BLAS each) when
// there are enough of them, else one at a time with threaded im2col and BLAS.
template <class F>
void for_each_sample(int64_t N, const F& f) {
  if (N > 1 && N >= get_num_threads() && !in_parallel_region()) {
    parallel_for(N, 1, [&](int64_t s, int64_t e) {
      for (int64_t n = s; n < e; ++n) f(n);
    });
  } else {
    for (int64_t n = 0; n < N; ++n) f(n);
  }
}

// conv2d(x, weight, bias?; stride=#0, padding=#1, dilation=#2, groups=#3)
template <class T>
void conv2d_k(const KernelArgs& k) {
  const TensorView &x = k.input(0), &w = k.input(1);
  TensorView& y = k.output(0);
  ConvGeom g = make_geom("conv2d", x, w, y, k.attrs->ints(0), k.attrs->ints(1), k.attrs->ints(2),
                         k.attrs->i(3));
  const TensorView* bias = optional_bias(k, 2, g.Cout, "conv2d");
  const T* xp = x.ptr<T>();
  const T* wp = w.ptr<T>();
  T* yp = y.ptr<T>();
  for_each_sample(g.N, [&](int64_t n) {
    conv_forward_sample<T>(g, xp + n * g.C * g.HW(), wp, bias, yp + n * g.Cout * g.HoWo());
  });
}

// grad_input[n] = col2im(W^T @ grad_out[n]) (+ bias per channel for conv_transpose2d).
// go: (N, Cout, Ho, Wo) plays the conv output; gi: (N, C, H, W) plays the conv input.
template <class T>
void conv_input_backward(const ConvGeom& g, const T* go, const T* w, const TensorView* bias, T* gi) {
  const int64_t K = g.K(), HoWo = g.HoWo(), Coutg = g.Coutg(), Cg = g.Cg();
  for_each_sample(g.N, [&](int64_t n) {
    T* gi_n = gi + n * g.C * g.HW();
    const T* go_n = go + n * g.Cout * HoWo;
    fill_rows<T>(gi_n, g.C, g.HW(), bias);
    T* col = col_scratch<T>(g);
    const int64_t th = tile_rows(g);
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* wg = w + gr * Coutg * K;  // (Coutg, K): A = wg^T is (K, Coutg)
      const T* gog = go_n + gr * Coutg * HoWo;
      T* gig = gi_n + gr * Cg * g.HW();
      if (g.direct()) {
        gemm_split<T>(K, HoWo, Coutg, wg, 1, K, gog, HoWo, 1, T(1), gig, HoWo);
        continue;
      }
      for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += th) {
        const int64_t oh1 = std::min(g.Ho, oh0 + th), len = (oh1 - oh0) * g.Wo;
        gemm_split<T>(K, len, Coutg, wg, 1, K, gog + oh0 * g.Wo, HoWo, 1, T(0), col, len);
        col2im<T>(g, col, gig, oh0, oh1);
      }
    }
  });
}

// conv2d_backward_input(grad_output, weight; input_size=#0, stride=#1, padding=#2,
// dilation=#3, groups=#4) -> grad_input with shape input_size.
template <class T>
void conv2d_backward_input_k(const KernelArgs& k) {
  const TensorView &go = k.input(0), &w = k.input(1);
  TensorView& gi = k.output(0);
  ConvGeom g = make_geom("conv2d_backward_input", gi, w, go, k.attrs->ints(1), k.attrs->ints(2),
                         k.attrs->ints(3), k.attrs->i(4));
  conv_input_backward<T>(g, go.ptr<T>(), w.ptr<T>(), nullptr, gi.ptr<T>());
}

// conv_transpose2d(x, weight, bias?; stride=#0, padding=#1 (4 ints), output_padding=#2,
// groups=#3, dilation=#4): the input-backward of the conv whose output has x's shape.
template <class T>
void conv_transpose2d_k(const KernelArgs& k) {
  const TensorView &x = k.input(0), &w = k.input(1);
  TensorView& y = k.output(0);
  ConvGeom g = make_geom("conv_transpose2d", y, w, x, k.attrs->ints(0), k.attrs->ints(1),
                         k.attrs->ints(4), k.attrs->i(3));
  const TensorView* bias = optional_bias(k, 2, g.C, "conv_transpose2d");
  conv_input_backward<T>(g, x.ptr<T>(), w.ptr<T>(), bias, y.ptr<T>());
}

// conv2d_backward_weight(input, grad_output; weight_size=#0, stride=#1, padding=#2,
// dilation=#3, groups=#4) -> grad_weight = sum_n grad_out[n] @ im2col(x[n])^T per group.
template <class T>
void conv2d_backward_weight_k(const KernelArgs& k) {
  const TensorView &x = k.input(0), &go = k.input(1);
  TensorView& gw = k.output(0);
  ConvGeom g = make_geom("conv2d_backward_weight", x, gw, go, k.attrs->ints(1), k.attrs->ints(2),
                         k.attrs->ints(3), k.attrs->i(4));
  const int64_t K = g.K(), HoWo = g.HoWo(), Coutg = g.Coutg();
  const T* xp = x.ptr<T>();
  const T* gop = go.ptr<T>();
  T* gwp = gw.ptr<T>();
  std::fill(gwp, gwp + gw.numel(), T(0));
  T* col = col_scratch<T>(g);
  const int64_t th = tile_rows(g);
  for (int64_t n = 0; n < g.N; ++n) {
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* xg = xp + n * g.C * g.HW() + gr * g.Cg() * g.HW();
      const T* gog = gop + (n * g.Cout + gr * Coutg) * HoWo;
      T* gwg = gwp + gr * Coutg * K;
      if (g.direct()) {  // x_g (K, HoWo) used transposed
        gemm_split<T>(Coutg, K, HoWo, gog, HoWo, 1, xg, 1, HoWo, T(1), gwg, K);
        continue;
      }
      for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += th) {
        const int64_t oh1 = std::min(g.Ho, oh0 + th), len = (oh1 - oh0) * g.Wo;
        im2col<T>(g, xg, col, oh0, oh1);
        gemm_split<T>(Coutg, K, len, gog + oh0 * g.Wo, HoWo, 1, col, 1, len, T(1), gwg, K);
      }
    }
  }
}

}  // namespace

FW_REGISTER_KERNELS(conv) {
  register_kernel("conv2d", DType::f32, &conv2d_k<float>);
  register_kernel("conv2d", DType::f64, &conv2d_k<double>);
  register_kernel("conv2d_backward_input", DType::f32, &conv2d_backward_input_k<float>);
  register_kernel("conv2d_backward_input", DType::f64, &conv2d_backward_input_k<double>);
  register_kernel("conv2d_backward_weight", DType::f32, &conv2d_backward_weight_k<float>);
  register_kernel("conv2d_backward_weight", DType::f64, &conv2d_backward_weight_k<double>);
  register_kernel("conv_transpose2d", DType::f32, &conv_transpose2d_k<float>);
  register_kernel("conv_transpose2d", DType::f64, &conv_transpose2d_k<double>);
}

}  // namespace fw
