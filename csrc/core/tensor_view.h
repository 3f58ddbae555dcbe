// tensor_view.h: a non-owning view of a dense strided array — the only tensor type kernels see.
// Eager mode builds views over numpy-held storage, the runtime over arena offsets; kernels
// cannot tell the difference. Strides are in elements (not bytes) and may be 0 (broadcast).
#pragma once
#include <cstdint>
#include <type_traits>

#include "core/dtype.h"
#include "core/error.h"

namespace fw {

constexpr int kMaxDims = 8;

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::f32;
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[kMaxDims] = {};

  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  int64_t size(int d) const { return shape[d < 0 ? d + ndim : d]; }
  int64_t stride(int d) const { return strides[d < 0 ? d + ndim : d]; }
  bool is_contiguous() const {
    int64_t expected = 1;
    for (int i = ndim - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expected) return false;
      expected *= shape[i];
    }
    return true;
  }
  // The data as T*. The element size must match the dtype's, so a view whose dtype does not
  // fit the kernel (e.g. from a crafted model file) errors instead of reading past its end.
  template <class T> T* ptr() const {
    if constexpr (!std::is_void_v<T>)
      FW_CHECK(sizeof(T) == dtype_size(dtype), "kernel reads a ", dtype_name(dtype), " tensor as a ", sizeof(T),
               "-byte type");
    return static_cast<T*>(data);
  }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
};

// A contiguous view over `data` with the given shape.
inline TensorView make_view(void* data, DType dtype, int ndim, const int64_t* shape) {
  FW_CHECK(ndim >= 0 && ndim <= kMaxDims, "tensors have at most ", kMaxDims, " dims, got ", ndim);
  TensorView v;
  v.data = data;
  v.dtype = dtype;
  v.ndim = ndim;
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; --i) {
    v.shape[i] = shape[i];
    v.strides[i] = s;
    s *= shape[i];
  }
  return v;
}

}  // namespace fw
