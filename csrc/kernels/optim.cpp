// optim.cpp: fused optimizer updates, one kernel per optimizer, run once per parameter.
//
// Each kernel reads (param, grad, state...) and writes the new param and state. Eager
// optimizers call them through dispatch_into() with the outputs aliasing the inputs (the
// parameter and its state buffers are updated in place); every element is read before it is
// written at the same index, so aliasing is safe. The arithmetic follows torch's
// single-tensor (foreach=False) implementations op by op, rounding to T where torch does,
// so float32 trajectories agree with torch. Scalars derived from the step count (bias
// corrections, step size) are computed in double, as torch computes them in Python.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/parallel.h"
#include "kernels/registry.h"

namespace fw {
namespace {

constexpr int64_t kGrain = 16384;

// Checks that every present operand is contiguous and has `n` elements of dtype `dt`.
void check_operands(const KernelArgs& a, const char* op) {
  const TensorView& p = a.input(0);
  int64_t n = p.numel();
  for (int i = 0; i < a.n_in; ++i) {
    if (!a.has_input(i)) continue;
    FW_CHECK(a.in[i].dtype == p.dtype, op, ": operand #", i, " has a different dtype than the parameter");
    FW_CHECK(a.in[i].numel() == n, op, ": operand #", i, " has ", a.in[i].numel(),
             " elements, the parameter has ", n);
    FW_CHECK(a.in[i].is_contiguous(), op, ": operand #", i, " is not contiguous");
  }
  for (int i = 0; i < a.n_out; ++i) {
    if (a.out[i].data == nullptr) continue;
    FW_CHECK(a.out[i].dtype == p.dtype, op, ": output #", i, " has a different dtype than the parameter");
    FW_CHECK(a.out[i].numel() == n, op, ": output #", i, " has ", a.out[i].numel(),
             " elements, the parameter has ", n);
    FW_CHECK(a.out[i].is_contiguous(), op, ": output #", i, " is not contiguous");
  }
}

template <class T>
T* out_ptr(const KernelArgs& a, int i, const char* op, const char* what) {
  FW_CHECK(i < a.n_out && a.out[i].data != nullptr, op, ": missing output ", what);
  return a.out[i].ptr<T>();
}

// In-place SGD over [lo, hi) of p (param) and b (momentum buffer), one specialization per
// flag combination so the loop has no branches and vectorizes. sgn is -1 for maximize
// (an exact negation). NOTE: no FMA contraction (baseline ISA): torch rounds each product.
template <class T, bool WD, bool MOM, bool FIRST, bool NEST>
void sgd_range(T* p, const T* g_in, T* b, T sgn, T lr, T momentum, T damp, T wd, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    const T pv = p[i];
    T g = sgn * g_in[i];
    if constexpr (WD) g = g + wd * pv;
    if constexpr (MOM) {
      T buf;
      if constexpr (FIRST) {
        buf = g;
      } else {
        buf = T(b[i] * momentum) + damp * g;
      }
      b[i] = buf;
      if constexpr (NEST) {
        g = g + momentum * buf;
      } else {
        g = buf;
      }
    }
    p[i] = pv + (-lr) * g;
  }
}

template <class T, bool WD, bool MOM>
auto sgd_pick(bool first, bool nesterov) {
  if (first) return nesterov ? &sgd_range<T, WD, MOM, true, true> : &sgd_range<T, WD, MOM, true, false>;
  return nesterov ? &sgd_range<T, WD, MOM, false, true> : &sgd_range<T, WD, MOM, false, false>;
}

// inputs: param, grad, momentum_buffer?   outputs: param, momentum_buffer?
// attrs: lr, momentum, dampening, weight_decay, nesterov, maximize, first_step
template <class T>
void sgd_update_k(const KernelArgs& a) {
  check_operands(a, "sgd_update");
  const auto& at = *a.attrs;
  const T lr = T(at.f(0)), momentum = T(at.f(1)), damp = T(1.0 - at.f(2)), wd = T(at.f(3));
  const bool nesterov = at.i(4) != 0, maximize = at.i(5) != 0, first = at.i(6) != 0;
  const bool use_wd = at.f(3) != 0.0, use_mom = at.f(1) != 0.0;
  const int64_t n = a.input(0).numel();
  const T* p_in = a.input(0).ptr<T>();
  const T* g_in = a.input(1).ptr<T>();
  const T* b_in = a.has_input(2) ? a.in[2].ptr<T>() : nullptr;
  T* p_out = out_ptr<T>(a, 0, "sgd_update", "param");
  T* b_out = nullptr;
  if (use_mom) {
    b_out = out_ptr<T>(a, 1, "sgd_update", "momentum_buffer");
    FW_CHECK(first || b_in != nullptr, "sgd_update: momentum needs a momentum_buffer input after the first step");
  }
  // The loop runs in place on the outputs: copy the inputs over first when they differ.
  if (p_out != p_in) std::memmove(p_out, p_in, size_t(n) * sizeof(T));
  if (use_mom && !first && b_out != b_in) std::memmove(b_out, b_in, size_t(n) * sizeof(T));
  decltype(&sgd_range<T, false, false, false, false>) fn;
  if (use_wd)
    fn = use_mom ? sgd_pick<T, true, true>(first, nesterov) : sgd_pick<T, true, false>(first, nesterov);
  else
    fn = use_mom ? sgd_pick<T, false, true>(first, nesterov) : sgd_pick<T, false, false>(first, nesterov);
  const T sgn = maximize ? T(-1) : T(1);
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) { fn(p_out, g_in, b_out, sgn, lr, momentum, damp, wd, lo, hi); });
}

template <class T>
struct AdamScalars {
  T sgn, decay, wd, w1, b2, w2, bc2s, eps, step_size;
};

// In-place Adam/AdamW over [lo, hi), one branch-free specialization per flag combination
// (as sgd_range; no FMA contraction, torch rounds each product).
template <class T, bool WD, bool DECOUPLED, bool AMSGRAD>
void adam_range(T* p, const T* g_in, T* m, T* v, T* vmax, const AdamScalars<T>& c, int64_t lo, int64_t hi) {
  const T sgn = c.sgn, decay = c.decay, twd = c.wd, w1 = c.w1, b2 = c.b2, w2 = c.w2, bc2s = c.bc2s, eps = c.eps;
  const T neg_step = -c.step_size;
  for (int64_t i = lo; i < hi; ++i) {
    T pv = p[i];
    T g = sgn * g_in[i];
    if constexpr (WD) {
      if constexpr (DECOUPLED) {
        pv = pv * decay;
      } else {
        g = g + twd * pv;
      }
    }
    const T mv = m[i] + w1 * (g - m[i]);  // lerp, weight < 0.5 form
    const T vv = T(v[i] * b2) + w2 * g * g;
    m[i] = mv;
    v[i] = vv;
    T vd = vv;
    if constexpr (AMSGRAD) {
      vd = vmax[i] > vv ? vmax[i] : vv;
      vmax[i] = vd;
    }
    const T denom = std::sqrt(vd) / bc2s + eps;
    p[i] = pv + neg_step * (mv / denom);
  }
}

// inputs: param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq?
// outputs: param, exp_avg, exp_avg_sq, max_exp_avg_sq?
// attrs: lr, beta1, beta2, eps, weight_decay, step, amsgrad, maximize, decoupled (AdamW)
template <class T>
void adam_update_k(const KernelArgs& a) {
  check_operands(a, "adam_update");
  const auto& at = *a.attrs;
  const double lr = at.f(0), beta1 = at.f(1), beta2 = at.f(2), wd = at.f(4);
  const double step = at.f(5);
  const bool amsgrad = at.i(6) != 0, maximize = at.i(7) != 0, decoupled = at.i(8) != 0;
  FW_CHECK(step >= 1, "adam_update: step must be >= 1, got ", step);
  const double bc1 = 1.0 - std::pow(beta1, step);
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, step));
  const T step_size = T(lr / bc1), bc2s = T(bc2_sqrt), eps = T(at.f(3));
  const T w1 = T(1.0 - beta1), b2 = T(beta2), w2 = T(1.0 - beta2), twd = T(wd);
  const T decay = T(1.0 - lr * wd);
  const bool use_wd = wd != 0.0;
  const T* p_in = a.input(0).ptr<T>();
  const T* g_in = a.input(1).ptr<T>();
  const T* m_in = a.input(2).ptr<T>();
  const T* v_in = a.input(3).ptr<T>();
  const T* vmax_in = a.has_input(4) ? a.in[4].ptr<T>() : nullptr;
  T* p_out = out_ptr<T>(a, 0, "adam_update", "param");
  T* m_out = out_ptr<T>(a, 1, "adam_update", "exp_avg");
  T* v_out = out_ptr<T>(a, 2, "adam_update", "exp_avg_sq");
  T* vmax_out = nullptr;
  if (amsgrad) {
    FW_CHECK(vmax_in != nullptr, "adam_update: amsgrad needs a max_exp_avg_sq input");
    vmax_out = out_ptr<T>(a, 3, "adam_update", "max_exp_avg_sq");
  }
  // The loop runs in place on the outputs: copy the inputs over first when they differ.
  const int64_t n = a.input(0).numel();
  if (p_out != p_in) std::memmove(p_out, p_in, size_t(n) * sizeof(T));
  if (m_out != m_in) std::memmove(m_out, m_in, size_t(n) * sizeof(T));
  if (v_out != v_in) std::memmove(v_out, v_in, size_t(n) * sizeof(T));
  if (amsgrad && vmax_out != vmax_in) std::memmove(vmax_out, vmax_in, size_t(n) * sizeof(T));
  AdamScalars<T> c{T(maximize ? -1 : 1), decay, twd, w1, b2, w2, bc2s, eps, step_size};
  decltype(&adam_range<T, false, false, false>) fn;
  if (!use_wd)
    fn = amsgrad ? &adam_range<T, false, false, true> : &adam_range<T, false, false, false>;
  else if (decoupled)
    fn = amsgrad ? &adam_range<T, true, true, true> : &adam_range<T, true, true, false>;
  else
    fn = amsgrad ? &adam_range<T, true, false, true> : &adam_range<T, true, false, false>;
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) { fn(p_out, g_in, m_out, v_out, vmax_out, c, lo, hi); });
}

template <class T>
struct RmspropScalars {
  T sgn, wd, alpha, w, eps, momentum, lr;
};

// In-place RMSprop over [lo, hi), one branch-free specialization per flag combination.
template <class T, bool WD, bool CENTERED, bool MOM>
void rmsprop_range(T* p, const T* g_in, T* sq, T* ga, T* b, const RmspropScalars<T>& c, int64_t lo, int64_t hi) {
  const T sgn = c.sgn, wd = c.wd, alpha = c.alpha, w = c.w, eps = c.eps, momentum = c.momentum, lr = c.lr;
  for (int64_t i = lo; i < hi; ++i) {
    const T pv = p[i];
    T g = sgn * g_in[i];
    if constexpr (WD) g = g + wd * pv;
    const T sv = T(sq[i] * alpha) + w * g * g;
    sq[i] = sv;
    T avg;
    if constexpr (CENTERED) {
      const T gav = ga[i] + w * (g - ga[i]);
      ga[i] = gav;
      avg = std::sqrt(sv + T(-1) * (gav * gav));
    } else {
      avg = std::sqrt(sv);
    }
    avg = avg + eps;
    if constexpr (MOM) {
      const T buf = T(b[i] * momentum) + g / avg;
      b[i] = buf;
      p[i] = pv + (-lr) * buf;
    } else {
      p[i] = pv + (-lr) * (g / avg);
    }
  }
}

// In-place Adagrad over [lo, hi).
template <class T, bool WD>
void adagrad_range(T* p, const T* g_in, T* sum, T sgn, T wd, T eps, T clr, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) {
    const T pv = p[i];
    T g = sgn * g_in[i];
    if constexpr (WD) g = g + wd * pv;
    const T sv = sum[i] + g * g;
    sum[i] = sv;
    const T std_ = std::sqrt(sv) + eps;
    p[i] = pv + (-clr) * (g / std_);
  }
}

// inputs: param, grad, square_avg, grad_avg?, momentum_buffer?
// outputs: param, square_avg, grad_avg?, momentum_buffer?
// attrs: lr, alpha, eps, weight_decay, momentum, centered, maximize
template <class T>
void rmsprop_update_k(const KernelArgs& a) {
  check_operands(a, "rmsprop_update");
  const auto& at = *a.attrs;
  const T lr = T(at.f(0)), alpha = T(at.f(1)), w = T(1.0 - at.f(1)), eps = T(at.f(2));
  const T wd = T(at.f(3)), momentum = T(at.f(4));
  const bool use_wd = at.f(3) != 0.0, use_mom = at.f(4) > 0.0;
  const bool centered = at.i(5) != 0, maximize = at.i(6) != 0;
  const T* p_in = a.input(0).ptr<T>();
  const T* g_in = a.input(1).ptr<T>();
  const T* s_in = a.input(2).ptr<T>();
  const T* ga_in = a.has_input(3) ? a.in[3].ptr<T>() : nullptr;
  const T* b_in = a.has_input(4) ? a.in[4].ptr<T>() : nullptr;
  T* p_out = out_ptr<T>(a, 0, "rmsprop_update", "param");
  T* s_out = out_ptr<T>(a, 1, "rmsprop_update", "square_avg");
  T* ga_out = nullptr;
  T* b_out = nullptr;
  if (centered) {
    FW_CHECK(ga_in != nullptr, "rmsprop_update: centered needs a grad_avg input");
    ga_out = out_ptr<T>(a, 2, "rmsprop_update", "grad_avg");
  }
  if (use_mom) {
    FW_CHECK(b_in != nullptr, "rmsprop_update: momentum needs a momentum_buffer input");
    b_out = out_ptr<T>(a, 3, "rmsprop_update", "momentum_buffer");
  }
  const int64_t n = a.input(0).numel();
  // The loop runs in place on the outputs: copy the inputs over first when they differ.
  if (p_out != p_in) std::memmove(p_out, p_in, size_t(n) * sizeof(T));
  if (s_out != s_in) std::memmove(s_out, s_in, size_t(n) * sizeof(T));
  if (centered && ga_out != ga_in) std::memmove(ga_out, ga_in, size_t(n) * sizeof(T));
  if (use_mom && b_out != b_in) std::memmove(b_out, b_in, size_t(n) * sizeof(T));
  RmspropScalars<T> c{T(maximize ? -1 : 1), wd, alpha, w, eps, momentum, lr};
  decltype(&rmsprop_range<T, false, false, false>) fn;
  if (use_wd)
    fn = centered ? (use_mom ? &rmsprop_range<T, true, true, true> : &rmsprop_range<T, true, true, false>)
                  : (use_mom ? &rmsprop_range<T, true, false, true> : &rmsprop_range<T, true, false, false>);
  else
    fn = centered ? (use_mom ? &rmsprop_range<T, false, true, true> : &rmsprop_range<T, false, true, false>)
                  : (use_mom ? &rmsprop_range<T, false, false, true> : &rmsprop_range<T, false, false, false>);
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) { fn(p_out, g_in, s_out, ga_out, b_out, c, lo, hi); });
}

// inputs: param, grad, state_sum   outputs: param, state_sum
// attrs: lr, lr_decay, weight_decay, eps, step, maximize
template <class T>
void adagrad_update_k(const KernelArgs& a) {
  check_operands(a, "adagrad_update");
  const auto& at = *a.attrs;
  const double step = at.f(4);
  const T clr = T(at.f(0) / (1.0 + (step - 1.0) * at.f(1)));
  const T wd = T(at.f(2)), eps = T(at.f(3));
  const bool use_wd = at.f(2) != 0.0, maximize = at.i(5) != 0;
  const T* p_in = a.input(0).ptr<T>();
  const T* g_in = a.input(1).ptr<T>();
  const T* s_in = a.input(2).ptr<T>();
  T* p_out = out_ptr<T>(a, 0, "adagrad_update", "param");
  T* s_out = out_ptr<T>(a, 1, "adagrad_update", "state_sum");
  const int64_t n = a.input(0).numel();
  if (p_out != p_in) std::memmove(p_out, p_in, size_t(n) * sizeof(T));
  if (s_out != s_in) std::memmove(s_out, s_in, size_t(n) * sizeof(T));
  const T sgn = maximize ? T(-1) : T(1);
  auto fn = use_wd ? &adagrad_range<T, true> : &adagrad_range<T, false>;
  parallel_for(n, kGrain, [&](int64_t lo, int64_t hi) { fn(p_out, g_in, s_out, sgn, wd, eps, clr, lo, hi); });
}

}  // namespace

FW_REGISTER_KERNELS(optim) {
  register_kernel("sgd_update", DType::f32, &sgd_update_k<float>);
  register_kernel("sgd_update", DType::f64, &sgd_update_k<double>);
  register_kernel("adam_update", DType::f32, &adam_update_k<float>);
  register_kernel("adam_update", DType::f64, &adam_update_k<double>);
  register_kernel("rmsprop_update", DType::f32, &rmsprop_update_k<float>);
  register_kernel("rmsprop_update", DType::f64, &rmsprop_update_k<double>);
  register_kernel("adagrad_update", DType::f32, &adagrad_update_k<float>);
  register_kernel("adagrad_update", DType::f64, &adagrad_update_k<double>);
}

}  // namespace fw
