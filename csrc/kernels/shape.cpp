// shape.cpp: kernels of view ops for the graph runtime (eager mode makes real views that
// share storage; the runtime materializes them). Each builds a strided view of its input
// and copies it into the contiguous output.
#include <cstring>

#include "kernels/loops.h"

namespace fw {
namespace {

// dst (contiguous buffer, src's logical shape) <- src, any dtype.
void copy_view(const TensorView& src, const TensorView& out) {
  FW_CHECK(out.dtype == src.dtype && out.numel() == src.numel() && out.is_contiguous(),
           "view copy: output (", dtype_name(out.dtype), ", ", out.numel(), " elements) does not fit the view (",
           dtype_name(src.dtype), ", ", src.numel(), " elements)");
  void* dst_data = out.data;
  TensorView dst = make_view(dst_data, src.dtype, src.ndim, src.shape);
  if (src.is_contiguous()) {
    std::memcpy(dst_data, src.data, src.nbytes());
    return;
  }
  dispatch_dtype(src.dtype, [&](auto zero) {
    using T = decltype(zero);
    if (!transpose_copy<T>(dst, src)) unary_kernel<T, T>(dst, src, [](T v) { return v; });
  });
}

// reshape/view/flatten/unflatten/squeeze/unsqueeze: row-major order is kept, so the output
// is the input's elements in logical order.
void reshape_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  TensorView& out = a.output(0);
  FW_CHECK(out.numel() == x.numel(), "reshape: output has ", out.numel(), " elements, input ", x.numel());
  FW_CHECK(out.is_contiguous(), "reshape: output must be contiguous");
  copy_view(x, out);
}

// permute(dims=#0)
void permute_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  const auto& dims = a.attrs->ints(0);
  FW_CHECK(int(dims.size()) == x.ndim, "permute: ", dims.size(), " dims given for a ", x.ndim, "-d input");
  TensorView v = x;
  uint64_t seen = 0;  // a repeated dim would make a view reading past x (a crafted file's)
  for (int i = 0; i < x.ndim; ++i) {
    int64_t d = dims[size_t(i)];
    FW_CHECK(d >= 0 && d < x.ndim, "permute: dim ", d, " out of range");
    FW_CHECK(!(seen >> d & 1u), "permute: dim ", d, " repeats in the permutation");
    seen |= uint64_t(1) << d;
    v.shape[i] = x.shape[d];
    v.strides[i] = x.strides[d];
  }
  FW_CHECK(a.output(0).numel() == v.numel(), "permute: output size mismatch");
  copy_view(v, a.output(0));
}

// slice(dim=#0, start=#1, end=#2, step=#3); start is already clamped, output size given.
void slice_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  TensorView& out = a.output(0);
  int64_t dim = a.attrs->i(0), start = a.attrs->i(1), step = a.attrs->i(3);
  FW_CHECK(dim >= 0 && dim < x.ndim, "slice: dim out of range");
  FW_CHECK(step > 0, "slice: step must be positive");
  FW_CHECK(out.ndim == x.ndim, "slice: output rank mismatch");
  int64_t n = out.shape[dim];
  int64_t last = 0;
  FW_CHECK(start >= 0 && (n == 0 || (!__builtin_mul_overflow(n - 1, step, &last) &&
                                     !__builtin_add_overflow(last, start, &last) && last < x.shape[dim])),
           "slice: range out of bounds");
  TensorView v = x;
  v.data = static_cast<char*>(x.data) + start * x.strides[dim] * int64_t(dtype_size(x.dtype));
  v.shape[dim] = n;
  if (n > 1) v.strides[dim] = x.strides[dim] * step;  // bounded by the range check above
  copy_view(v, out);
}

// select(dim=#0, index=#1): drops dim.
void select_k(const KernelArgs& a) {
  const TensorView& x = a.input(0);
  int64_t dim = a.attrs->i(0), idx = a.attrs->i(1);
  FW_CHECK(dim >= 0 && dim < x.ndim, "select: dim out of range");
  if (idx < 0) idx += x.shape[dim];
  FW_CHECK(idx >= 0 && idx < x.shape[dim], "select: index ", idx, " out of range for size ", x.shape[dim]);
  TensorView v;
  v.dtype = x.dtype;
  v.data = static_cast<char*>(x.data) + idx * x.strides[dim] * int64_t(dtype_size(x.dtype));
  for (int i = 0, j = 0; i < x.ndim; ++i) {
    if (i == dim) continue;
    v.shape[j] = x.shape[i];
    v.strides[j] = x.strides[i];
    ++j;
  }
  v.ndim = x.ndim - 1;
  copy_view(v, a.output(0));
}

}  // namespace

FW_REGISTER_KERNELS(shape) {
  for (int d = 0; d < kNumDTypes; ++d) {
    DType dt = DType(d);
    register_kernel("reshape", dt, &reshape_k);
    register_kernel("permute", dt, &permute_k);
    register_kernel("slice", dt, &slice_k);
    register_kernel("select", dt, &select_k);
  }
}

}  // namespace fw

namespace fw {
namespace {

// out = x, then out's view (selected by `make`) <- src.
template <class MakeView>
void scatter_view(const KernelArgs& a, MakeView make) {
  const TensorView& x = a.input(0);
  const TensorView& src = a.input(1);
  TensorView& out = a.output(0);
  FW_CHECK(out.is_contiguous() && out.numel() == x.numel(), "scatter: bad output");
  FW_CHECK(src.dtype == x.dtype, "scatter: src dtype ", dtype_name(src.dtype), " != input dtype ",
           dtype_name(x.dtype));
  copy_view(x, out);
  TensorView v = make(out);
  dispatch_dtype(x.dtype, [&](auto zero) {
    using T = decltype(zero);
    unary_kernel<T, T>(v, src, [](T t) { return t; });
  });
}

// slice_scatter(dim=#0, start=#1, end=#2, step=#3)
void slice_scatter_k(const KernelArgs& a) {
  int64_t dim = a.attrs->i(0), start = a.attrs->i(1), end = a.attrs->i(2), step = a.attrs->i(3);
  scatter_view(a, [&](const TensorView& out) {
    FW_CHECK(dim >= 0 && dim < out.ndim && step > 0 && start >= 0 && start <= out.shape[dim] &&
                 end <= out.shape[dim], "slice_scatter: bad range");
    TensorView v = out;
    v.data = static_cast<char*>(out.data) + start * out.strides[dim] * int64_t(dtype_size(out.dtype));
    v.shape[dim] = end > start ? (end - start - 1) / step + 1 : 0;  // no overflow for any step
    if (v.shape[dim] > 1) v.strides[dim] = out.strides[dim] * step;
    FW_CHECK(a.input(1).ndim == v.ndim, "slice_scatter: src rank mismatch");
    for (int i = 0; i < v.ndim; ++i)
      FW_CHECK(a.input(1).shape[i] == v.shape[i], "slice_scatter: src shape mismatch at dim ", i);
    return v;
  });
}

// select_scatter(dim=#0, index=#1)
void select_scatter_k(const KernelArgs& a) {
  int64_t dim = a.attrs->i(0), idx = a.attrs->i(1);
  scatter_view(a, [&](const TensorView& out) {
    FW_CHECK(dim >= 0 && dim < out.ndim && idx >= 0 && idx < out.shape[dim], "select_scatter: bad index");
    TensorView v;
    v.dtype = out.dtype;
    v.data = static_cast<char*>(out.data) + idx * out.strides[dim] * int64_t(dtype_size(out.dtype));
    for (int i = 0, j = 0; i < out.ndim; ++i) {
      if (i == dim) continue;
      v.shape[j] = out.shape[i];
      v.strides[j] = out.strides[i];
      ++j;
    }
    v.ndim = out.ndim - 1;
    FW_CHECK(a.input(1).numel() == v.numel(), "select_scatter: src shape mismatch");
    return v;
  });
}

}  // namespace

FW_REGISTER_KERNELS(shape_scatter) {
  for (int d = 0; d < kNumDTypes; ++d) {
    register_kernel("slice_scatter", DType(d), &slice_scatter_k);
    register_kernel("select_scatter", DType(d), &select_scatter_k);
  }
}

}  // namespace fw
