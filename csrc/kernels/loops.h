// loops.h: strided N-d iteration shared by elementwise kernels.
//
// An ElementwiseIter holds the output and the inputs broadcast to the output's shape (size-1
// or missing leading dims get stride 0), with byte strides so operands may differ in dtype.
// Dims that are contiguous across every operand are merged, so a contiguous op is one flat
// loop. for_each() splits the flat index range across the thread pool and calls
// inner(ptrs, byte_strides, n) for runs along the last merged dim.
#pragma once
#include <cstring>

#include "core/parallel.h"
#include "kernels/registry.h"

namespace fw {

template <int N>  // N = number of operands, output first
struct ElementwiseIter {
  int ndim = 0;
  int64_t shape[kMaxDims];
  int64_t strides[N][kMaxDims];  // bytes
  char* data[N];

  ElementwiseIter(const TensorView& out, const TensorView* const* ins) {
    const TensorView* ops[N];
    ops[0] = &out;
    for (int k = 1; k < N; ++k) ops[k] = ins[k - 1];
    int nd = out.ndim;
    for (int k = 0; k < N; ++k) {
      data[k] = static_cast<char*>(ops[k]->data);
      FW_CHECK(ops[k]->ndim <= nd, "elementwise: operand #", k, " has ", ops[k]->ndim,
               " dims, output has ", nd);
    }
    // Broadcast every operand to out's shape, right-aligned.
    int64_t full_shape[kMaxDims];
    int64_t full_strides[N][kMaxDims];
    for (int d = 0; d < nd; ++d) full_shape[d] = out.shape[d];
    for (int k = 0; k < N; ++k) {
      const TensorView& v = *ops[k];
      size_t es = dtype_size(v.dtype);
      int off = nd - v.ndim;
      for (int d = 0; d < nd; ++d) {
        if (d < off) {
          full_strides[k][d] = 0;
        } else {
          int64_t s = v.shape[d - off];
          FW_CHECK(s == full_shape[d] || s == 1, "elementwise: operand #", k, " dim ", d - off,
                   " has size ", s, ", cannot broadcast to ", full_shape[d]);
          full_strides[k][d] = (s == 1 && full_shape[d] != 1) ? 0 : v.strides[d - off] * int64_t(es);
        }
      }
    }
    // Drop size-1 dims and merge dims that are contiguous for all operands.
    ndim = 0;
    for (int d = 0; d < nd; ++d) {
      if (full_shape[d] == 1) continue;
      if (ndim > 0) {
        bool mergeable = true;
        for (int k = 0; k < N; ++k)
          if (strides[k][ndim - 1] != full_strides[k][d] * full_shape[d]) mergeable = false;
        if (mergeable) {
          shape[ndim - 1] *= full_shape[d];
          for (int k = 0; k < N; ++k) strides[k][ndim - 1] = full_strides[k][d];
          continue;
        }
      }
      shape[ndim] = full_shape[d];
      for (int k = 0; k < N; ++k) strides[k][ndim] = full_strides[k][d];
      ++ndim;
    }
    if (ndim == 0) {  // a single element
      ndim = 1;
      shape[0] = 1;
      for (int k = 0; k < N; ++k) strides[k][0] = 0;
    }
  }

  int64_t numel() const {
    int64_t n = 1;
    for (int d = 0; d < ndim; ++d) n *= shape[d];
    return n;
  }

  template <class Inner>
  void for_each(const Inner& inner, int64_t grain = 32768) const {
    int64_t total = numel();
    if (total == 0) return;
    parallel_for(total, grain, [&](int64_t begin, int64_t end) { run_range(begin, end, inner); });
  }

 private:
  template <class Inner>
  void run_range(int64_t begin, int64_t end, const Inner& inner) const {
    const int last = ndim - 1;
    int64_t idx[kMaxDims];
    int64_t rem = begin;
    for (int d = last; d >= 0; --d) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
    }
    int64_t inner_strides[N];
    for (int k = 0; k < N; ++k) inner_strides[k] = strides[k][last];
    int64_t pos = begin;
    while (pos < end) {
      char* ptrs[N];
      for (int k = 0; k < N; ++k) {
        int64_t off = 0;
        for (int d = 0; d < ndim; ++d) off += idx[d] * strides[k][d];
        ptrs[k] = data[k] + off;
      }
      int64_t n = std::min(shape[last] - idx[last], end - pos);
      inner(ptrs, inner_strides, n);
      pos += n;
      idx[last] += n;
      for (int d = last; d > 0 && idx[d] >= shape[d]; --d) {
        idx[d] = 0;
        ++idx[d - 1];
      }
    }
  }
};

// ---- typed inner loops (vectorized when strides are unit or zero) ----

template <class O, class A, class F>
FW_TARGET_CLONES void unary_contig(O* __restrict o, const A* __restrict a, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
}

template <class O, class A, class B, class F>
FW_TARGET_CLONES void binary_contig(O* __restrict o, const A* __restrict a, const B* __restrict b,
                                    int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
}

template <class O, class A, class B, class F>
FW_TARGET_CLONES void binary_scalar_b(O* __restrict o, const A* __restrict a, B b, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b);
}

template <class O, class A, class B, class F>
FW_TARGET_CLONES void binary_scalar_a(O* __restrict o, A a, const B* __restrict b, int64_t n, F f) {
  for (int64_t i = 0; i < n; ++i) o[i] = f(a, b[i]);
}

// Each operand's dtype must have the element size the loop reads and writes (a mismatch can
// only come from an inconsistent graph, e.g. a crafted model file).
template <class... Ts, class... Views>
void check_item_sizes(const Views&... views) {
  const size_t sizes[] = {sizeof(Ts)...};
  const TensorView* vs[] = {&views...};
  for (size_t i = 0; i < sizeof...(Ts); ++i)
    FW_CHECK(sizes[i] == dtype_size(vs[i]->dtype), "elementwise: operand #", i, " is ", dtype_name(vs[i]->dtype),
             ", the kernel expects a ", sizes[i], "-byte type");
}

// out = f(a) over views (a broadcast to out).
template <class O, class A, class F>
void unary_kernel(const TensorView& out, const TensorView& a, F f) {
  check_item_sizes<O, A>(out, a);
  const TensorView* ins[1] = {&a};
  ElementwiseIter<2> it(out, ins);
  it.for_each([&](char** p, const int64_t* s, int64_t n) {
    if (s[0] == sizeof(O) && s[1] == sizeof(A)) {
      unary_contig(reinterpret_cast<O*>(p[0]), reinterpret_cast<const A*>(p[1]), n, f);
    } else {
      for (int64_t i = 0; i < n; ++i)
        *reinterpret_cast<O*>(p[0] + i * s[0]) = f(*reinterpret_cast<const A*>(p[1] + i * s[1]));
    }
  });
}

// out = f(a, b) over views (a, b broadcast to out).
template <class O, class A, class B, class F>
void binary_kernel(const TensorView& out, const TensorView& a, const TensorView& b, F f) {
  check_item_sizes<O, A, B>(out, a, b);
  const TensorView* ins[2] = {&a, &b};
  ElementwiseIter<3> it(out, ins);
  it.for_each([&](char** p, const int64_t* s, int64_t n) {
    O* o = reinterpret_cast<O*>(p[0]);
    if (s[0] == sizeof(O)) {
      if (s[1] == sizeof(A) && s[2] == sizeof(B)) {
        binary_contig(o, reinterpret_cast<const A*>(p[1]), reinterpret_cast<const B*>(p[2]), n, f);
        return;
      }
      if (s[1] == sizeof(A) && s[2] == 0) {
        binary_scalar_b(o, reinterpret_cast<const A*>(p[1]), *reinterpret_cast<const B*>(p[2]), n, f);
        return;
      }
      if (s[1] == 0 && s[2] == sizeof(B)) {
        binary_scalar_a(o, *reinterpret_cast<const A*>(p[1]), reinterpret_cast<const B*>(p[2]), n, f);
        return;
      }
    }
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<O*>(p[0] + i * s[0]) =
          f(*reinterpret_cast<const A*>(p[1] + i * s[1]), *reinterpret_cast<const B*>(p[2] + i * s[2]));
  });
}

// out = f(a, b, c) over views, generic strided loop.
template <class O, class A, class B, class C, class F>
void ternary_kernel(const TensorView& out, const TensorView& a, const TensorView& b,
                    const TensorView& c, F f) {
  check_item_sizes<O, A, B, C>(out, a, b, c);
  const TensorView* ins[3] = {&a, &b, &c};
  ElementwiseIter<4> it(out, ins);
  it.for_each([&](char** p, const int64_t* s, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
      *reinterpret_cast<O*>(p[0] + i * s[0]) = f(*reinterpret_cast<const A*>(p[1] + i * s[1]),
                                                  *reinterpret_cast<const B*>(p[2] + i * s[2]),
                                                  *reinterpret_cast<const C*>(p[3] + i * s[3]));
  });
}

// out <- in for same-dtype views where the output's fastest dim is strided in the input but
// another dim is contiguous there (a transpose): copies 32x32 tiles so both sides are read
// and written along cache lines. Returns false when the layout is not a transpose.
template <class T>
bool transpose_copy(const TensorView& out, const TensorView& in) {
  const TensorView* ins[1] = {&in};
  ElementwiseIter<2> it(out, ins);
  const int L = it.ndim - 1;
  const int64_t es = int64_t(sizeof(T));
  if (L < 1 || it.strides[0][L] != es || it.strides[1][L] == es) return false;
  int q = -1;
  for (int d = 0; d < L; ++d)
    if (it.strides[1][d] == es) q = d;
  if (q < 0 || it.shape[q] < 8 || it.shape[L] < 8) return false;
  // outer dims: all but q and L
  int od[kMaxDims], no = 0;
  int64_t outer = 1;
  for (int d = 0; d < L; ++d)
    if (d != q) {
      od[no++] = d;
      outer *= it.shape[d];
    }
  constexpr int64_t B = 32;
  const int64_t nq = it.shape[q], nl = it.shape[L];
  const int64_t tq = (nq + B - 1) / B, tl = (nl + B - 1) / B;
  const int64_t dq = it.strides[0][q], dl = es, sq = es, sl = it.strides[1][L];
  parallel_for(outer * tq * tl, 4, [&](int64_t s, int64_t e) {
    for (int64_t t = s; t < e; ++t) {
      int64_t o = t / (tq * tl), rem = t % (tq * tl);
      int64_t q0 = (rem / tl) * B, l0 = (rem % tl) * B;
      int64_t doff = 0, soff = 0, r = o;
      for (int k = no - 1; k >= 0; --k) {
        int64_t i = r % it.shape[od[k]];
        r /= it.shape[od[k]];
        doff += i * it.strides[0][od[k]];
        soff += i * it.strides[1][od[k]];
      }
      char* dbase = it.data[0] + doff;
      const char* sbase = it.data[1] + soff;
      int64_t q1 = std::min(q0 + B, nq), l1 = std::min(l0 + B, nl);
      for (int64_t i = q0; i < q1; ++i)
        for (int64_t j = l0; j < l1; ++j)
          *reinterpret_cast<T*>(dbase + i * dq + j * dl) = *reinterpret_cast<const T*>(sbase + i * sq + j * sl);
    }
  });
  return true;
}

// Calls f.template operator()<T>() for the C++ type of dtype `dt`.
template <class F>
void dispatch_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); break;
    case DType::f64: f(double{}); break;
    case DType::i32: f(int32_t{}); break;
    case DType::i64: f(int64_t{}); break;
    case DType::b8: f(bool{}); break;
  }
}

}  // namespace fw
