// elementwise.cpp: unary, binary, comparison, logical, select, cast/copy, fill and random
// kernels. All accept strided and broadcast inputs (see loops.h); outputs may be strided too
// (in-place ops write through a view).
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "kernels/loops.h"
#include "kernels/vec_math.h"

namespace fw {
namespace {

// For an integer T: v (a value the kernel converts to T) is a number within T's range. A
// float-to-integer conversion out of range is undefined behaviour, and a model file's
// attributes are untrusted.
template <class T>
void check_fits(const char* op, double v) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    FW_CHECK(fits_integer<T>(v), op, ": value ", v, " does not fit ", sizeof(T) == 4 ? "int32" : "int64");
}

// ---------------------------------------------------------------- unary float ops
#define FW_UNARY(NAME, EXPR)                       \
  struct NAME##_fn {                               \
    template <class T>                             \
    T operator()(T x) const { return EXPR; }       \
  };

FW_UNARY(neg, -x)
FW_UNARY(abs, std::abs(x))
FW_UNARY(exp, vm::exp(x))
FW_UNARY(log, std::log(x))
FW_UNARY(log1p, std::log1p(x))
FW_UNARY(sqrt, std::sqrt(x))
FW_UNARY(rsqrt, T(1) / std::sqrt(x))
FW_UNARY(sin, std::sin(x))
FW_UNARY(cos, std::cos(x))
FW_UNARY(tan, std::tan(x))
FW_UNARY(asin, std::asin(x))
FW_UNARY(acos, std::acos(x))
FW_UNARY(atan, std::atan(x))
FW_UNARY(sinh, std::sinh(x))
FW_UNARY(cosh, std::cosh(x))
FW_UNARY(expm1, std::expm1(x))
FW_UNARY(tanh, vm::tanh(x))
FW_UNARY(sigmoid, vm::sigmoid(x))
FW_UNARY(relu, x > T(0) ? x : (x == x ? T(0) : x))
FW_UNARY(silu, x * vm::sigmoid(x))
FW_UNARY(erf, vm::erf(x))
FW_UNARY(floor, std::floor(x))
FW_UNARY(ceil, std::ceil(x))
FW_UNARY(round, std::nearbyint(x))
FW_UNARY(reciprocal, T(1) / x)
FW_UNARY(sign_f, x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0)))  // sign(NaN) = 0 like torch
FW_UNARY(sign_i, T((x > T(0)) - (x < T(0))))
// -INT_MIN wraps to INT_MIN, as in torch (in the unsigned type: signed overflow is undefined)
FW_UNARY(neg_i, T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(x)))
FW_UNARY(abs_i, x < 0 ? T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(x)) : x)
#undef FW_UNARY

template <class Fn, class T>
void unary_same(const KernelArgs& a) {
  unary_kernel<T, T>(a.output(0), a.input(0), Fn{});
}

void gelu_any(const KernelArgs& a) {
  bool tanh_form = !a.attrs->is_none(0) && a.attrs->str(0) == "tanh";
  dispatch_dtype(a.input(0).dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_floating_point_v<T>) {
      if (tanh_form) {
        const T k = T(0.7978845608028654), c = T(0.044715);
        unary_kernel<T, T>(a.output(0), a.input(0),
                           [=](T x) { return T(0.5) * x * (T(1) + vm::tanh(k * (x + c * x * x * x))); });
      } else {
        const T r = T(0.7071067811865476);
        unary_kernel<T, T>(a.output(0), a.input(0),
                           [=](T x) { return T(0.5) * x * (T(1) + vm::erf(x * r)); });
      }
    }
  });
}

template <class T>
void leaky_relu_k(const KernelArgs& a) {
  T slope = a.attrs->scalar<T>(0);
  unary_kernel<T, T>(a.output(0), a.input(0), [=](T x) { return x > T(0) ? x : x * slope; });
}

template <class T>
void elu_k(const KernelArgs& a) {
  T alpha = a.attrs->scalar<T>(0);
  unary_kernel<T, T>(a.output(0), a.input(0),
                     [=](T x) { return x > T(0) ? x : alpha * (std::exp(x) - T(1)); });
}

template <class T>
void softplus_k(const KernelArgs& a) {
  T beta = a.attrs->scalar<T>(0), threshold = a.attrs->scalar<T>(1);
  unary_kernel<T, T>(a.output(0), a.input(0), [=](T x) {
    T bx = beta * x;
    return bx > threshold ? x : std::log1p(std::exp(bx)) / beta;
  });
}

// clamp(x, min=None, max=None): attrs are numbers or None. NaN propagates like torch.
template <class T>
void clamp_k(const KernelArgs& a) {
  bool has_lo = !a.attrs->is_none(0), has_hi = !a.attrs->is_none(1);
  T lo = has_lo ? a.attrs->scalar<T>(0) : T(0);
  T hi = has_hi ? a.attrs->scalar<T>(1) : T(0);
  unary_kernel<T, T>(a.output(0), a.input(0), [=](T x) {
    if (x != x) return x;
    if (has_lo && x < lo) x = lo;
    if (has_hi && x > hi) x = hi;
    return x;
  });
}

// ---------------------------------------------------------------- binary ops
// Integer add/sub/mul wrap around like torch's (two's complement): signed overflow is
// undefined in C++, so int32/int64 compute in the unsigned type of the same width.
template <class T, class F>
inline T wrapping(T x, T y, F f) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T> && sizeof(T) >= sizeof(int)) {
    using U = std::make_unsigned_t<T>;
    return T(f(U(x), U(y)));
  } else {
    return T(f(x, y));
  }
}
struct add_fn { template <class T> T operator()(T x, T y) const { return wrapping(x, y, [](auto a, auto b) { return a + b; }); } };
struct sub_fn { template <class T> T operator()(T x, T y) const { return wrapping(x, y, [](auto a, auto b) { return a - b; }); } };
struct mul_fn { template <class T> T operator()(T x, T y) const { return wrapping(x, y, [](auto a, auto b) { return a * b; }); } };
struct div_fn { template <class T> T operator()(T x, T y) const { return x / y; } };
struct atan2_fn { template <class T> T operator()(T y, T x) const { return std::atan2(y, x); } };
struct maximum_fn {
  template <class T> T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (x != x || y != y) return x != x ? x : y;
    }
    return x > y ? x : y;
  }
};
struct minimum_fn {
  template <class T> T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>) {
      if (x != x || y != y) return x != x ? x : y;
    }
    return x < y ? x : y;
  }
};
struct pow_fn {
  template <class T> T operator()(T x, T y) const {
    if constexpr (std::is_floating_point_v<T>) {
      return std::pow(x, y);
    } else {
      if (y < 0) return x == 1 ? T(1) : (x == -1 ? (y % 2 ? T(-1) : T(1)) : T(0));
      T r = 1;
      while (y) {
        if (y & 1) r = mul_fn{}(r, x);
        x = mul_fn{}(x, x);
        y >>= 1;
      }
      return r;
    }
  }
};

template <class Fn, class T>
void binary_same(const KernelArgs& a) {
  binary_kernel<T, T, T>(a.output(0), a.input(0), a.input(1), Fn{});
}

// add/sub with alpha: out = x + alpha * y (alpha attr #0).
template <class T, bool Sub>
void add_alpha(const KernelArgs& a) {
  double alpha_d = a.attrs->is_none(0) ? 1.0 : a.attrs->f(0);
  if (alpha_d == 1.0) {
    if (Sub) binary_kernel<T, T, T>(a.output(0), a.input(0), a.input(1), sub_fn{});
    else binary_kernel<T, T, T>(a.output(0), a.input(0), a.input(1), add_fn{});
    return;
  }
  const double av = Sub ? -alpha_d : alpha_d;
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>)
    FW_CHECK(fits_integer<T>(av), Sub ? "sub" : "add", ": alpha ", alpha_d, " does not fit the tensor's integer type");
  T alpha = T(av);
  binary_kernel<T, T, T>(a.output(0), a.input(0), a.input(1),
                         [=](T x, T y) { return add_fn{}(x, mul_fn{}(alpha, y)); });
}

// ---------------------------------------------------------------- comparisons, logic
struct eq_fn { template <class T> bool operator()(T x, T y) const { return x == y; } };
struct ne_fn { template <class T> bool operator()(T x, T y) const { return x != y; } };
struct lt_fn { template <class T> bool operator()(T x, T y) const { return x < y; } };
struct le_fn { template <class T> bool operator()(T x, T y) const { return x <= y; } };
struct gt_fn { template <class T> bool operator()(T x, T y) const { return x > y; } };
struct ge_fn { template <class T> bool operator()(T x, T y) const { return x >= y; } };

template <class Fn, class T>
void compare(const KernelArgs& a) {
  binary_kernel<bool, T, T>(a.output(0), a.input(0), a.input(1), Fn{});
}

void logical_and_k(const KernelArgs& a) {
  binary_kernel<bool, bool, bool>(a.output(0), a.input(0), a.input(1), [](bool x, bool y) { return x && y; });
}
void logical_or_k(const KernelArgs& a) {
  binary_kernel<bool, bool, bool>(a.output(0), a.input(0), a.input(1), [](bool x, bool y) { return x || y; });
}
void logical_not_k(const KernelArgs& a) {
  unary_kernel<bool, bool>(a.output(0), a.input(0), [](bool x) { return !x; });
}

// where(cond, x, y): dispatch dtype is x's.
template <class T>
void where_k(const KernelArgs& a) {
  FW_CHECK(a.input(0).dtype == DType::b8, "where: condition must be bool");
  ternary_kernel<T, bool, T, T>(a.output(0), a.input(0), a.input(1), a.input(2),
                                [](bool c, T x, T y) { return c ? x : y; });
}

// threshold_backward(grad_output, x; threshold=#0) = x <= threshold ? 0 : grad_output (torch's
// relu backward: one pass instead of a comparison and a where; NaN in x passes the grad).
template <class T>
void threshold_backward_k(const KernelArgs& a) {
  const T t = T(a.attrs->f(0));
  binary_kernel<T, T, T>(a.output(0), a.input(0), a.input(1), [=](T g, T x) { return x <= t ? T(0) : g; });
}

// masked_fill(x, mask, value=attr#0)
template <class T>
void masked_fill_k(const KernelArgs& a) {
  FW_CHECK(a.input(1).dtype == DType::b8, "masked_fill: mask must be bool");
  T v = a.attrs->scalar<T>(0);
  binary_kernel<T, T, bool>(a.output(0), a.input(0), a.input(1), [=](T x, bool m) { return m ? v : x; });
}

// ---------------------------------------------------------------- copy / cast / fill
// copy: out (any dtype, any strides) = cast(in). Dispatch dtype is the input's.
template <class S>
void copy_from(const KernelArgs& a) {
  const TensorView& src = a.input(0);
  TensorView& dst = a.output(0);
  if (dst.dtype == src.dtype && transpose_copy<S>(dst, src)) return;
  dispatch_dtype(dst.dtype, [&](auto zero) {
    using D = decltype(zero);
    unary_kernel<D, S>(dst, src, [](S x) {
      if constexpr (std::is_same_v<D, bool>) {
        return x != S(0);
      } else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<S>) {
        // NaN, inf and out-of-range values give the lowest value, as x86's conversion (and so
        // torch on x86) does, instead of C++'s undefined behaviour
        return fits_integer<D>(double(x)) ? D(x) : std::numeric_limits<D>::lowest();
      } else {
        return D(x);
      }
    });
  });
}

// fill(shape=#0, value=#1, dtype=#2): writes the value into out; dispatch dtype is out's.
template <class T>
void fill_k(const KernelArgs& a) {
  TensorView& out = a.output(0);
  T v = a.attrs->scalar<T>(1);
  check_item_sizes<T>(out);
  ElementwiseIter<1> it(out, nullptr);
  it.for_each([&](char** p, const int64_t* s, int64_t n) {
    for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * s[0]) = v;
  });
}

// Counter-based random numbers: element i of a call with seed s depends only on (s, i),
// so results do not depend on the thread count.
inline uint64_t mix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
inline double uniform01(uint64_t seed, uint64_t i) {
  return double(mix64(seed * 0xD1B54A32D192ED03ull + i) >> 11) * (1.0 / 9007199254740992.0);
}

// uniform(shape=#0, seed=#1, low=#2, high=#3, dtype=#4) into a contiguous out.
template <class T>
void uniform_k(const KernelArgs& a) {
  TensorView& out = a.output(0);
  FW_CHECK(out.is_contiguous(), "uniform: output must be contiguous");
  uint64_t seed = uint64_t(a.attrs->i(1));
  double lo = a.attrs->f(2), hi = a.attrs->f(3);
  T* o = out.ptr<T>();
  if (out.numel() > 0) {  // the values lie in [lo, hi]
    check_fits<T>("uniform", lo);
    check_fits<T>("uniform", hi);
  }
  parallel_for(out.numel(), 65536, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T v = T(lo + (hi - lo) * uniform01(seed, uint64_t(i)));
      if constexpr (std::is_integral_v<T>) {
        if (v >= T(hi)) v = T(hi) - 1;  // randint: [low, high)
      }
      o[i] = v;
    }
  });
}

// normal(shape=#0, seed=#1, mean=#2, std=#3, dtype=#4) into a contiguous out (Box-Muller).
template <class T>
void normal_k(const KernelArgs& a) {
  TensorView& out = a.output(0);
  FW_CHECK(out.is_contiguous(), "normal: output must be contiguous");
  uint64_t seed = uint64_t(a.attrs->i(1));
  double mean = a.attrs->f(2), stdv = a.attrs->f(3);
  T* o = out.ptr<T>();
  parallel_for(out.numel(), 65536, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double u1 = uniform01(seed, 2 * uint64_t(i));
      double u2 = uniform01(seed, 2 * uint64_t(i) + 1);
      double r = std::sqrt(-2.0 * std::log(1.0 - u1));
      o[i] = T(mean + stdv * r * std::cos(6.283185307179586 * u2));
    }
  });
}


}  // namespace

FW_REGISTER_KERNELS(elementwise) {
  using D = DType;
#define REG_F(NAME, FN)                                   \
  register_kernel(NAME, D::f32, &unary_same<FN, float>);  \
  register_kernel(NAME, D::f64, &unary_same<FN, double>);
  REG_F("neg", neg_fn) REG_F("abs", abs_fn) REG_F("exp", exp_fn) REG_F("log", log_fn)
  REG_F("log1p", log1p_fn) REG_F("sqrt", sqrt_fn) REG_F("rsqrt", rsqrt_fn) REG_F("sin", sin_fn)
  REG_F("cos", cos_fn) REG_F("tanh", tanh_fn) REG_F("sigmoid", sigmoid_fn) REG_F("relu", relu_fn)
  REG_F("silu", silu_fn) REG_F("erf", erf_fn) REG_F("floor", floor_fn) REG_F("ceil", ceil_fn)
  REG_F("round", round_fn) REG_F("reciprocal", reciprocal_fn) REG_F("sign", sign_f_fn)
  REG_F("tan", tan_fn) REG_F("asin", asin_fn) REG_F("acos", acos_fn) REG_F("atan", atan_fn)
  REG_F("sinh", sinh_fn) REG_F("cosh", cosh_fn) REG_F("expm1", expm1_fn)
#undef REG_F
#define REG_I(NAME, FN)                                     \
  register_kernel(NAME, D::i32, &unary_same<FN, int32_t>);  \
  register_kernel(NAME, D::i64, &unary_same<FN, int64_t>);
  REG_I("neg", neg_i_fn) REG_I("abs", abs_i_fn) REG_I("sign", sign_i_fn) REG_I("relu", relu_fn)
#undef REG_I
  register_kernel("gelu", D::f32, &gelu_any);
  register_kernel("gelu", D::f64, &gelu_any);
  register_kernel("threshold_backward", D::f32, &threshold_backward_k<float>);
  register_kernel("threshold_backward", D::f64, &threshold_backward_k<double>);
  register_kernel("leaky_relu", D::f32, &leaky_relu_k<float>);
  register_kernel("leaky_relu", D::f64, &leaky_relu_k<double>);
  register_kernel("elu", D::f32, &elu_k<float>);
  register_kernel("elu", D::f64, &elu_k<double>);
  register_kernel("softplus", D::f32, &softplus_k<float>);
  register_kernel("softplus", D::f64, &softplus_k<double>);
#define REG_ALL_NUM(NAME, TEMPLATE)                 \
  register_kernel(NAME, D::f32, &TEMPLATE<float>);  \
  register_kernel(NAME, D::f64, &TEMPLATE<double>); \
  register_kernel(NAME, D::i32, &TEMPLATE<int32_t>); \
  register_kernel(NAME, D::i64, &TEMPLATE<int64_t>);
  REG_ALL_NUM("clamp", clamp_k)
  REG_ALL_NUM("where", where_k)
  REG_ALL_NUM("masked_fill", masked_fill_k)
  REG_ALL_NUM("copy", copy_from)
  REG_ALL_NUM("fill", fill_k)
  REG_ALL_NUM("uniform", uniform_k)
  register_kernel("where", D::b8, &where_k<bool>);
  register_kernel("masked_fill", D::b8, &masked_fill_k<bool>);
  register_kernel("copy", D::b8, &copy_from<bool>);
  register_kernel("fill", D::b8, &fill_k<bool>);
  register_kernel("normal", D::f32, &normal_k<float>);
  register_kernel("normal", D::f64, &normal_k<double>);
  register_kernel("add", D::f32, &add_alpha<float, false>);
  register_kernel("add", D::f64, &add_alpha<double, false>);
  register_kernel("add", D::i32, &add_alpha<int32_t, false>);
  register_kernel("add", D::i64, &add_alpha<int64_t, false>);
  register_kernel("sub", D::f32, &add_alpha<float, true>);
  register_kernel("sub", D::f64, &add_alpha<double, true>);
  register_kernel("sub", D::i32, &add_alpha<int32_t, true>);
  register_kernel("sub", D::i64, &add_alpha<int64_t, true>);
#define REG_BIN(NAME, FN)                                     \
  register_kernel(NAME, D::f32, &binary_same<FN, float>);     \
  register_kernel(NAME, D::f64, &binary_same<FN, double>);    \
  register_kernel(NAME, D::i32, &binary_same<FN, int32_t>);   \
  register_kernel(NAME, D::i64, &binary_same<FN, int64_t>);
  REG_BIN("mul", mul_fn) REG_BIN("maximum", maximum_fn) REG_BIN("minimum", minimum_fn)
  REG_BIN("pow", pow_fn)
  register_kernel("atan2", D::f32, &binary_same<atan2_fn, float>);
  register_kernel("atan2", D::f64, &binary_same<atan2_fn, double>);
#undef REG_BIN
  register_kernel("div", D::f32, &binary_same<div_fn, float>);
  register_kernel("div", D::f64, &binary_same<div_fn, double>);
#define REG_CMP(NAME, FN)                                 \
  register_kernel(NAME, D::f32, &compare<FN, float>);     \
  register_kernel(NAME, D::f64, &compare<FN, double>);    \
  register_kernel(NAME, D::i32, &compare<FN, int32_t>);   \
  register_kernel(NAME, D::i64, &compare<FN, int64_t>);   \
  register_kernel(NAME, D::b8, &compare<FN, bool>);
  REG_CMP("eq", eq_fn) REG_CMP("ne", ne_fn) REG_CMP("lt", lt_fn) REG_CMP("le", le_fn)
  REG_CMP("gt", gt_fn) REG_CMP("ge", ge_fn)
#undef REG_CMP
#undef REG_ALL_NUM
  register_kernel("logical_and", D::b8, &logical_and_k);
  register_kernel("logical_or", D::b8, &logical_or_k);
  register_kernel("logical_not", D::b8, &logical_not_k);
}

}  // namespace fw

namespace fw {
namespace {

// arange(n=#0, start=#1, step=#2, dtype=#3): out[i] = start + i * step.
template <class T>
void arange_k(const KernelArgs& a) {
  TensorView& out = a.output(0);
  FW_CHECK(out.is_contiguous(), "arange: output must be contiguous");
  double start = a.attrs->f(1), step = a.attrs->f(2);
  T* o = out.ptr<T>();
  const int64_t n = out.numel();
  if (n > 0) {  // the values run monotonically from the first to the last
    check_fits<T>("arange", start);
    check_fits<T>("arange", start + double(n - 1) * step);
  }
  for (int64_t i = 0; i < n; ++i) o[i] = T(start + double(i) * step);
}

// linspace(start=#0, end=#1): evenly spaced, symmetric from both ends like torch.
template <class T>
void linspace_k(const KernelArgs& a) {
  TensorView& out = a.output(0);
  FW_CHECK(out.is_contiguous(), "linspace: output must be contiguous");
  double start = a.attrs->f(0), end = a.attrs->f(1);
  int64_t n = out.numel();
  T* o = out.ptr<T>();
  if (n > 0) {  // every value lies between start and end
    check_fits<T>("linspace", start);
    check_fits<T>("linspace", end);
  }
  if (n == 1) {
    o[0] = T(start);
    return;
  }
  // Computed in T like torch, so float32 results match bit for bit.
  using C = std::conditional_t<std::is_floating_point_v<T>, T, double>;
  C s = C(start), e = C(end);
  C step = (e - s) / C(n - 1);
  int64_t half = n / 2;
  for (int64_t i = 0; i < n; ++i) o[i] = T(i < half ? s + step * C(i) : e - step * C(n - 1 - i));
}

}  // namespace

FW_REGISTER_KERNELS(creation) {
  register_kernel("arange", DType::f32, &arange_k<float>);
  register_kernel("arange", DType::f64, &arange_k<double>);
  register_kernel("arange", DType::i32, &arange_k<int32_t>);
  register_kernel("arange", DType::i64, &arange_k<int64_t>);
  register_kernel("linspace", DType::f32, &linspace_k<float>);
  register_kernel("linspace", DType::f64, &linspace_k<double>);
  register_kernel("linspace", DType::i64, &linspace_k<int64_t>);
  register_kernel("linspace", DType::i32, &linspace_k<int32_t>);
}

}  // namespace fw
