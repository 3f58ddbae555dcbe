// loss.cpp: nll_loss and the pointwise losses (mse, l1, smooth_l1, binary_cross_entropy,
// binary_cross_entropy_with_logits), each with a backward op. Reduction codes follow torch:
// 0 none, 1 mean, 2 sum (nn::Reduction). Reductions sum fixed blocks in double and add the
// block sums in order, so results do not depend on the thread count.
//
//   nll_loss(input, target, weight?; reduction=#0, ignore_index=#1) -> (out, total_weight)
//     input (C) | (N, C) | (N, C, d...) contiguous; target int64 () | (N) | (N, d...).
//   nll_loss_backward(grad, input, target, weight?, total_weight; reduction=#0,
//     ignore_index=#1) -> grad_input
//   <loss>(input, target, weight?, pos_weight?; reduction=#0, beta=#1) -> out
//   <loss>_backward(grad, input, target, weight?, pos_weight?; reduction=#0, beta=#1)
//     -> (grad_input, grad_target)
//     target, weight and pos_weight have input's shape (the Python side broadcasts them).
#include <cmath>
#include <limits>
#include <vector>

#include "core/parallel.h"
#include "kernels/nn_common.h"
#include "kernels/registry.h"

namespace fw {
namespace {

constexpr int64_t kBlock = 8192;

// sum over i in [0, n) of f(i), deterministic across thread counts.
template <class F>
double blocked_sum(int64_t n, const F& f) {
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(size_t(std::max<int64_t>(nb, 1)), 0.0);
  parallel_for(nb, 1, [&](int64_t bs, int64_t be) {
    for (int64_t b = bs; b < be; ++b) {
      double acc = 0;
      const int64_t e = std::min(n, (b + 1) * kBlock);
      for (int64_t i = b * kBlock; i < e; ++i) acc += f(i);
      part[size_t(b)] = acc;
    }
  });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

int64_t reduction_of(const KernelArgs& k, const char* op) {
  int64_t r = k.attrs->i(0);
  FW_CHECK(r == nn::kNone || r == nn::kMean || r == nn::kSum, op, ": bad reduction code ", r);
  return r;
}

// ---- nll_loss ----------------------------------------------------------------------------

struct NllGeom {
  int64_t N = 1, C = 0, S = 1;
};

NllGeom nll_geom(const TensorView& x, const TensorView& t, const char* op) {
  NllGeom g;
  FW_CHECK(x.ndim >= 1, op, ": input must have at least 1 dim");
  if (x.ndim == 1) {
    g.C = x.shape[0];
  } else {
    g.N = x.shape[0];
    g.C = x.shape[1];
    for (int d = 2; d < x.ndim; ++d) g.S *= x.shape[d];
  }
  FW_CHECK(t.dtype == DType::i64, op, ": target must be int64, got ", dtype_name(t.dtype));
  FW_CHECK(t.numel() == g.N * g.S, op, ": target has ", t.numel(), " elements, expected ", g.N * g.S);
  return g;
}

template <class T>
void nll_loss_k(const KernelArgs& k) {
  const char* op = "nll_loss";
  nn::check_contig(k, op);
  const TensorView &x = k.input(0), &t = k.input(1);
  NllGeom g = nll_geom(x, t, op);
  const int64_t red = reduction_of(k, op);
  const int64_t ignore = k.attrs->i(1);
  const T* w = k.has_input(2) ? k.in[2].ptr<T>() : nullptr;
  FW_CHECK(!w || k.in[2].numel() == g.C, op, ": weight tensor should be defined either for all ", g.C,
           " classes or no classes but got weight tensor of shape: [", k.in[2].numel(), "]");
  const T* xp = x.ptr<T>();
  const int64_t* tp = t.ptr<int64_t>();
  const int64_t n = g.N * g.S;
  nn::check_numel(k.output(0), red == nn::kNone ? n : 1, op, "output");
  nn::check_numel(k.output(1), 1, op, "total_weight");
  for (int64_t i = 0; i < n; ++i)
    FW_CHECK_INDEX(tp[i] == ignore || (tp[i] >= 0 && tp[i] < g.C), "Target ", tp[i], " is out of bounds.");
  auto elem = [&](int64_t i, T& wt) -> T {  // -w[t] * x[n, t, s] for flat target index i
    const int64_t c = tp[i];
    if (c == ignore) {
      wt = 0;
      return 0;
    }
    wt = w ? w[c] : T(1);
    const int64_t nn_ = i / g.S, s = i % g.S;
    return -wt * xp[(nn_ * g.C + c) * g.S + s];
  };
  T* out = k.output(0).ptr<T>();
  T* total = k.output(1).ptr<T>();
  if (red == nn::kNone) {
    T wt;
    double tw = 0;
    for (int64_t i = 0; i < n; ++i) {
      out[i] = elem(i, wt);
      tw += double(wt);
    }
    total[0] = T(tw);
    return;
  }
  double tw = blocked_sum(n, [&](int64_t i) {
    T wt;
    elem(i, wt);
    return double(wt);
  });
  double s = blocked_sum(n, [&](int64_t i) {
    T wt;
    return double(elem(i, wt));
  });
  total[0] = T(tw);
  out[0] = T(red == nn::kMean ? s / tw : s);
}

template <class T>
void nll_loss_backward_k(const KernelArgs& k) {
  const char* op = "nll_loss_backward";
  nn::check_contig(k, op);
  const TensorView &gv = k.input(0), &x = k.input(1), &t = k.input(2);
  NllGeom g = nll_geom(x, t, op);
  const int64_t red = reduction_of(k, op);
  const int64_t ignore = k.attrs->i(1);
  if (k.has_input(3)) nn::check_numel(k.in[3], g.C, op, "weight");
  nn::check_numel(k.input(4), 1, op, "total_weight");
  nn::check_numel(k.output(0), x.numel(), op, "grad_input");
  const T* w = k.has_input(3) ? k.in[3].ptr<T>() : nullptr;
  const T total = k.input(4).ptr<T>()[0];
  const int64_t* tp = t.ptr<int64_t>();
  const T* gp = gv.ptr<T>();
  T* gx = k.output(0).ptr<T>();
  const int64_t n = g.N * g.S;
  FW_CHECK(gv.numel() == (red == nn::kNone ? n : 1), op, ": grad has ", gv.numel(), " elements");
  std::fill(gx, gx + x.numel(), T(0));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = tp[i];
    if (c == ignore) continue;
    FW_CHECK_INDEX(c >= 0 && c < g.C, "Target ", c, " is out of bounds.");
    T gi = red == nn::kNone ? gp[i] : (red == nn::kMean ? gp[0] / total : gp[0]);
    const int64_t nn_ = i / g.S, s = i % g.S;
    gx[(nn_ * g.C + c) * g.S + s] = -(w ? w[c] : T(1)) * gi;
  }
}

// ---- pointwise losses --------------------------------------------------------------------
// Each defines loss(x, t, w, pw, beta) and grad(x, t, w, pw, beta, &dx, &dt) (w, pw = 1 when absent).

struct Mse {
  static constexpr const char* name = "mse_loss";
  template <class T>
  static T loss(T x, T t, T, T, double) {
    return (x - t) * (x - t);
  }
  template <class T>
  static void grad(T x, T t, T, T, double, T& dx, T& dt) {
    dx = T(2) * (x - t);
    dt = -dx;
  }
};

struct L1 {
  static constexpr const char* name = "l1_loss";
  template <class T>
  static T loss(T x, T t, T, T, double) {
    return std::abs(x - t);
  }
  template <class T>
  static void grad(T x, T t, T, T, double, T& dx, T& dt) {
    T d = x - t;
    dx = T((d > 0) - (d < 0));
    dt = -dx;
  }
};

struct SmoothL1 {
  static constexpr const char* name = "smooth_l1_loss";
  template <class T>
  static T loss(T x, T t, T, T, double beta) {
    T d = std::abs(x - t);
    return d < T(beta) ? T(0.5) * d * d / T(beta) : d - T(0.5 * beta);
  }
  template <class T>
  static void grad(T x, T t, T, T, double beta, T& dx, T& dt) {
    T d = x - t;
    dx = std::abs(d) < T(beta) ? d / T(beta) : T((d > 0) - (d < 0));
    dt = -dx;
  }
};

struct Bce {
  static constexpr const char* name = "binary_cross_entropy";
  template <class T>
  static T loss(T x, T t, T w, T, double) {
    FW_CHECK(x >= T(0) && x <= T(1), "binary_cross_entropy: all elements of input should be between 0 and 1");
    T lx = std::max(std::log(x), T(-100)), l1x = std::max(std::log1p(-x), T(-100));
    return -w * (t * lx + (T(1) - t) * l1x);
  }
  template <class T>
  static void grad(T x, T t, T w, T, double, T& dx, T& dt) {
    dx = w * (x - t) / std::max((T(1) - x) * x, T(1e-12));
    dt = w * (std::max(std::log1p(-x), T(-100)) - std::max(std::log(x), T(-100)));
  }
};

struct BceLogits {
  static constexpr const char* name = "binary_cross_entropy_with_logits";
  // softplus(-x) = log(1 + exp(-x)), computed stably
  template <class T>
  static T sp_neg(T x) {
    return std::log1p(std::exp(-std::abs(x))) + std::max(-x, T(0));
  }
  template <class T>
  static T loss(T x, T t, T w, T pw, double) {
    return w * ((T(1) - t) * x + (T(1) + (pw - T(1)) * t) * sp_neg(x));
  }
  template <class T>
  static void grad(T x, T t, T w, T pw, double, T& dx, T& dt) {
    T sig = T(1) / (T(1) + std::exp(-x));
    dx = w * ((pw * t + T(1) - t) * sig - pw * t);
    dt = w * ((pw - T(1)) * sp_neg(x) - x);
  }
};

template <class T>
struct PointArgs {
  const T *x, *t, *w, *pw;
  int64_t n;
  T wi(int64_t i) const { return w ? w[i] : T(1); }
  T pwi(int64_t i) const { return pw ? pw[i] : T(1); }
};

template <class T>
PointArgs<T> point_args(const KernelArgs& k, int first, const char* op) {
  const TensorView& x = k.input(first);
  PointArgs<T> a{x.ptr<T>(), k.input(first + 1).ptr<T>(), nullptr, nullptr, x.numel()};
  FW_CHECK(k.input(first + 1).numel() == a.n, op, ": target size ", k.input(first + 1).numel(),
           " differs from input size ", a.n);
  for (int j = 2; j < 4; ++j) {
    if (!k.has_input(first + j)) continue;
    FW_CHECK(k.in[first + j].numel() == a.n, op, ": input #", first + j, " must have the input's size ", a.n);
    (j == 2 ? a.w : a.pw) = k.in[first + j].ptr<T>();
  }
  return a;
}

template <class T, class Loss>
void pointwise_loss_k(const KernelArgs& k) {
  nn::check_contig(k, Loss::name);
  const int64_t red = reduction_of(k, Loss::name);
  const double beta = k.attrs->f(1);
  PointArgs<T> a = point_args<T>(k, 0, Loss::name);
  nn::check_numel(k.output(0), red == nn::kNone ? a.n : 1, Loss::name, "output");
  T* out = k.output(0).ptr<T>();
  auto f = [&](int64_t i) { return Loss::loss(a.x[i], a.t[i], a.wi(i), a.pwi(i), beta); };
  if (red == nn::kNone) {
    parallel_for(a.n, 16384, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = f(i);
    });
    return;
  }
  double s = blocked_sum(a.n, [&](int64_t i) { return double(f(i)); });
  out[0] = T(red == nn::kMean ? s / double(a.n) : s);
}

template <class T, class Loss>
void pointwise_loss_backward_k(const KernelArgs& k) {
  nn::check_contig(k, Loss::name);
  const int64_t red = reduction_of(k, Loss::name);
  const double beta = k.attrs->f(1);
  const TensorView& gv = k.input(0);
  PointArgs<T> a = point_args<T>(k, 1, Loss::name);
  FW_CHECK(gv.numel() == (red == nn::kNone ? a.n : 1), Loss::name, "_backward: grad has ", gv.numel(),
           " elements");
  nn::check_numel(k.output(0), a.n, Loss::name, "grad_input");
  nn::check_numel(k.output(1), a.n, Loss::name, "grad_target");
  const T* gp = gv.ptr<T>();
  T* gx = k.output(0).ptr<T>();
  T* gt = k.output(1).ptr<T>();
  const T g0 = red == nn::kNone ? T(0) : (red == nn::kMean ? gp[0] / T(a.n) : gp[0]);
  parallel_for(a.n, 16384, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      T dx, dt;
      Loss::grad(a.x[i], a.t[i], a.wi(i), a.pwi(i), beta, dx, dt);
      const T g = red == nn::kNone ? gp[i] : g0;
      gx[i] = g * dx;
      gt[i] = g * dt;
    }
  });
}

}  // namespace

FW_REGISTER_KERNELS(loss) {
  using nn::contiguous_inputs;
  register_kernel("nll_loss", DType::f32, &contiguous_inputs<&nll_loss_k<float>>);
  register_kernel("nll_loss", DType::f64, &contiguous_inputs<&nll_loss_k<double>>);
  register_kernel("nll_loss_backward", DType::f32, &contiguous_inputs<&nll_loss_backward_k<float>>);
  register_kernel("nll_loss_backward", DType::f64, &contiguous_inputs<&nll_loss_backward_k<double>>);
#define REG_LOSS(L)                                                                       \
  register_kernel(L::name, DType::f32, &contiguous_inputs<&pointwise_loss_k<float, L>>);  \
  register_kernel(L::name, DType::f64, &contiguous_inputs<&pointwise_loss_k<double, L>>); \
  register_kernel(std::string(L::name) + "_backward", DType::f32,                         \
                  &contiguous_inputs<&pointwise_loss_backward_k<float, L>>);              \
  register_kernel(std::string(L::name) + "_backward", DType::f64,                         \
                  &contiguous_inputs<&pointwise_loss_backward_k<double, L>>);
  REG_LOSS(Mse)
  REG_LOSS(L1)
  REG_LOSS(SmoothL1)
  REG_LOSS(Bce)
  REG_LOSS(BceLogits)
#undef REG_LOSS
}

}  // namespace fw
