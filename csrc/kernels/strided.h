// strided.h: small helpers for data-movement kernels (gather, scatter, index, sort, cat, ...)
// that address elements by N-d coordinates instead of running elementwise loops.
//
// Contract: views follow TensorView (element strides, possibly 0 or negative); coordinates
// are row-major over a given shape. Index tensors may be int64 or int32 and are read through
// read_index(). Nothing here allocates tensor memory or starts threads of its own.
#pragma once
#include <cstdint>
#include <algorithm>
#include <cstring>

#include "core/parallel.h"
#include "kernels/registry.h"

namespace fw {

// The element offset of batch matrix b of v: b row-major over v's batch dims (all but the
// last two), for kernels over batches of matrices (attention, LAPACK).
inline int64_t batch_offset(const TensorView& v, int64_t b) {
  int64_t off = 0;
  for (int d = v.ndim - 3; d >= 0; --d) {
    off += (b % v.shape[d]) * v.strides[d];
    b /= v.shape[d];
  }
  return off;
}

// The element offset (in elements) of coordinates idx in view v.
inline int64_t offset_of(const TensorView& v, const int64_t* idx) {
  int64_t off = 0;
  for (int d = 0; d < v.ndim; ++d) off += idx[d] * v.strides[d];
  return off;
}

// Row-major coordinates of flat position `flat` in `shape`.
inline void unravel(int64_t flat, int ndim, const int64_t* shape, int64_t* idx) {
  for (int d = ndim - 1; d >= 0; --d) {
    int64_t s = shape[d] > 0 ? shape[d] : 1;
    idx[d] = flat % s;
    flat /= s;
  }
}

// Advances row-major coordinates by one.
inline void next_coord(int ndim, const int64_t* shape, int64_t* idx) {
  for (int d = ndim - 1; d >= 0; --d) {
    if (++idx[d] < shape[d]) return;
    idx[d] = 0;
  }
}

// Calls f(idx) for every coordinate of `shape`, in parallel chunks of row-major order.
template <class F>
void for_each_coord(int ndim, const int64_t* shape, int64_t grain, const F& f) {
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) n *= shape[d];
  parallel_for(n, grain, [&](int64_t begin, int64_t end) {
    int64_t idx[kMaxDims] = {};
    unravel(begin, ndim, shape, idx);
    for (int64_t p = begin; p < end; ++p) {
      f(static_cast<const int64_t*>(idx));
      next_coord(ndim, shape, idx);
    }
  });
}

// Calls f(idx, n) for every row of `shape` (idx: coordinates with the last one 0, n: the
// last dim's size), in parallel; the caller loops over the last dim itself.
template <class F>
void for_each_row(int ndim, const int64_t* shape, int64_t grain, const F& f) {
  if (ndim == 0) {
    int64_t idx[1] = {0};
    f(static_cast<const int64_t*>(idx), int64_t(1));
    return;
  }
  const int64_t n = shape[ndim - 1];
  int64_t rows = 1;
  for (int d = 0; d < ndim - 1; ++d) rows *= shape[d];
  if (n == 0) return;
  parallel_for(rows, std::max<int64_t>(1, grain / n), [&](int64_t begin, int64_t end) {
    int64_t idx[kMaxDims] = {};
    unravel(begin, ndim - 1, shape, idx);
    for (int64_t r = begin; r < end; ++r) {
      f(static_cast<const int64_t*>(idx), n);
      next_coord(ndim - 1, shape, idx);
    }
  });
}

// Index tensors: int64 or int32.
inline void check_index_dtype(const TensorView& v, const char* op) {
  FW_CHECK(v.dtype == DType::i64 || v.dtype == DType::i32, op,
           "(): index tensors must be int64 or int32, got ", dtype_name(v.dtype));
}

inline int64_t read_index(const TensorView& v, int64_t off) {
  return v.dtype == DType::i64 ? v.ptr<int64_t>()[off] : int64_t(v.ptr<int32_t>()[off]);
}

// A view of v's elements moved by `offset` elements along dim `d`, with size `n` there.
inline TensorView narrow_view(const TensorView& v, int d, int64_t start, int64_t n) {
  TensorView r = v;
  r.data = static_cast<char*>(v.data) + start * v.strides[d] * int64_t(dtype_size(v.dtype));
  r.shape[d] = n;
  return r;
}

inline bool same_view(const TensorView& a, const TensorView& b) {
  if (a.data != b.data || a.ndim != b.ndim || a.dtype != b.dtype) return false;
  for (int d = 0; d < a.ndim; ++d)
    if (a.shape[d] != b.shape[d] || (a.shape[d] > 1 && a.strides[d] != b.strides[d])) return false;
  return true;
}

}  // namespace fw
