// nn_common.h: row primitives shared by the NN kernel families (softmax, norms, attention,
// losses, dropout). Every helper works on one contiguous row and is written so the compiler
// vectorizes it without -ffast-math: reductions keep kLanes independent partial results
// (a fixed-width inner loop the SLP vectorizer turns into one vector), and exp for float is
// a Cephes-style polynomial instead of a libm call. Double rows use std::exp so float64
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

namespace fw {
namespace nn {

constexpr int kLanes = 16;

// exp(x) for float in ~2 ulp, vectorizable; exp(-inf) = 0, exp(+large) = +inf-ish clamp.
inline float exp_poly(float x) {
  x = std::min(std::max(x, -88.3762626647949f), 88.3762626647949f);
  float fx = std::floor(x * 1.44269504088896341f + 0.5f);
  float r = x - fx * 0.693359375f + fx * 2.12194440e-4f;
  float r2 = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r2 + r + 1.0f;
  int32_t n = int32_t(fx) + 127;
  n = n < 0 ? 0 : n;
  n <<= 23;
  float pow2;
  std::memcpy(&pow2, &n, sizeof(pow2));
  return y * pow2;
}
inline double exp_poly(double x) { return std::exp(x); }

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

// Copies a strided view into `buf` (row-major) and returns a contiguous view over it.
inline TensorView pack_contiguous(const TensorView& v, std::vector<char>& buf) {
  const size_t es = dtype_size(v.dtype);
  buf.resize(size_t(v.numel()) * es);
  TensorView c = make_view(buf.data(), v.dtype, v.ndim, v.shape);
  const char* src = static_cast<const char*>(v.data);
  int64_t idx[kMaxDims] = {};
  const int64_t n = v.numel();
  for (int64_t i = 0; i < n; ++i) {
    int64_t off = 0;
    for (int d = 0; d < v.ndim; ++d) off += idx[d] * v.strides[d];
    std::memcpy(buf.data() + size_t(i) * es, src + off * int64_t(es), es);
    for (int d = v.ndim - 1; d >= 0; --d) {
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
