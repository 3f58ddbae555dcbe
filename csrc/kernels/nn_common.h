// nn_common.h: row primitives shared by the NN kernel families (softmax, norms, attention,
// losses, dropout). Every helper works on one contiguous row and is written so the compiler
// vectorizes it without -ffast-math: reductions keep kLanes independent partial results
// (a fixed-width inner loop the SLP vectorizer turns into one vector), and exp for float is
// vec_math.h's polynomial instead of a libm call. Double rows use std::exp so float64
// results stay accurate to a few ulps (they are the finite-difference oracle in the tests).
//
// Also the counter-based RNG used by dropout and attention dropout: the mask bit of element
// i depends only on (seed, i), so backward regenerates the same mask and results do not
// depend on the thread count.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "core/error.h"
#include "kernels/registry.h"
#include "kernels/vec_math.h"

namespace fw {
namespace nn {

constexpr int kLanes = 16;

// exp(x): the vectorizable float polynomial of vec_math.h (std::exp for double).
inline float exp_poly(float x) { return vm::exp(x); }
inline double exp_poly(double x) { return vm::exp(x); }

template <class T>
FW_TARGET_CLONES T row_max(const T* __restrict x, int64_t n) {
  T acc[kLanes];
  for (int j = 0; j < kLanes; ++j) acc[j] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
  T m = -std::numeric_limits<T>::infinity();
  for (int j = 0; j < kLanes; ++j) m = acc[j] > m ? acc[j] : m;
  for (; i < n; ++i) m = x[i] > m ? x[i] : m;
  return m;
}

template <class T>
FW_TARGET_CLONES T row_sum(const T* __restrict x, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += x[i + j];
  T s = 0;
  for (; i < n; ++i) s += x[i];
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// sum_i a[i] * b[i]
template <class T>
FW_TARGET_CLONES T row_dot(const T* __restrict a, const T* __restrict b, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  T s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// sum_i (x[i] - m)^2
template <class T>
FW_TARGET_CLONES T row_sq_dev(const T* __restrict x, T m, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      T d = x[i + j] - m;
      acc[j] += d * d;
    }
  T s = 0;
  for (; i < n; ++i) s += (x[i] - m) * (x[i] - m);
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// o[i] = exp(x[i] - m); returns the sum of o. o may alias x.
template <class T>
FW_TARGET_CLONES T row_exp_sum(T* o, const T* x, T m, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) {
      T e = exp_poly(x[i + j] - m);
      o[i + j] = e;
      acc[j] += e;
    }
  T s = 0;
  for (; i < n; ++i) {
    T e = exp_poly(x[i] - m);
    o[i] = e;
    s += e;
  }
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// sum_i exp(x[i] - m), without storing.
template <class T>
FW_TARGET_CLONES T row_exp_sum_only(const T* __restrict x, T m, int64_t n) {
  T acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) acc[j] += exp_poly(x[i + j] - m);
  T s = 0;
  for (; i < n; ++i) s += exp_poly(x[i] - m);
  for (int j = 0; j < kLanes; ++j) s += acc[j];
  return s;
}

// o[i] = x[i] * s (o may alias x)
template <class T>
FW_TARGET_CLONES void row_scale(T* o, const T* x, T s, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] * s;
}

// o[i] = x[i] + c
template <class T>
FW_TARGET_CLONES void row_add(T* __restrict o, const T* __restrict x, T c, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] + c;
}

// ---- counter-based RNG (splitmix64 finalizer over seed and element index) ----

inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) from (seed, counter).
inline double uniform01(uint64_t seed, uint64_t i) {
  return double(mix64(seed * 0xD1B54A32D192ED03ull + i) >> 11) * (1.0 / 9007199254740992.0);
}

// Dropout keep bit for element i: kept with probability 1 - p.
inline bool keep_bit(uint64_t seed, uint64_t i, double p) { return uniform01(seed, i) >= p; }

// Every non-empty input and output of the kernel is contiguous (the Python side passes
// x.contiguous()); empty views are exempt (numpy gives them arbitrary strides).
inline void check_contig(const KernelArgs& k, const char* op) {
  for (int i = 0; i < k.n_in; ++i)
    FW_CHECK(!k.has_input(i) || k.in[i].numel() == 0 || k.in[i].is_contiguous(), op, ": input #", i,
             " must be contiguous");
  for (int i = 0; i < k.n_out; ++i)
    FW_CHECK(k.out[i].numel() == 0 || k.out[i].is_contiguous(), op, ": outputs must be contiguous");
}

// A view a kernel indexes as a flat array must hold exactly `n` elements (a model file may
// give any shapes: the Python OpDef's inference is not there to guarantee them).
inline void check_numel(const TensorView& v, int64_t n, const char* op, const char* what) {
  FW_CHECK(v.numel() == n, op, ": ", what, " has ", v.numel(), " elements, expected ", n);
}

// Copies a strided view into `buf` (row-major) and returns a contiguous view over it.
// Rows along the last dim are copied in one inner loop (memcpy when they are contiguous).
inline TensorView pack_contiguous(const TensorView& v, std::vector<char>& buf) {
  const int64_t es = int64_t(dtype_size(v.dtype));
  buf.resize(size_t(v.numel() * es));
  TensorView c = make_view(buf.data(), v.dtype, v.ndim, v.shape);
  if (v.numel() == 0) return c;
  const char* src = static_cast<const char*>(v.data);
  if (v.ndim == 0) {
    std::memcpy(buf.data(), src, size_t(es));
    return c;
  }
  const int last = v.ndim - 1;
  const int64_t n = v.shape[last], st = v.strides[last] * es, rows = v.numel() / n;
  int64_t idx[kMaxDims] = {};
  char* dst = buf.data();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off = 0;
    for (int d = 0; d < last; ++d) off += idx[d] * v.strides[d];
    const char* row = src + off * es;
    if (st == es) {
      std::memcpy(dst, row, size_t(n * es));
    } else {
      for (int64_t j = 0; j < n; ++j) std::memcpy(dst + j * es, row + j * st, size_t(es));
    }
    dst += n * es;
    for (int d = last - 1; d >= 0; --d) {
      if (++idx[d] < v.shape[d]) break;
      idx[d] = 0;
    }
  }
  return c;
}

// Kernel wrapper: runs Fn with every non-contiguous input packed into a contiguous copy, so
// the kernels below may assume contiguous inputs even when a graph hands them views (an
// expand whose clone a pass removed). Inputs whose bit is set in `Keep` are passed as they
// are (the kernel handles their strides, or writes into them).
template <void (*Fn)(const KernelArgs&), unsigned Keep = 0>
void contiguous_inputs(const KernelArgs& k) {
  bool all = true;
  for (int i = 0; i < k.n_in; ++i)
    if (k.has_input(i) && !((Keep >> i) & 1u) && k.in[i].numel() > 0 && !k.in[i].is_contiguous()) all = false;
  if (all) {
    Fn(k);
    return;
  }
  std::vector<TensorView> views(k.in, k.in + k.n_in);
  std::vector<std::vector<char>> bufs(size_t(k.n_in));
  for (int i = 0; i < k.n_in; ++i)
    if (k.has_input(i) && !((Keep >> i) & 1u) && k.in[i].numel() > 0 && !k.in[i].is_contiguous())
      views[size_t(i)] = pack_contiguous(k.in[i], bufs[size_t(i)]);
  KernelArgs k2 = k;
  k2.in = views.data();
  Fn(k2);
}

// Reduction codes shared with the Python side (torch's enum: none, mean, sum).
enum Reduction : int64_t { kNone = 0, kMean = 1, kSum = 2 };

}  // namespace nn
}  // namespace fw
