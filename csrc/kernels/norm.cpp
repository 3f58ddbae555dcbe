// norm.cpp: layer_norm, batch_norm, group_norm and their backward ops.
//
// All views are contiguous (the Python side passes x.contiguous()). The forward ops also
// output the statistics backward needs (mean and rstd = 1/sqrt(var + eps)), so backward
// never recomputes them. Variances are biased (divide by the count), like torch; batch_norm
// in training updates running_mean/running_var in place with the unbiased variance.
//
//   layer_norm(x, weight?, bias?; normalized_ndim=#0, eps=#1) -> (y, mean[M], rstd[M])
//   layer_norm_backward(gy, x, mean, rstd, weight?; normalized_ndim=#0, weight_grads=#1)
//       -> (gx, gweight, gbias)  (gweight/gbias only when weight_grads, else zeros)
//   batch_norm(x, weight?, bias?, running_mean?, running_var?; training=#0, momentum=#1,
//       eps=#2) -> (y, mean[C], rstd[C])
//   batch_norm_backward(gy, x, mean, rstd, weight?; training=#0) -> (gx, gweight, gbias)
//   group_norm(x, weight?, bias?; num_groups=#0, eps=#1) -> (y, mean[N,G], rstd[N,G])
//   group_norm_backward(gy, x, mean, rstd, weight?; num_groups=#0) -> (gx, gweight, gbias)
#include <cmath>
#include <vector>

#include "core/parallel.h"
#include "kernels/nn_common.h"
#include "kernels/registry.h"

namespace fw {
namespace {

int64_t grain_for(int64_t row) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(row, 1)); }

// y[i] = x[i] * a + b  (a, b scalars)
template <class T>
FW_TARGET_CLONES void affine_row(T* __restrict y, const T* __restrict x, T a, T b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * a + b;
}

// y[i] = (x[i] - m) * r * w[i] + bias[i]   (w, bias may be null)
template <class T>
FW_TARGET_CLONES void norm_row(T* __restrict y, const T* __restrict x, T m, T r, const T* __restrict w,
                               const T* __restrict bias, int64_t n) {
  if (w && bias) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * r * w[i] + bias[i];
  } else if (w) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * r * w[i];
  } else if (bias) {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * r + bias[i];
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - m) * r;
  }
}

template <class T>
FW_TARGET_CLONES void mul_row(T* __restrict o, const T* __restrict a, const T* __restrict b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = a[i] * b[i];
}

// o[i] = rs * (dx[i] - a - (x[i] - m) * rs * b): the normalization's input gradient.
template <class T>
FW_TARGET_CLONES void norm_grad_row(T* __restrict o, const T* __restrict dx, const T* __restrict x, T m, T rs,
                                    T a, T b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = rs * (dx[i] - a - (x[i] - m) * rs * b);
}

// Mean and biased variance of a contiguous row (two passes over an L1-resident row).
template <class T>
void row_stats(const T* x, int64_t n, T& mean, T& var) {
  mean = n ? nn::row_sum(x, n) / T(n) : T(0);
  var = n ? nn::row_sq_dev(x, mean, n) / T(n) : T(0);
}

template <class T>
const T* opt_ptr(const KernelArgs& k, int i) {
  return k.has_input(i) ? k.in[i].ptr<T>() : nullptr;
}

template <class T>
FW_TARGET_CLONES void wgrad_accumulate(T* __restrict aw, T* __restrict ab, const T* __restrict g,
                                       const T* __restrict x, T m, T rs, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    aw[c] += g[c] * (x[c] - m) * rs;
    ab[c] += g[c];
  }
}

// ---- layer_norm --------------------------------------------------------------------------

void split_rows(const TensorView& x, int64_t nd, int64_t& rows, int64_t& n, const char* op) {
  FW_CHECK(nd >= 0 && nd <= x.ndim, op, ": normalized_ndim ", nd, " out of range for a ", x.ndim, "-d input");
  rows = 1;
  n = 1;
  for (int d = 0; d < x.ndim; ++d) (d < x.ndim - nd ? rows : n) *= x.shape[d];
}

template <class T>
void layer_norm_k(const KernelArgs& k) {
  nn::check_contig(k, "layer_norm");
  const TensorView& x = k.input(0);
  int64_t rows, n;
  split_rows(x, k.attrs->i(0), rows, n, "layer_norm");
  const T eps = T(k.attrs->f(1));
  const T* w = opt_ptr<T>(k, 1);
  const T* b = opt_ptr<T>(k, 2);
  FW_CHECK(!w || k.in[1].numel() == n, "layer_norm: weight has ", k.in[1].numel(), " elements, expected ", n);
  FW_CHECK(!b || k.in[2].numel() == n, "layer_norm: bias has ", k.in[2].numel(), " elements, expected ", n);
  nn::check_numel(k.output(0), x.numel(), "layer_norm", "output");
  nn::check_numel(k.output(1), rows, "layer_norm", "mean");
  nn::check_numel(k.output(2), rows, "layer_norm", "rstd");
  const T* xp = x.ptr<T>();
  T* y = k.output(0).ptr<T>();
  T* mean = k.output(1).ptr<T>();
  T* rstd = k.output(2).ptr<T>();
  parallel_for(rows, grain_for(n), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      T m, v;
      row_stats(xp + r * n, n, m, v);
      T rs = T(1) / std::sqrt(v + eps);
      norm_row(y + r * n, xp + r * n, m, rs, w, b, n);
      mean[r] = m;
      rstd[r] = rs;
    }
  });
}

template <class T>
void layer_norm_backward_k(const KernelArgs& k) {
  nn::check_contig(k, "layer_norm_backward");
  const TensorView& x = k.input(1);
  int64_t rows, n;
  split_rows(x, k.attrs->i(0), rows, n, "layer_norm_backward");
  const bool wgrads = k.attrs->i(1) != 0;
  const char* op = "layer_norm_backward";
  nn::check_numel(k.input(0), x.numel(), op, "grad_output");
  nn::check_numel(k.input(2), rows, op, "mean");
  nn::check_numel(k.input(3), rows, op, "rstd");
  if (k.has_input(4)) nn::check_numel(k.in[4], n, op, "weight");
  nn::check_numel(k.output(0), x.numel(), op, "grad_input");
  nn::check_numel(k.output(1), n, op, "grad_weight");
  nn::check_numel(k.output(2), n, op, "grad_bias");
  const T* gy = k.input(0).ptr<T>();
  const T* xp = x.ptr<T>();
  const T* mean = k.input(2).ptr<T>();
  const T* rstd = k.input(3).ptr<T>();
  const T* w = opt_ptr<T>(k, 4);
  T* gx = k.output(0).ptr<T>();
  T* gw = k.output(1).ptr<T>();
  T* gb = k.output(2).ptr<T>();
  // Rows go in fixed blocks (independent of the thread count, so sums are deterministic);
  // each block adds its rows' gy * xhat and gy into its own partial gweight/gbias while the
  // row is in cache, and the partials are summed at the end.
  const int64_t rpb = std::max<int64_t>(1, std::min<int64_t>(256, 32768 / std::max<int64_t>(n, 1)));
  const int64_t nblk = (rows + rpb - 1) / rpb;
  std::vector<T> part(wgrads ? size_t(nblk * n * 2) : 0, T(0));
  parallel_for(nblk, 1, [&](int64_t bs, int64_t be) {
    std::vector<T> dxh(static_cast<size_t>(n));
    for (int64_t blk = bs; blk < be; ++blk) {
      T* pw = wgrads ? part.data() + blk * n * 2 : nullptr;
      for (int64_t r = blk * rpb; r < std::min(rows, (blk + 1) * rpb); ++r) {
        const T* g = gy + r * n;
        const T* xr = xp + r * n;
        const T m = mean[r], rs = rstd[r];
        const T* dx = g;
        if (w) {
          mul_row(dxh.data(), g, w, n);
          dx = dxh.data();
        }
        // a = mean(dxhat), b = mean(dxhat * xhat)
        T a = nn::row_sum(dx, n) / T(n);
        T b = (nn::row_dot(dx, xr, n) - m * a * T(n)) * rs / T(n);
        norm_grad_row(gx + r * n, dx, xr, m, rs, a, b, n);
        if (pw) wgrad_accumulate(pw, pw + n, g, xr, m, rs, n);
      }
    }
  });
  for (int64_t i = 0; i < n; ++i) gw[i] = gb[i] = T(0);
  for (int64_t blk = 0; blk < (wgrads ? nblk : 0); ++blk) {
    const T* pw = part.data() + blk * n * 2;
    for (int64_t i = 0; i < n; ++i) {
      gw[i] += pw[i];
      gb[i] += pw[n + i];
    }
  }
}

// ---- batch_norm --------------------------------------------------------------------------

struct NCS {
  int64_t N, C, S;
};

NCS ncs_of(const TensorView& x, const char* op) {
  FW_CHECK(x.ndim >= 2, op, ": expected an input with 2 or more dims (N, C, ...), got ", x.ndim, "-d");
  NCS g{x.shape[0], x.shape[1], 1};
  for (int d = 2; d < x.ndim; ++d) g.S *= x.shape[d];
  return g;
}

template <class T>
void batch_norm_k(const KernelArgs& k) {
  // running stats (#3, #4) are not packed: written in place in training, read strided in eval
  for (int i = 0; i < 3; ++i)
    FW_CHECK(!k.has_input(i) || k.in[i].numel() == 0 || k.in[i].is_contiguous(), "batch_norm: input #", i,
             " must be contiguous");
  const TensorView& x = k.input(0);
  NCS g = ncs_of(x, "batch_norm");
  const bool training = k.attrs->i(0) != 0;
  const double momentum = k.attrs->f(1);
  const T eps = T(k.attrs->f(2));
  const T* w = opt_ptr<T>(k, 1);
  const T* b = opt_ptr<T>(k, 2);
  // NOTE: running stats are inputs updated in place (torch semantics); the Python side
  // checks they are contiguous, writable and of x's dtype, and bumps their versions.
  T* rm = k.has_input(3) ? k.in[3].ptr<T>() : nullptr;
  T* rv = k.has_input(4) ? k.in[4].ptr<T>() : nullptr;
  const int64_t rms = rm && k.in[3].ndim == 1 ? k.in[3].strides[0] : 1;
  const int64_t rvs = rv && k.in[4].ndim == 1 ? k.in[4].strides[0] : 1;
  FW_CHECK(!training || ((!rm || rms == 1) && (!rv || rvs == 1)),
           "batch_norm: running stats updated in training must be contiguous");
  for (int i = 1; i < 5; ++i)
    FW_CHECK(!k.has_input(i) || k.in[i].numel() == g.C, "batch_norm: input #", i, " has ", k.in[i].numel(),
             " elements, expected ", g.C, " (one per channel)");
  FW_CHECK(training || (rm && rv),
           "batch_norm: running_mean and running_var must be defined in evaluation mode");
  const int64_t cnt = g.N * g.S;
  FW_CHECK(!training || cnt > 1, "Expected more than 1 value per channel when training, got input size ", g.N,
           "x", g.C, "x", g.S);
  nn::check_numel(k.output(0), x.numel(), "batch_norm", "output");
  nn::check_numel(k.output(1), g.C, "batch_norm", "mean");
  nn::check_numel(k.output(2), g.C, "batch_norm", "rstd");
  const T* xp = x.ptr<T>();
  T* y = k.output(0).ptr<T>();
  T* mean = k.output(1).ptr<T>();
  T* rstd = k.output(2).ptr<T>();
  parallel_for(g.C, 1, [&](int64_t cs, int64_t ce) {
    for (int64_t c = cs; c < ce; ++c) {
      T m, var;
      if (training) {
        T sum = 0;
        for (int64_t n = 0; n < g.N; ++n) sum += nn::row_sum(xp + (n * g.C + c) * g.S, g.S);
        m = sum / T(cnt);
        T ss = 0;
        for (int64_t n = 0; n < g.N; ++n) ss += nn::row_sq_dev(xp + (n * g.C + c) * g.S, m, g.S);
        var = ss / T(cnt);
        if (rm) rm[c] = T((1 - momentum) * double(rm[c]) + momentum * double(m));
        if (rv) rv[c] = T((1 - momentum) * double(rv[c]) + momentum * double(ss) / double(cnt - 1));
      } else {
        m = rm[c * rms];
        var = rv[c * rvs];
      }
      T rs = T(1) / std::sqrt(var + eps);
      mean[c] = m;
      rstd[c] = rs;
      T a = rs * (w ? w[c] : T(1));
      T sh = (b ? b[c] : T(0)) - m * a;
      for (int64_t n = 0; n < g.N; ++n)
        affine_row(y + (n * g.C + c) * g.S, xp + (n * g.C + c) * g.S, a, sh, g.S);
    }
  });
}

template <class T>
void batch_norm_backward_k(const KernelArgs& k) {
  nn::check_contig(k, "batch_norm_backward");
  const TensorView& x = k.input(1);
  NCS g = ncs_of(x, "batch_norm_backward");
  const bool training = k.attrs->i(0) != 0;
  const char* op = "batch_norm_backward";
  nn::check_numel(k.input(0), x.numel(), op, "grad_output");
  nn::check_numel(k.input(2), g.C, op, "mean");
  nn::check_numel(k.input(3), g.C, op, "rstd");
  if (k.has_input(4)) nn::check_numel(k.in[4], g.C, op, "weight");
  nn::check_numel(k.output(0), x.numel(), op, "grad_input");
  nn::check_numel(k.output(1), g.C, op, "grad_weight");
  nn::check_numel(k.output(2), g.C, op, "grad_bias");
  const T* gy = k.input(0).ptr<T>();
  const T* xp = x.ptr<T>();
  const T* mean = k.input(2).ptr<T>();
  const T* rstd = k.input(3).ptr<T>();
  const T* w = opt_ptr<T>(k, 4);
  T* gx = k.output(0).ptr<T>();
  T* gw = k.output(1).ptr<T>();
  T* gb = k.output(2).ptr<T>();
  const T cnt = T(g.N * g.S);
  parallel_for(g.C, 1, [&](int64_t cs, int64_t ce) {
    for (int64_t c = cs; c < ce; ++c) {
      const T m = mean[c], rs = rstd[c];
      T sg = 0, sgx = 0;
      for (int64_t n = 0; n < g.N; ++n) {
        const int64_t off = (n * g.C + c) * g.S;
        sg += nn::row_sum(gy + off, g.S);
        sgx += nn::row_dot(gy + off, xp + off, g.S);
      }
      const T sgxh = (sgx - m * sg) * rs;  // sum gy * xhat
      gw[c] = sgxh;
      gb[c] = sg;
      const T wc = w ? w[c] : T(1);
      for (int64_t n = 0; n < g.N; ++n) {
        const int64_t off = (n * g.C + c) * g.S;
        T* o = gx + off;
        const T* gr = gy + off;
        const T* xr = xp + off;
        if (training) {
          const T a = sg / cnt, bb = sgxh / cnt;
          for (int64_t i = 0; i < g.S; ++i) o[i] = wc * rs * (gr[i] - a - (xr[i] - m) * rs * bb);
        } else {
          for (int64_t i = 0; i < g.S; ++i) o[i] = gr[i] * wc * rs;
        }
      }
    }
  });
}

// ---- group_norm --------------------------------------------------------------------------

template <class T>
void group_norm_k(const KernelArgs& k) {
  nn::check_contig(k, "group_norm");
  const TensorView& x = k.input(0);
  NCS g = ncs_of(x, "group_norm");
  const int64_t G = k.attrs->i(0);
  const T eps = T(k.attrs->f(1));
  FW_CHECK(G > 0 && g.C % G == 0,
           "group_norm: Expected number of channels in input to be divisible by "
           "num_groups, but got input of shape with ",
           g.C, " channels and num_groups=", G);
  const T* w = opt_ptr<T>(k, 1);
  const T* b = opt_ptr<T>(k, 2);
  for (int i = 1; i < 3; ++i)
    FW_CHECK(!k.has_input(i) || k.in[i].numel() == g.C, "group_norm: input #", i, " has ", k.in[i].numel(),
             " elements, expected ", g.C);
  const int64_t Cg = g.C / G, blk = Cg * g.S;
  nn::check_numel(k.output(0), x.numel(), "group_norm", "output");
  nn::check_numel(k.output(1), g.N * G, "group_norm", "mean");
  nn::check_numel(k.output(2), g.N * G, "group_norm", "rstd");
  const T* xp = x.ptr<T>();
  T* y = k.output(0).ptr<T>();
  T* mean = k.output(1).ptr<T>();
  T* rstd = k.output(2).ptr<T>();
  parallel_for(g.N * G, grain_for(blk), [&](int64_t s, int64_t e) {
    for (int64_t ng = s; ng < e; ++ng) {
      T m, v;
      row_stats(xp + ng * blk, blk, m, v);
      T rs = T(1) / std::sqrt(v + eps);
      mean[ng] = m;
      rstd[ng] = rs;
      const int64_t c0 = (ng % G) * Cg;
      for (int64_t j = 0; j < Cg; ++j) {
        const int64_t c = c0 + j;
        T a = rs * (w ? w[c] : T(1));
        T sh = (b ? b[c] : T(0)) - m * a;
        affine_row(y + ng * blk + j * g.S, xp + ng * blk + j * g.S, a, sh, g.S);
      }
    }
  });
}

template <class T>
void group_norm_backward_k(const KernelArgs& k) {
  nn::check_contig(k, "group_norm_backward");
  const TensorView& x = k.input(1);
  NCS g = ncs_of(x, "group_norm_backward");
  const int64_t G = k.attrs->i(0);
  FW_CHECK(G > 0 && g.C % G == 0, "group_norm_backward: channels not divisible by num_groups");
  const int64_t Cg = g.C / G, blk = Cg * g.S;
  const char* op = "group_norm_backward";
  nn::check_numel(k.input(0), x.numel(), op, "grad_output");
  nn::check_numel(k.input(2), g.N * G, op, "mean");
  nn::check_numel(k.input(3), g.N * G, op, "rstd");
  if (k.has_input(4)) nn::check_numel(k.in[4], g.C, op, "weight");
  nn::check_numel(k.output(0), x.numel(), op, "grad_input");
  nn::check_numel(k.output(1), g.C, op, "grad_weight");
  nn::check_numel(k.output(2), g.C, op, "grad_bias");
  const T* gy = k.input(0).ptr<T>();
  const T* xp = x.ptr<T>();
  const T* mean = k.input(2).ptr<T>();
  const T* rstd = k.input(3).ptr<T>();
  const T* w = opt_ptr<T>(k, 4);
  T* gx = k.output(0).ptr<T>();
  T* gw = k.output(1).ptr<T>();
  T* gb = k.output(2).ptr<T>();
  // Per (n, c): db = sum_s gy, ds = sum_s gy * x.
  std::vector<T> db(size_t(g.N * g.C)), ds(size_t(g.N * g.C));
  parallel_for(g.N * G, grain_for(blk), [&](int64_t s, int64_t e) {
    for (int64_t ng = s; ng < e; ++ng) {
      const int64_t n = ng / G, c0 = (ng % G) * Cg;
      const T m = mean[ng], rs = rstd[ng];
      T A = 0, B = 0;  // sum dxhat, sum dxhat * x
      for (int64_t j = 0; j < Cg; ++j) {
        const int64_t off = ng * blk + j * g.S;
        const T sb = nn::row_sum(gy + off, g.S), sx = nn::row_dot(gy + off, xp + off, g.S);
        db[n * g.C + c0 + j] = sb;
        ds[n * g.C + c0 + j] = sx;
        const T wc = w ? w[c0 + j] : T(1);
        A += wc * sb;
        B += wc * sx;
      }
      const T cnt = T(blk);
      const T a = A / cnt, bb = (B - m * A) * rs / cnt;  // mean(dxhat), mean(dxhat * xhat)
      for (int64_t j = 0; j < Cg; ++j) {
        const int64_t off = ng * blk + j * g.S;
        const T wc = w ? w[c0 + j] : T(1);
        for (int64_t i = 0; i < g.S; ++i)
          gx[off + i] = rs * (gy[off + i] * wc - a - (xp[off + i] - m) * rs * bb);
      }
    }
  });
  for (int64_t c = 0; c < g.C; ++c) {
    T sw = 0, sb = 0;
    for (int64_t n = 0; n < g.N; ++n) {
      const int64_t ng = n * G + c / Cg;
      sw += (ds[n * g.C + c] - mean[ng] * db[n * g.C + c]) * rstd[ng];
      sb += db[n * g.C + c];
    }
    gw[c] = sw;
    gb[c] = sb;
  }
}

}  // namespace

FW_REGISTER_KERNELS(norm) {
#define REGF(NAME, FN, KEEP)                                                   \
  register_kernel(NAME, DType::f32, &nn::contiguous_inputs<&FN<float>, KEEP>); \
  register_kernel(NAME, DType::f64, &nn::contiguous_inputs<&FN<double>, KEEP>);
  REGF("layer_norm", layer_norm_k, 0)
  REGF("layer_norm_backward", layer_norm_backward_k, 0)
  REGF("batch_norm", batch_norm_k, 0b11000)  // running stats are updated in place
  REGF("batch_norm_backward", batch_norm_backward_k, 0)
  REGF("group_norm", group_norm_k, 0)
  REGF("group_norm_backward", group_norm_backward_k, 0)
#undef REGF
}

}  // namespace fw
