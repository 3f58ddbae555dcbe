// movement.cpp: data-movement kernels that need no index tensors: cat, flip, roll, repeat,
// tril and triu. Most build strided views (offset data, negative strides, sub-ranges) of
// input and output and copy between them with the elementwise loop, so strided inputs and
// the thread pool come for free.
#include <algorithm>
#include <vector>

#include "kernels/loops.h"
#include "kernels/strided.h"

namespace fw {
namespace {

template <class T>
void copy_view_into(const TensorView& dst, const TensorView& src) {
  if (dst.numel() == 0) return;
  unary_kernel<T, T>(dst, src, [](T v) { return v; });
}

// cat(inputs t_0..t_{n-1}; dim=#0): the inputs one after another along dim.
template <class T>
void cat_k(const KernelArgs& a) {
  TensorView& out = a.output(0);
  const int64_t dim = a.attrs->i(0);
  FW_CHECK(dim >= 0 && dim < out.ndim, "cat(): dim ", dim, " out of range");
  int64_t offset = 0;
  for (int i = 0; i < a.n_in; ++i) {
    const TensorView& x = a.input(i);
    FW_CHECK(x.ndim == out.ndim && x.dtype == out.dtype, "cat(): input #", i, " does not match the output");
    for (int d = 0; d < x.ndim; ++d)
      FW_CHECK(d == dim || x.shape[d] == out.shape[d], "cat(): Sizes of tensors must match except in dimension ",
               dim, ". Expected size ", out.shape[d], " but got size ", x.shape[d], " for tensor number ", i,
               " in the list.");
    FW_CHECK(offset + x.shape[dim] <= out.shape[dim], "cat(): output too small");
    copy_view_into<T>(narrow_view(out, int(dim), offset, x.shape[dim]), x);
    offset += x.shape[dim];
  }
  FW_CHECK(offset == out.shape[dim], "cat(): output size ", out.shape[dim], " != total input size ", offset);
}

// flip(dims=#0): x read backwards along dims.
template <class T>
void flip_k(const KernelArgs& a) {
  TensorView v = a.input(0);
  for (int64_t d : a.attrs->ints(0)) {
    FW_CHECK(d >= 0 && d < v.ndim, "flip(): dim ", d, " out of range");
    if (v.shape[d] == 0) continue;
    v.data = static_cast<char*>(v.data) + (v.shape[d] - 1) * v.strides[d] * int64_t(sizeof(T));
    v.strides[d] = -v.strides[d];
  }
  copy_view_into<T>(a.output(0), v);
}

// roll(shifts=#0, dims=#1): out[c] = x[c - shift mod size] along each (distinct) dim. Each
// rolled dim splits into two blocks, so this is 2^len(dims) block copies.
template <class T>
void roll_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  const TensorView& out = a.output(0);
  const auto& shifts = a.attrs->ints(0);
  const auto& dims = a.attrs->ints(1);
  FW_CHECK(shifts.size() == dims.size() && !dims.empty() && dims.size() <= size_t(kMaxDims),
           "roll(): shifts and dims must have the same nonzero length");
  FW_CHECK(out.ndim == x.ndim, "roll(): output rank mismatch");
  for (int d = 0; d < x.ndim; ++d) FW_CHECK(out.shape[d] == x.shape[d], "roll(): output shape mismatch");
  for (size_t i = 0; i < dims.size(); ++i) {
    FW_CHECK(dims[i] >= 0 && dims[i] < x.ndim, "roll(): dim ", dims[i], " out of range");  // before int(dim)
    for (size_t j = 0; j < i; ++j) FW_CHECK(dims[i] != dims[j], "roll(): dim ", dims[i], " given twice");
  }
  if (x.numel() == 0) return;
  const size_t k = dims.size();
  for (size_t mask = 0; mask < (size_t(1) << k); ++mask) {
    TensorView src = x, dst = out;
    bool empty = false;
    for (size_t j = 0; j < k; ++j) {
      int d = int(dims[j]);
      FW_CHECK(d >= 0 && d < x.ndim, "roll(): dim ", d, " out of range");
      const int64_t n = x.shape[d], s = ((shifts[j] % n) + n) % n;
      if (mask >> j & 1) {  // out[0:s] <- x[n-s:n]
        src = narrow_view(src, d, n - s, s);
        dst = narrow_view(dst, d, 0, s);
      } else {  // out[s:n] <- x[0:n-s]
        src = narrow_view(src, d, 0, n - s);
        dst = narrow_view(dst, d, s, n - s);
      }
      empty = empty || src.shape[d] == 0;
    }
    if (!empty) copy_view_into<T>(dst, src);
  }
}

// repeat(repeats=#0): x (already of out's rank) tiled repeats[d] times along every dim d.
template <class T>
void repeat_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  const TensorView& out = a.output(0);
  const auto& reps = a.attrs->ints(0);
  FW_CHECK(x.ndim == out.ndim && reps.size() == size_t(x.ndim), "repeat(): rank mismatch");
  for (int d = 0; d < x.ndim; ++d) {
    int64_t want = 0;
    FW_CHECK(reps[size_t(d)] >= 0 && !__builtin_mul_overflow(x.shape[d], reps[size_t(d)], &want) &&
                 out.shape[d] == want, "repeat(): output shape mismatch");
  }
  if (out.numel() == 0) return;
  const T* xp = x.ptr<T>();
  T* op = out.ptr<T>();
  const int last = out.ndim - 1;
  for_each_row(out.ndim, out.shape, 16384, [&](const int64_t* c, int64_t n) {
    int64_t off = 0;
    for (int d = 0; d < last; ++d) off += (c[d] % x.shape[d]) * x.strides[d];
    T* dst = op + offset_of(out, c);
    if (last < 0) {
      *dst = xp[off];
      return;
    }
    const int64_t xn = x.shape[last], xs = x.strides[last], os = out.strides[last];
    for (int64_t j = 0, k = 0; j < n; ++j, k = k + 1 == xn ? 0 : k + 1) dst[j * os] = xp[off + k * xs];
  });
}

// tril / triu (diagonal=#0) over the last two dims: keeps j - i <= k (tril) or >= k (triu).
template <class T, bool Lower>
void tri_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  const TensorView& out = a.output(0);
  const int64_t k = a.attrs->i(0);
  FW_CHECK(x.ndim >= 2, Lower ? "tril" : "triu", "(): input tensor must have at least 2 dimensions");
  for (int d = 0; d < x.ndim; ++d) FW_CHECK(out.shape[d] == x.shape[d], "tril/triu: output shape mismatch");
  const T* xp = x.ptr<T>();
  T* op = out.ptr<T>();
  const int nd = x.ndim;
  const int64_t xs = x.strides[nd - 1], os = out.strides[nd - 1];
  for_each_row(nd, x.shape, 16384, [&](const int64_t* c, int64_t n) {
    const T* src = xp + offset_of(x, c);
    T* dst = op + offset_of(out, c);
    const int64_t i = c[nd - 2];
    for (int64_t j = 0; j < n; ++j) {
      const bool keep = Lower ? j - i <= k : j - i >= k;
      dst[j * os] = keep ? src[j * xs] : T(0);
    }
  });
}

template <class T>
void register_all(DType dt) {
  register_kernel("cat", dt, &cat_k<T>);
  register_kernel("flip", dt, &flip_k<T>);
  register_kernel("roll", dt, &roll_k<T>);
  register_kernel("repeat", dt, &repeat_k<T>);
  register_kernel("tril", dt, &tri_k<T, true>);
  register_kernel("triu", dt, &tri_k<T, false>);
}

}  // namespace

FW_REGISTER_KERNELS(movement) {
  register_all<float>(DType::f32);
  register_all<double>(DType::f64);
  register_all<int32_t>(DType::i32);
  register_all<int64_t>(DType::i64);
  register_all<bool>(DType::b8);
}

}  // namespace fw
