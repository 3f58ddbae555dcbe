// sort.cpp: sort (values + int64 indices, ascending or descending, always stable) and topk
// (the k largest or smallest along a dim, in sorted order) over one dim of a strided view.
//
// NaN orders like torch: above every number (last ascending, first descending). Rows (all
// coordinates but dim) are independent and run in parallel; each thread keeps its own
// permutation buffer.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "kernels/strided.h"

namespace fw {
namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

// a before b in ascending order (NaN last).
template <class T>
bool asc_less(T a, T b) {
  return a < b || (is_nan(b) && !is_nan(a));
}

// Calls f(c) per row: c holds the coordinates of every dim but `dim` (which is 0).
template <class F>
void for_each_row(const TensorView& x, int64_t dim, int64_t row_len, const F& f) {
  int64_t rows[kMaxDims];
  for (int d = 0; d < x.ndim; ++d) rows[d] = d == dim ? 1 : x.shape[d];
  for_each_coord(x.ndim, rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(row_len, 1)), f);
}

TensorView at_least_1d(TensorView v) {
  if (v.ndim == 0) {
    v.ndim = 1;
    v.shape[0] = 1;
    v.strides[0] = 0;
  }
  return v;
}

// The permutation `perm` of row `xp` (stride xs, length n) in the requested order; only the
// first k entries are ordered when k < n.
template <class T>
void order_row(const T* xp, int64_t xs, int64_t n, int64_t k, bool descending, std::vector<int64_t>& perm) {
  perm.resize(size_t(n));
  std::iota(perm.begin(), perm.end(), int64_t(0));
  auto cmp = [&](int64_t i, int64_t j) {
    T a = xp[i * xs], b = xp[j * xs];
    return descending ? asc_less(b, a) : asc_less(a, b);
  };
  if (k >= n) {
    std::stable_sort(perm.begin(), perm.end(), cmp);
  } else {
    auto tie = [&](int64_t i, int64_t j) { return cmp(i, j) || (!cmp(j, i) && i < j); };
    std::partial_sort(perm.begin(), perm.begin() + k, perm.end(), tie);
  }
}

// Writes the first k entries of perm as values/indices along dim at coordinates c.
template <class T>
void write_row(const TensorView& x, const TensorView& values, const TensorView& indices, int64_t dim,
               const int64_t* c, const std::vector<int64_t>& perm, int64_t k) {
  const T* xp = x.ptr<T>() + offset_of(x, c);
  T* vp = values.ptr<T>() + offset_of(values, c);
  int64_t* ip = indices.ptr<int64_t>() + offset_of(indices, c);
  const int64_t xs = x.strides[dim], vs = values.strides[dim], is = indices.strides[dim];
  for (int64_t i = 0; i < k; ++i) {
    int64_t p = perm[size_t(i)];
    vp[i * vs] = xp[p * xs];
    ip[i * is] = p;
  }
}

void check_outputs(const TensorView& x, const TensorView& values, const TensorView& indices, int64_t dim,
                   int64_t k, const char* op) {
  FW_CHECK(dim >= 0 && dim < x.ndim, op, "(): dim ", dim, " out of range");
  FW_CHECK(indices.dtype == DType::i64, op, "(): indices must be int64");
  FW_CHECK(values.ndim == x.ndim && indices.ndim == x.ndim, op, "(): output rank mismatch");
  for (int d = 0; d < x.ndim; ++d) {
    int64_t want = d == dim ? k : x.shape[d];
    FW_CHECK(values.shape[d] == want && indices.shape[d] == want, op, "(): output shape mismatch");
  }
}

// sort(dim=#0, descending=#1, stable=#2): values and indices (a stable sort either way).
template <class T>
void sort_k(const KernelArgs& a) {
  TensorView x = at_least_1d(a.input(0));
  TensorView values = at_least_1d(a.output(0));
  TensorView indices = at_least_1d(a.output(1));
  const int64_t dim = a.attrs->i(0);
  const bool descending = a.attrs->i(1) != 0;
  FW_CHECK(dim >= 0 && dim < x.ndim, "sort(): dim ", dim, " out of range");
  check_outputs(x, values, indices, dim, x.shape[dim], "sort");
  const int64_t n = x.shape[dim];
  if (x.numel() == 0) return;
  for_each_row(x, dim, n, [&](const int64_t* c) {
    thread_local std::vector<int64_t> perm;
    order_row(x.ptr<T>() + offset_of(x, c), x.strides[dim], n, n, descending, perm);
    write_row<T>(x, values, indices, dim, c, perm, n);
  });
}

// topk(k=#0, dim=#1, largest=#2, sorted=#3): the k largest (or smallest) along dim, in
// order; ties keep the lower index first. Results are always sorted.
template <class T>
void topk_k(const KernelArgs& a) {
  TensorView x = at_least_1d(a.input(0));
  TensorView values = at_least_1d(a.output(0));
  TensorView indices = at_least_1d(a.output(1));
  const int64_t k = a.attrs->i(0), dim = a.attrs->i(1);
  const bool largest = a.attrs->i(2) != 0;
  FW_CHECK(dim >= 0 && dim < x.ndim, "topk(): dim ", dim, " out of range");
  const int64_t n = x.shape[dim];
  FW_CHECK(k >= 0 && k <= n, "topk(): selected index k out of range (k=", k, ", size ", n, ")");
  check_outputs(x, values, indices, dim, k, "topk");
  if (values.numel() == 0) return;
  for_each_row(x, dim, n, [&](const int64_t* c) {
    thread_local std::vector<int64_t> perm;
    order_row(x.ptr<T>() + offset_of(x, c), x.strides[dim], n, k, largest, perm);
    write_row<T>(x, values, indices, dim, c, perm, k);
  });
}

template <class T>
void register_all(DType dt) {
  register_kernel("sort", dt, &sort_k<T>);
  register_kernel("topk", dt, &topk_k<T>);
}

}  // namespace

FW_REGISTER_KERNELS(sort) {
  register_all<float>(DType::f32);
  register_all<double>(DType::f64);
  register_all<int32_t>(DType::i32);
  register_all<int64_t>(DType::i64);
  register_all<bool>(DType::b8);
}

}  // namespace fw
