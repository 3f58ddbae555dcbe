// vec_math.h: float transcendental functions written as straight-line arithmetic (no libm
// calls except floor, which compiles to one instruction), so elementwise loops vectorize
// without -ffast-math. Accuracy: exp ~2 ulp for normal results (results below FLT_MIN
// flush toward 0); tanh, sigmoid and erf within a few 1e-7 absolute. Special values follow
// libm: exp(-inf) = 0, exp(inf) = inf, NaN propagates. double uses the std:: functions
// (float64 is the accuracy oracle for the finite-difference tests).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace fw {
namespace vm {

inline float exp(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504f;
  float xc = std::min(std::max(lo, x), hi);  // max(lo, NaN) = lo: no NaN reaches the int conversion
  float fx = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - fx * 0.693359375f + fx * 2.12194440e-4f;
  float r2 = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r2 + r + 1.0f;
  int32_t n = (int32_t(fx) + 127) << 23;
  float pow2;
  std::memcpy(&pow2, &n, sizeof(pow2));
  float res = y * pow2;
  res = x > hi ? std::numeric_limits<float>::infinity() : res;
  res = x < lo ? 0.0f : res;
  return x != x ? x : res;
}
inline double exp(double x) { return std::exp(x); }

inline float sigmoid(float x) { return 1.0f / (1.0f + vm::exp(-x)); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// tanh: odd polynomial near 0 (no cancellation), 1 - 2 / (exp(2|x|) + 1) elsewhere.
inline float tanh(float x) {
  float ax = std::fabs(x);
  float x2 = x * x;
  float small = x * (1.0f + x2 * (-0.333333333f + x2 * (0.133333333f + x2 * (-0.0539682540f))));
  float e = vm::exp(2.0f * std::min(ax, 20.0f));
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0 ? -big : big;
  return ax < 0.0625f ? small : big;
}
inline double tanh(double x) { return std::tanh(x); }

// erf: the odd/even rational minimax approximation used by Eigen and XLA, on x clamped to
// [-4, 4] (beyond that erf is +-1 in float). One division, no exp and no branches: an
// earlier form (Abramowitz-Stegun with exp(-x^2)) ran 40x slower on some Intel parts.
inline float erf(float x) {
  float xc = std::min(std::max(x, -4.0f), 4.0f);
  float x2 = xc * xc;
  float p = x2 * -2.72614225801306e-10f + 2.77068142495902e-08f;
  p = x2 * p + -2.10102402082508e-06f;
  p = x2 * p + -5.69250639462346e-05f;
  p = x2 * p + -7.34990630326855e-04f;
  p = x2 * p + -2.95459980854025e-03f;
  p = x2 * p + -1.60960333262415e-02f;
  p = xc * p;
  float q = x2 * -1.45660718464996e-05f + -2.13374055278905e-04f;
  q = x2 * q + -1.68282697438203e-03f;
  q = x2 * q + -7.37332916720468e-03f;
  q = x2 * q + -1.42647390514189e-02f;
  float res = p / q;
  return x != x ? x : res;
}
inline double erf(double x) { return std::erf(x); }

}  // namespace vm
}  // namespace fw
