// softmax.cpp: softmax and log_softmax along one dim, and their backward ops.
//
// Inputs and outputs are contiguous (the Python side passes x.contiguous()); the tensor is
// seen as (outer, n, inner) around the softmax dim. inner == 1 (the last dim, the common
// case) runs one row at a time with the vectorized row helpers of nn_common.h, in parallel
// over rows; inner > 1 walks the n rows of each (n, inner) slab with per-column running
// max and sum, vectorized along inner.
//
// Attributes: softmax(dim=#0), log_softmax(dim=#0), softmax_backward(dim=#0) with inputs
// (grad_output, output), log_softmax_backward(dim=#0) with inputs (grad_output, output).
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "kernels/nn_common.h"
#include "kernels/registry.h"

namespace fw {
namespace {

struct Geom {
  int64_t outer = 1, n = 1, inner = 1;
};

Geom geom_of(const TensorView& x, int64_t dim, const char* op) {
  Geom g;
  if (x.ndim == 0) return g;
  FW_CHECK(dim >= 0 && dim < x.ndim, op, ": dim ", dim, " out of range for a ", x.ndim, "-d tensor");
  for (int d = 0; d < dim; ++d) g.outer *= x.shape[d];
  g.n = x.shape[dim];
  for (int d = int(dim) + 1; d < x.ndim; ++d) g.inner *= x.shape[d];
  return g;
}

int64_t row_grain(int64_t n) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)); }

// One softmax / log_softmax row of length n.
template <class T, bool Log>
void softmax_row(T* o, const T* x, int64_t n) {
  T m = nn::row_max(x, n);
  if (m == -std::numeric_limits<T>::infinity()) m = 0;  // all -inf: exp gives 0, sum 0 -> NaN like torch
  if (Log) {
    T lse = m + std::log(nn::row_exp_sum_only(x, m, n));
    nn::row_add(o, x, -lse, n);
  } else {
    T s = nn::row_exp_sum(o, x, m, n);
    nn::row_scale(o, o, T(1) / s, n);
  }
}

// Softmax over the n rows of one (n, inner) slab, column-wise.
template <class T, bool Log>
void softmax_slab(T* o, const T* x, int64_t n, int64_t inner, std::vector<T>& m, std::vector<T>& s) {
  m.assign(size_t(inner), -std::numeric_limits<T>::infinity());
  s.assign(size_t(inner), T(0));
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * inner;
    for (int64_t c = 0; c < inner; ++c) m[c] = xr[c] > m[c] ? xr[c] : m[c];
  }
  for (int64_t c = 0; c < inner; ++c)
    if (m[c] == -std::numeric_limits<T>::infinity()) m[c] = 0;
  for (int64_t r = 0; r < n; ++r) {
    const T* xr = x + r * inner;
    T* orow = o + r * inner;
    for (int64_t c = 0; c < inner; ++c) {
      T e = nn::exp_poly(xr[c] - m[c]);
      if (!Log) orow[c] = e;
      s[c] += e;
    }
  }
  for (int64_t c = 0; c < inner; ++c) s[c] = Log ? m[c] + std::log(s[c]) : T(1) / s[c];
  for (int64_t r = 0; r < n; ++r) {
    T* orow = o + r * inner;
    const T* xr = x + r * inner;
    for (int64_t c = 0; c < inner; ++c) orow[c] = Log ? xr[c] - s[c] : orow[c] * s[c];
  }
}

template <class T, bool Log>
void softmax_k(const KernelArgs& k) {
  const char* op = Log ? "log_softmax" : "softmax";
  nn::check_contig(k, op);
  const TensorView& x = k.input(0);
  Geom g = geom_of(x, k.attrs->i(0), op);
  nn::check_numel(k.output(0), x.numel(), op, "output");
  const T* xp = x.ptr<T>();
  T* op_ = k.output(0).ptr<T>();
  if (x.numel() == 0) return;
  if (g.inner == 1) {
    parallel_for(g.outer, row_grain(g.n), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) softmax_row<T, Log>(op_ + r * g.n, xp + r * g.n, g.n);
    });
    return;
  }
  parallel_for(g.outer, row_grain(g.n * g.inner), [&](int64_t b, int64_t e) {
    std::vector<T> m, s;
    for (int64_t r = b; r < e; ++r)
      softmax_slab<T, Log>(op_ + r * g.n * g.inner, xp + r * g.n * g.inner, g.n, g.inner, m, s);
  });
}

// softmax: gx = y * (g - sum(g * y));  log_softmax: gx = g - exp(y) * sum(g).
template <class T>
FW_TARGET_CLONES void softmax_grad_row(T* __restrict gx, const T* __restrict g, const T* __restrict y, T s,
                                       int64_t n) {
  for (int64_t i = 0; i < n; ++i) gx[i] = y[i] * (g[i] - s);
}
template <class T>
FW_TARGET_CLONES void log_softmax_grad_row(T* __restrict gx, const T* __restrict g, const T* __restrict y,
                                           T s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gx[i] = g[i] - nn::exp_poly(y[i]) * s;
}

template <class T, bool Log>
void backward_row(T* gx, const T* g, const T* y, int64_t n) {
  if (Log) {
    log_softmax_grad_row(gx, g, y, nn::row_sum(g, n), n);
  } else {
    softmax_grad_row(gx, g, y, nn::row_dot(g, y, n), n);
  }
}

template <class T, bool Log>
void backward_slab(T* gx, const T* g, const T* y, int64_t n, int64_t inner, std::vector<T>& s) {
  s.assign(size_t(inner), T(0));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < inner; ++c) s[c] += Log ? g[r * inner + c] : g[r * inner + c] * y[r * inner + c];
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < inner; ++c) {
      int64_t i = r * inner + c;
      gx[i] = Log ? g[i] - nn::exp_poly(y[i]) * s[c] : y[i] * (g[i] - s[c]);
    }
}

template <class T, bool Log>
void softmax_backward_k(const KernelArgs& k) {
  const char* op = Log ? "log_softmax_backward" : "softmax_backward";
  nn::check_contig(k, op);
  const TensorView& g = k.input(0);
  const TensorView& y = k.input(1);
  FW_CHECK(g.numel() == y.numel(), op, ": grad and output sizes differ");
  Geom geo = geom_of(y, k.attrs->i(0), op);
  nn::check_numel(k.output(0), y.numel(), op, "grad_input");
  const T* gp = g.ptr<T>();
  const T* yp = y.ptr<T>();
  T* gx = k.output(0).ptr<T>();
  if (y.numel() == 0) return;
  const int64_t slab = geo.n * geo.inner;
  parallel_for(geo.outer, row_grain(slab), [&](int64_t b, int64_t e) {
    std::vector<T> s;
    for (int64_t r = b; r < e; ++r) {
      if (geo.inner == 1) {
        backward_row<T, Log>(gx + r * slab, gp + r * slab, yp + r * slab, geo.n);
      } else {
        backward_slab<T, Log>(gx + r * slab, gp + r * slab, yp + r * slab, geo.n, geo.inner, s);
      }
    }
  });
}

}  // namespace

FW_REGISTER_KERNELS(softmax) {
  using nn::contiguous_inputs;
  register_kernel("softmax", DType::f32, &contiguous_inputs<&softmax_k<float, false>>);
  register_kernel("softmax", DType::f64, &contiguous_inputs<&softmax_k<double, false>>);
  register_kernel("log_softmax", DType::f32, &contiguous_inputs<&softmax_k<float, true>>);
  register_kernel("log_softmax", DType::f64, &contiguous_inputs<&softmax_k<double, true>>);
  register_kernel("softmax_backward", DType::f32, &contiguous_inputs<&softmax_backward_k<float, false>>);
  register_kernel("softmax_backward", DType::f64, &contiguous_inputs<&softmax_backward_k<double, false>>);
  register_kernel("log_softmax_backward", DType::f32, &contiguous_inputs<&softmax_backward_k<float, true>>);
  register_kernel("log_softmax_backward", DType::f64, &contiguous_inputs<&softmax_backward_k<double, true>>);
}

}  // namespace fw
