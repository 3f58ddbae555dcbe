// attrs.h: positional op attributes. The Python OpDef fixes the order of an op's attributes;
// eager dispatch, the model file and the runtime all pass them in that order, and a kernel
// reads attrs.i(0), attrs.f(1), ... Index and kind are checked, so a bad model file errors.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "core/error.h"

namespace fw {

// Whether a double converts to the signed integer type T without undefined behaviour (false
// for NaN, inf and values out of T's range).
template <class T>
bool fits_integer(double v) {
  static_assert(std::is_integral_v<T> && std::is_signed_v<T>, "fits_integer: a signed integer type");
  constexpr double lo = double(std::numeric_limits<T>::lowest());  // -2^(bits - 1), exact
  return v >= lo && v < -lo;
}
inline bool fits_int64(double v) { return fits_integer<int64_t>(v); }

struct AttrValue {
  enum Kind : uint8_t { None = 0, Int = 1, Float = 2, Ints = 3, Floats = 4, Str = 5 };
  Kind kind = None;
  int64_t i = 0;
  double f = 0.0;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::string s;

  static AttrValue from_int(int64_t v) { AttrValue a; a.kind = Int; a.i = v; a.f = double(v); return a; }
  static AttrValue from_float(double v) { AttrValue a; a.kind = Float; a.f = v; a.i = fits_int64(v) ? int64_t(v) : 0; return a; }
  static AttrValue from_ints(std::vector<int64_t> v) { AttrValue a; a.kind = Ints; a.ints = std::move(v); return a; }
  static AttrValue from_floats(std::vector<double> v) { AttrValue a; a.kind = Floats; a.floats = std::move(v); return a; }
  static AttrValue from_str(std::string v) { AttrValue a; a.kind = Str; a.s = std::move(v); return a; }
};

struct Attrs {
  std::vector<AttrValue> values;

  size_t size() const { return values.size(); }
  const AttrValue& at(size_t k) const {
    FW_CHECK(k < values.size(), "attribute #", k, " missing (op has ", values.size(), ")");
    return values[k];
  }
  bool is_none(size_t k) const { return k >= values.size() || values[k].kind == AttrValue::None; }
  int64_t i(size_t k) const {
    const AttrValue& a = at(k);
    FW_CHECK(a.kind == AttrValue::Int || a.kind == AttrValue::Float, "attribute #", k, " is not a number");
    if (a.kind == AttrValue::Int) return a.i;
    FW_CHECK(fits_int64(a.f), "attribute #", k, " = ", a.f, " is not a representable integer");
    return int64_t(a.f);
  }
  double f(size_t k) const {
    const AttrValue& a = at(k);
    FW_CHECK(a.kind == AttrValue::Int || a.kind == AttrValue::Float, "attribute #", k, " is not a number");
    return a.kind == AttrValue::Float ? a.f : double(a.i);
  }
  // Attribute k as a kernel scalar of type T (fill values, clamp bounds): for an integer T the
  // value must fit (NaN, inf or out of range is an error, not undefined behaviour); bool is
  // value != 0. Int attributes convert exactly (no round trip through double).
  template <class T>
  T scalar(size_t k) const {
    if constexpr (std::is_same_v<T, bool>) {
      return f(k) != 0;
    } else if constexpr (std::is_integral_v<T>) {
      const AttrValue& a = at(k);
      int64_t v = a.i;
      if (a.kind != AttrValue::Int) {
        double d = f(k);
        FW_CHECK(fits_int64(d), "attribute #", k, " = ", d, " does not fit an integer tensor");
        v = int64_t(d);
      }
      FW_CHECK(v >= int64_t(std::numeric_limits<T>::lowest()) && v <= int64_t(std::numeric_limits<T>::max()),
               "attribute #", k, " = ", v, " does not fit the tensor's integer type");
      return T(v);
    } else {
      return T(f(k));
    }
  }
  const std::vector<int64_t>& ints(size_t k) const {
    const AttrValue& a = at(k);
    FW_CHECK(a.kind == AttrValue::Ints, "attribute #", k, " is not an int list");
    return a.ints;
  }
  const std::vector<double>& floats(size_t k) const {
    const AttrValue& a = at(k);
    FW_CHECK(a.kind == AttrValue::Floats, "attribute #", k, " is not a float list");
    return a.floats;
  }
  const std::string& str(size_t k) const {
    const AttrValue& a = at(k);
    FW_CHECK(a.kind == AttrValue::Str, "attribute #", k, " is not a string");
    return a.s;
  }
};

}  // namespace fw
