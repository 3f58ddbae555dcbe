// reduce.cpp: reductions over a set of dims (sum, mean, prod, amax, amin, var, std,
// logsumexp, norm, all, any), single-dim value+index reductions (max, min, argmax, argmin)
// and scans (cumsum). The output holds the kept dims in order (keepdim only changes its
// shape, which the Python side sets); attribute #0 is the sorted list of reduced dims.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/loops.h"

namespace fw {
namespace {

// Splits a view into kept dims (outer) and reduced dims (inner), merging contiguous runs.
struct ReducePlan {
  int nk = 0, nr = 0;
  int64_t kshape[kMaxDims], kstride[kMaxDims];
  int64_t rshape[kMaxDims], rstride[kMaxDims];
  int64_t kept_numel = 1, red_numel = 1;

  ReducePlan(const TensorView& x, const std::vector<int64_t>& dims) {
    bool red[kMaxDims] = {};
    for (int64_t d : dims) {
      FW_CHECK(d >= 0 && d < std::max(x.ndim, 1), "reduce: dim ", d, " out of range for ", x.ndim, "-d input");
      if (x.ndim > 0) red[d] = true;
    }
    for (int d = 0; d < x.ndim; ++d) {
      if (red[d]) push(rshape, rstride, nr, x.shape[d], x.strides[d]);
      else push(kshape, kstride, nk, x.shape[d], x.strides[d]);
    }
    for (int i = 0; i < nk; ++i) kept_numel *= kshape[i];
    for (int i = 0; i < nr; ++i) red_numel *= rshape[i];
  }
  static void push(int64_t* shp, int64_t* st, int& n, int64_t s, int64_t stride) {
    if (s == 1) return;
    if (n > 0 && st[n - 1] == stride * s) {
      shp[n - 1] *= s;
      st[n - 1] = stride;
      return;
    }
    shp[n] = s;
    st[n] = stride;
    ++n;
  }
  int64_t kept_offset(int64_t o) const {
    int64_t off = 0;
    for (int d = nk - 1; d >= 0; --d) {
      off += (o % kshape[d]) * kstride[d];
      o /= kshape[d];
    }
    return off;
  }
  // Calls run(ptr, n, stride) for each run along the innermost reduced dim of the block at
  // `base` (one call per element of the outer reduced dims).
  template <class T, class F>
  void visit_runs(const T* base, F&& run) const {
    if (nr == 0) {
      run(base, int64_t(1), int64_t(1));
      return;
    }
    const int last = nr - 1;
    const int64_t outer = red_numel / std::max<int64_t>(rshape[last], 1);
    int64_t idx[kMaxDims] = {};
    for (int64_t r = 0; r < outer; ++r) {
      int64_t off = 0;
      for (int d = 0; d < last; ++d) off += idx[d] * rstride[d];
      run(base + off, rshape[last], rstride[last]);
      for (int d = last - 1; d >= 0; --d) {
        if (++idx[d] < rshape[d]) break;
        idx[d] = 0;
      }
    }
  }
  // Calls f(value) for every element of the reduced block at `base`, in row-major order.
  template <class T, class F>
  void visit(const T* base, F&& f) const {
    if (nr == 0) {
      f(base[0]);
      return;
    }
    if (nr == 1) {
      const int64_t s = rstride[0], n = rshape[0];
      if (s == 1) {
        for (int64_t i = 0; i < n; ++i) f(base[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) f(base[i * s]);
      }
      return;
    }
    int64_t idx[kMaxDims] = {};
    for (int64_t r = 0; r < red_numel; ++r) {
      int64_t off = 0;
      for (int d = 0; d < nr; ++d) off += idx[d] * rstride[d];
      f(base[off]);
      for (int d = nr - 1; d >= 0; --d) {
        if (++idx[d] < rshape[d]) break;
        idx[d] = 0;
      }
    }
  }
};

// Sum of a contiguous run with independent accumulators (a single running sum is one long
// dependency chain; this vectorizes).
template <class A, class T>
FW_TARGET_CLONES A sum_run(const T* __restrict x, int64_t n) {
  constexpr int kLanes = 16;
  A lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) lanes[l] += A(x[i + l]);
  A acc = 0;
  for (; i < n; ++i) acc += A(x[i]);
  for (int l = 0; l < kLanes; ++l) acc += lanes[l];
  return acc;
}

// Integers add and multiply in uint64_t: they wrap around like torch's int64 sum / prod /
// cumsum (two's complement), where int64_t overflow would be undefined behaviour.
template <class T> using acc_t = std::conditional_t<std::is_floating_point_v<T>, double, uint64_t>;

// Runs out[o] = finish(reduce over block o) for every kept index o, in parallel.
template <class T, class O, class BlockFn>
void reduce_each(const KernelArgs& k, const std::vector<int64_t>& dims, BlockFn block) {
  const TensorView& x = k.input(0);
  TensorView& out = k.output(0);
  FW_CHECK(out.is_contiguous(), "reduce: output must be contiguous");
  ReducePlan plan(x, dims);
  FW_CHECK(out.numel() == plan.kept_numel, "reduce: output has ", out.numel(), " elements, expected ",
           plan.kept_numel);
  const T* xp = x.ptr<T>();
  O* op = out.ptr<O>();
  int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(plan.red_numel, 1));
  parallel_for(plan.kept_numel, grain, [&](int64_t s, int64_t e) {
    for (int64_t o = s; o < e; ++o) op[o] = block(plan, xp + plan.kept_offset(o));
  });
}

template <class A, class T>
FW_TARGET_CLONES void accumulate_row(A* __restrict acc, const T* __restrict x, int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += A(x[j]);
}

// Sum over "outer" dims: the innermost kept dim is contiguous and every reduced dim is
// strided (e.g. x.sum(0) of a matrix, bias gradients, batch-norm statistics). Whole rows are
// added into a block of accumulators, so memory is read in order and the adds vectorize.
// Returns false when the layout does not fit (the caller then reduces per output).
template <class T, class O>
bool sum_outer(const KernelArgs& k, const std::vector<int64_t>& dims, double scale) {
  const TensorView& x = k.input(0);
  TensorView& out = k.output(0);
  ReducePlan p(x, dims);
  if (p.nk == 0 || p.nr == 0 || p.kstride[p.nk - 1] != 1 || !out.is_contiguous()) return false;
  if (out.numel() != p.kept_numel) return false;  // reduce_each reports it
  for (int d = 0; d < p.nr; ++d)
    if (p.rstride[d] == 1) return false;
  using A = acc_t<T>;
  const int64_t inner = p.kshape[p.nk - 1];
  const int64_t outer = p.kept_numel / inner;
  constexpr int64_t kBlock = 1024;
  const int64_t nblocks = (inner + kBlock - 1) / kBlock;
  const T* xp = x.ptr<T>();
  O* op = out.ptr<O>();
  parallel_for(outer * nblocks, 1, [&](int64_t s, int64_t e) {
    A acc[kBlock];
    for (int64_t t = s; t < e; ++t) {
      int64_t o = t / nblocks, j0 = (t % nblocks) * kBlock;
      int64_t n = std::min(kBlock, inner - j0);
      std::fill(acc, acc + n, A(0));
      const T* base = xp + p.kept_offset(o * inner) + j0;
      int64_t idx[kMaxDims] = {};
      for (int64_t r = 0; r < p.red_numel; ++r) {
        int64_t off = 0;
        for (int d = 0; d < p.nr; ++d) off += idx[d] * p.rstride[d];
        accumulate_row(acc, base + off, n);
        for (int d = p.nr - 1; d >= 0; --d) {
          if (++idx[d] < p.rshape[d]) break;
          idx[d] = 0;
        }
      }
      O* dst = op + o * inner + j0;
      for (int64_t j = 0; j < n; ++j) dst[j] = O(scale == 1.0 ? acc[j] : A(double(acc[j]) * scale));
    }
  });
  return true;
}

template <class T>
void sum_k(const KernelArgs& k) {
  using A = acc_t<T>;
  using O = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;
  if (sum_outer<T, O>(k, k.attrs->ints(0), 1.0)) return;
  reduce_each<T, O>(k, k.attrs->ints(0), [](const ReducePlan& p, const T* b) {
    A acc = 0;
    p.visit_runs(b, [&](const T* x, int64_t n, int64_t s) {
      if (s == 1) {
        acc += sum_run<A>(x, n);
      } else {
        for (int64_t i = 0; i < n; ++i) acc += A(x[i * s]);
      }
    });
    return O(acc);
  });
}

template <class T>
void mean_k(const KernelArgs& k) {
  {
    ReducePlan p(k.input(0), k.attrs->ints(0));
    if (p.red_numel > 0 && sum_outer<T, T>(k, k.attrs->ints(0), 1.0 / double(p.red_numel))) return;
  }
  reduce_each<T, T>(k, k.attrs->ints(0), [](const ReducePlan& p, const T* b) {
    double acc = 0;
    p.visit(b, [&](T v) { acc += double(v); });
    return T(acc / double(p.red_numel));
  });
}

template <class T>
void prod_k(const KernelArgs& k) {
  using A = acc_t<T>;
  using O = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;
  reduce_each<T, O>(k, k.attrs->ints(0), [](const ReducePlan& p, const T* b) {
    A acc = 1;
    p.visit(b, [&](T v) { acc *= A(v); });
    return O(acc);
  });
}

template <class T, bool IsMax>
void amax_k(const KernelArgs& k) {
  reduce_each<T, T>(k, k.attrs->ints(0), [](const ReducePlan& p, const T* b) {
    FW_CHECK(p.red_numel > 0, IsMax ? "amax" : "amin", ": cannot reduce over an empty dimension");
    T best = b[0];
    bool nan = false;
    p.visit(b, [&](T v) {
      if constexpr (std::is_floating_point_v<T>) {
        if (v != v) nan = true;
      }
      if (IsMax ? v > best : v < best) best = v;
    });
    if constexpr (std::is_floating_point_v<T>) {
      if (nan) return std::numeric_limits<T>::quiet_NaN();
    }
    return best;
  });
}

// var/std(dims=#0, correction=#1); two-pass for accuracy.
template <class T, bool Std>
void var_k(const KernelArgs& k) {
  double correction = k.attrs->f(1);
  reduce_each<T, T>(k, k.attrs->ints(0), [=](const ReducePlan& p, const T* b) {
    double mean = 0;
    p.visit(b, [&](T v) { mean += double(v); });
    mean /= double(p.red_numel);
    double ss = 0;
    p.visit(b, [&](T v) {
      double d = double(v) - mean;
      ss += d * d;
    });
    double denom = double(p.red_numel) - correction;
    double var = denom > 0 ? ss / denom : std::numeric_limits<double>::quiet_NaN();
    if (p.red_numel == 0) var = std::numeric_limits<double>::quiet_NaN();
    return T(Std ? std::sqrt(var) : var);
  });
}

template <class T>
void logsumexp_k(const KernelArgs& k) {
  reduce_each<T, T>(k, k.attrs->ints(0), [](const ReducePlan& p, const T* b) {
    double m = -std::numeric_limits<double>::infinity();
    p.visit(b, [&](T v) { m = std::max(m, double(v)); });
    if (std::isinf(m)) return T(m);
    if (m != m) return T(m);
    double s = 0;
    p.visit(b, [&](T v) { s += std::exp(double(v) - m); });
    return T(m + std::log(s));
  });
}

// norm(dims=#0, p=#1): p = 2, 1, inf, -inf, 0 or any positive number.
template <class T>
void norm_k(const KernelArgs& k) {
  double pw = k.attrs->f(1);
  reduce_each<T, T>(k, k.attrs->ints(0), [=](const ReducePlan& p, const T* b) {
    double acc = 0;
    if (std::isinf(pw)) {
      acc = pw > 0 ? 0 : std::numeric_limits<double>::infinity();
      p.visit(b, [&](T v) {
        double a = std::abs(double(v));
        acc = pw > 0 ? std::max(acc, a) : std::min(acc, a);
      });
      return T(acc);
    }
    if (pw == 2) {
      p.visit(b, [&](T v) { acc += double(v) * double(v); });
      return T(std::sqrt(acc));
    }
    if (pw == 1) {
      p.visit(b, [&](T v) { acc += std::abs(double(v)); });
      return T(acc);
    }
    if (pw == 0) {
      p.visit(b, [&](T v) { acc += v != T(0) ? 1.0 : 0.0; });
      return T(acc);
    }
    p.visit(b, [&](T v) { acc += std::pow(std::abs(double(v)), pw); });
    return T(std::pow(acc, 1.0 / pw));
  });
}

template <bool All>
void all_any_k(const KernelArgs& k) {
  reduce_each<bool, bool>(k, k.attrs->ints(0), [](const ReducePlan& p, const bool* b) {
    bool acc = All;
    p.visit(b, [&](bool v) { acc = All ? (acc && v) : (acc || v); });
    return acc;
  });
}

// max/min along one dim (attr #0): outputs (values, int64 indices). First index on ties,
// NaN wins (like torch).
template <class T, bool IsMax, bool WithValues>
void arg_reduce_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  int64_t dim = k.attrs->i(0);
  FW_CHECK(x.ndim == 0 || (dim >= 0 && dim < x.ndim), "max/min: dim out of range");
  std::vector<int64_t> dims = {dim};
  ReducePlan plan(x, x.ndim == 0 ? std::vector<int64_t>{} : dims);
  FW_CHECK(x.ndim == 0 || x.shape[dim] > 0, "max/min: cannot reduce over an empty dimension");
  int64_t n = x.ndim == 0 ? 1 : x.shape[dim];
  int64_t st = x.ndim == 0 ? 0 : x.strides[dim];
  TensorView& out_idx = k.output(WithValues ? 1 : 0);
  FW_CHECK(out_idx.dtype == DType::i64, "arg reduce: index output must be int64");
  FW_CHECK(out_idx.numel() == plan.kept_numel, "arg reduce: bad output size");
  if (WithValues)
    FW_CHECK(k.output(0).dtype == x.dtype && k.output(0).numel() == plan.kept_numel,
             "max/min: values output must have the input's dtype and ", plan.kept_numel, " elements, got ",
             k.output(0).numel());
  const T* xp = x.ptr<T>();
  int64_t* ip = out_idx.ptr<int64_t>();
  T* vp = WithValues ? k.output(0).ptr<T>() : nullptr;
  parallel_for(plan.kept_numel, std::max<int64_t>(1, 32768 / n), [&](int64_t s, int64_t e) {
    for (int64_t o = s; o < e; ++o) {
      const T* b = xp + plan.kept_offset(o);
      T best = b[0];
      int64_t bi = 0;
      for (int64_t i = 1; i < n; ++i) {
        T v = b[i * st];
        if constexpr (std::is_floating_point_v<T>) {
          if (best != best) break;
          if (v != v) {
            best = v;
            bi = i;
            break;
          }
        }
        if (IsMax ? v > best : v < best) {
          best = v;
          bi = i;
        }
      }
      ip[o] = bi;
      if (WithValues) vp[o] = best;
    }
  });
}

// The lines of x along dim (attr #0) with out's matching lines, split over the pool:
// line(o, xb, xs, ob, os, n) for the line of kept index o; out contiguous with x's shape
// (checked, naming op).
template <class T, class O, class Line>
void for_each_line(const KernelArgs& k, const TensorView& x, TensorView& out, const char* op, const Line& line) {
  int64_t dim = k.attrs->i(0);
  FW_CHECK(out.is_contiguous(), op, ": output must be contiguous");
  FW_CHECK(out.numel() == x.numel(), op, ": output has ", out.numel(), " elements, expected ", x.numel());
  if (x.ndim == 0) {
    line(int64_t(0), x.ptr<T>(), int64_t(0), out.ptr<O>(), int64_t(0), int64_t(1));
    return;
  }
  FW_CHECK(dim >= 0 && dim < x.ndim, op, ": dim out of range");
  FW_CHECK(out.ndim == x.ndim && std::equal(x.shape, x.shape + x.ndim, out.shape), op, ": output shape ",
           "differs from the input's");
  ReducePlan xplan(x, {dim});
  ReducePlan oplan(out, {dim});
  const int64_t n = x.shape[dim], xs = x.strides[dim], os = out.strides[dim];
  const T* xp = x.ptr<T>();
  O* op_ = out.ptr<O>();
  parallel_for(xplan.kept_numel, std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1)), [&](int64_t s, int64_t e) {
    for (int64_t o = s; o < e; ++o) line(o, xp + xplan.kept_offset(o), xs, op_ + oplan.kept_offset(o), os, n);
  });
}

// cumsum / cumprod along dim (attr #0); output contiguous, same shape (integers: int64,
// wrapping like torch's).
template <class T, bool Prod>
void scan_k(const KernelArgs& k) {
  using O = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;
  for_each_line<T, O>(k, k.input(0), k.output(0), Prod ? "cumprod" : "cumsum",
                      [](int64_t, const T* b, int64_t xs, O* ob, int64_t os, int64_t n) {
                        acc_t<T> acc = Prod ? 1 : 0;
                        for (int64_t i = 0; i < n; ++i) {
                          if constexpr (Prod) acc *= acc_t<T>(b[i * xs]);
                          else acc += acc_t<T>(b[i * xs]);
                          ob[i * os] = O(acc);
                        }
                      });
}

// cumprod_backward(x, grad_output; dim=#0) -> grad_input, exact where x has zeros:
// dL/dx_i = P_i * S_i with P_i = x_0 ... x_{i-1} and S_i = g_i + x_{i+1} * S_{i+1} (S_{n-1} =
// g_{n-1}), i.e. the sum over j >= i of g_j times the product of x_k for k <= j, k != i.
// (The usual reverse cumsum of g * y divided by x is NaN at a zero.)
template <class T>
void cumprod_backward_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  const TensorView& g = k.input(1);
  FW_CHECK(g.dtype == x.dtype && g.ndim == x.ndim && std::equal(g.shape, g.shape + g.ndim, x.shape),
           "cumprod_backward: grad_output must have the input's dtype and shape");
  const bool scalar = x.ndim == 0;
  const ReducePlan gplan(g, {scalar ? int64_t(0) : k.attrs->i(0)});
  const int64_t gs = scalar ? 0 : g.strides[k.attrs->i(0)];
  const T* gp = g.ptr<T>();
  for_each_line<T, T>(k, x, k.output(0), "cumprod_backward",
                      [&](int64_t o, const T* b, int64_t xs, T* ob, int64_t os, int64_t n) {
                        const T* gb = gp + (scalar ? 0 : gplan.kept_offset(o));
                        T acc = 0;
                        for (int64_t i = n - 1; i >= 0; --i) {  // ob[i] = S_i
                          acc = gb[i * gs] + (i + 1 < n ? b[(i + 1) * xs] * acc : T(0));
                          ob[i * os] = acc;
                        }
                        T pre = 1;
                        for (int64_t i = 0; i < n; ++i) {  // times P_i
                          ob[i * os] *= pre;
                          pre *= b[i * xs];
                        }
                      });
}

template <class T>
void cumsum_k(const KernelArgs& k) { scan_k<T, false>(k); }
template <class T>
void cumprod_k(const KernelArgs& k) { scan_k<T, true>(k); }

}  // namespace

FW_REGISTER_KERNELS(reduce) {
  using D = DType;
#define REG4(NAME, TPL)                               \
  register_kernel(NAME, D::f32, &TPL<float>);         \
  register_kernel(NAME, D::f64, &TPL<double>);        \
  register_kernel(NAME, D::i32, &TPL<int32_t>);       \
  register_kernel(NAME, D::i64, &TPL<int64_t>);
#define REGF(NAME, TPL)                               \
  register_kernel(NAME, D::f32, &TPL<float>);         \
  register_kernel(NAME, D::f64, &TPL<double>);
  REG4("sum", sum_k)
  REG4("prod", prod_k)
  REG4("cumsum", cumsum_k)
  REG4("cumprod", cumprod_k)
  REGF("cumprod_backward", cumprod_backward_k)
  REGF("mean", mean_k)
  REGF("logsumexp", logsumexp_k)
  REGF("norm", norm_k)
#undef REG4
#undef REGF
  for (auto [dt, fmax, fmin] : {
           std::tuple{D::f32, &amax_k<float, true>, &amax_k<float, false>},
           std::tuple{D::f64, &amax_k<double, true>, &amax_k<double, false>},
       }) {
    register_kernel("amax", dt, fmax);
    register_kernel("amin", dt, fmin);
  }
  register_kernel("amax", D::i32, &amax_k<int32_t, true>);
  register_kernel("amax", D::i64, &amax_k<int64_t, true>);
  register_kernel("amin", D::i32, &amax_k<int32_t, false>);
  register_kernel("amin", D::i64, &amax_k<int64_t, false>);
  register_kernel("var", D::f32, &var_k<float, false>);
  register_kernel("var", D::f64, &var_k<double, false>);
  register_kernel("std", D::f32, &var_k<float, true>);
  register_kernel("std", D::f64, &var_k<double, true>);
  register_kernel("all", D::b8, &all_any_k<true>);
  register_kernel("any", D::b8, &all_any_k<false>);
#define REG_ARG(NAME, ISMAX, VALS)                                   \
  register_kernel(NAME, D::f32, &arg_reduce_k<float, ISMAX, VALS>);  \
  register_kernel(NAME, D::f64, &arg_reduce_k<double, ISMAX, VALS>); \
  register_kernel(NAME, D::i32, &arg_reduce_k<int32_t, ISMAX, VALS>); \
  register_kernel(NAME, D::i64, &arg_reduce_k<int64_t, ISMAX, VALS>);
  REG_ARG("max", true, true)
  REG_ARG("min", false, true)
  REG_ARG("argmax", true, false)
  REG_ARG("argmin", false, false)
#undef REG_ARG
}

}  // namespace fw
