// dtype.h: the element types framework supports, shared by kernels, runtime and bindings.
// Contract: codes are stable (they are written into model files); never renumber them.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fw {

enum class DType : uint8_t { f32 = 0, f64 = 1, i32 = 2, i64 = 3, b8 = 4 };
constexpr int kNumDTypes = 5;

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i32: return 4;
    case DType::i64: return 8;
    case DType::b8: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
  }
  return "?";
}

inline bool dtype_valid(int code) { return code >= 0 && code < kNumDTypes; }

template <class T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::f32; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::f64; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::i32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::i64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::b8; };

}  // namespace fw
