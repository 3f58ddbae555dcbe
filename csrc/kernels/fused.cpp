// fused.cpp: kernels for ops that the graph passes create (framework/ops/fused.py).
//
// linear_act: GEMM, then bias + activation in one pass over the output rows.
// conv2d_act: the conv2d kernel (kernels/conv.h) with an optional residual added and the
// activation applied (relu inside the conv's output tiles, others in one pass after).
// fused_elementwise: a small postfix expression program over up to 8 broadcast inputs,
// evaluated block by block in one loop over the data, so every input element is read once
// and the output written once, with no intermediate tensors. The opcodes are shared with
// framework/ops/fused.py (FUSED_OPCODES); never renumber them.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/loops.h"
#include "kernels/vec_math.h"

namespace fw {
namespace {

// ---------------------------------------------------------------- activations
enum class Act { none, relu, gelu, gelu_tanh, silu, sigmoid, tanh };

Act parse_act(const std::string& s) {
  if (s == "none") return Act::none;
  if (s == "relu") return Act::relu;
  if (s == "gelu") return Act::gelu;
  if (s == "gelu_tanh") return Act::gelu_tanh;
  if (s == "silu") return Act::silu;
  if (s == "sigmoid") return Act::sigmoid;
  if (s == "tanh") return Act::tanh;
  FW_CHECK(false, "linear_act: unknown activation '", s,
           "' (expected none, relu, gelu, gelu_tanh, silu, sigmoid or tanh)");
  return Act::none;
}

// The same formulas as the eager kernels in elementwise.cpp (vec_math.h for float), so
// fused == unfused and the loops vectorize.
template <class T>
inline T relu_f(T x) { return x > T(0) ? x : (x == x ? T(0) : x); }
template <class T>
inline T sigmoid_f(T x) { return vm::sigmoid(x); }
template <class T>
inline T silu_f(T x) { return x * vm::sigmoid(x); }
template <class T>
inline T gelu_f(T x) { return T(0.5) * x * (T(1) + vm::erf(x * T(0.7071067811865476))); }
template <class T>
inline T gelu_tanh_f(T x) {
  const T k = T(0.7978845608028654), c = T(0.044715);
  return T(0.5) * x * (T(1) + vm::tanh(k * (x + c * x * x * x)));
}

template <class T, Act A>
inline T activate(T v) {
  if constexpr (A == Act::relu) return relu_f(v);
  if constexpr (A == Act::gelu) return gelu_f(v);
  if constexpr (A == Act::gelu_tanh) return gelu_tanh_f(v);
  if constexpr (A == Act::silu) return silu_f(v);
  if constexpr (A == Act::sigmoid) return sigmoid_f(v);
  if constexpr (A == Act::tanh) return vm::tanh(v);
  return v;
}

// NOTE: the loops live in FW_TARGET_CLONES functions so vec_math's floor stays one
// instruction and the activation vectorizes.
template <class T, Act A>
FW_TARGET_CLONES void bias_act_row(T* __restrict row, const T* __restrict b, int64_t N) {
  if (b) {
    for (int64_t j = 0; j < N; ++j) row[j] = activate<T, A>(row[j] + b[j]);
  } else {
    for (int64_t j = 0; j < N; ++j) row[j] = activate<T, A>(row[j]);
  }
}

template <class T, Act A>
void bias_act_rows(T* o, const T* b, int64_t bst, int64_t M, int64_t N) {
  std::vector<T> bias;
  if (b && bst != 1) {  // a strided bias is packed once
    bias.resize(size_t(N));
    for (int64_t j = 0; j < N; ++j) bias[size_t(j)] = b[j * bst];
    b = bias.data();
  }
  parallel_for(M, std::max<int64_t>(1, 16384 / std::max<int64_t>(N, 1)), [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) bias_act_row<T, A>(o + i * N, b, N);
  });
}

template <class T>
void bias_act_dispatch(Act act, T* o, const T* b, int64_t bst, int64_t M, int64_t N) {
  switch (act) {
    case Act::none: bias_act_rows<T, Act::none>(o, b, bst, M, N); break;
    case Act::relu: bias_act_rows<T, Act::relu>(o, b, bst, M, N); break;
    case Act::gelu: bias_act_rows<T, Act::gelu>(o, b, bst, M, N); break;
    case Act::gelu_tanh: bias_act_rows<T, Act::gelu_tanh>(o, b, bst, M, N); break;
    case Act::silu: bias_act_rows<T, Act::silu>(o, b, bst, M, N); break;
    case Act::sigmoid: bias_act_rows<T, Act::sigmoid>(o, b, bst, M, N); break;
    case Act::tanh: bias_act_rows<T, Act::tanh>(o, b, bst, M, N); break;
  }
}

// linear_act(x (..., K), weight (N, K), bias (N)?, activation=#0) -> act(x @ weight^T + bias).
// The graph runtime may pass a 4th input: the weight pre-packed by pack_linear_weight (blas.h);
// eager calls (none) read the weight in place (linear_eager_nt, relu in its store) or use BLAS.
template <class T>
void linear_act_k(const KernelArgs& k) {
  const Act act = parse_act(k.attrs->str(0));
  std::vector<T> xpack;
  const LinearOperands<T> o = linear_operands<T>(k, "linear_act", xpack);
  T* out = k.output(0).ptr<T>();
  const T* packed = packed_weight_arg<T>(k, 3, o.N, o.K, o.x_cs);
  if (packed && linear_packed<T>(o.M, o.N, o.K, o.x, o.x_rs, packed, o.bias, o.b_st, act == Act::relu, out, o.N)) {
    if (act != Act::none && act != Act::relu) bias_act_dispatch<T>(act, out, nullptr, 0, o.M, o.N);
    return;
  }
  if (!packed && linear_eager_nt<T>(o, k.input(1), act == Act::relu, out)) {
    if (act != Act::none && act != Act::relu) bias_act_dispatch<T>(act, out, nullptr, 0, o.M, o.N);
    return;
  }
  const TensorView& w = k.input(1);
  gemm_strided<T>(o.M, o.N, o.K, T(1), o.x, o.x_rs, o.x_cs, w.ptr<T>(), w.strides[1], w.strides[0], T(0), out, o.N);
  bias_act_dispatch<T>(act, out, o.bias, o.b_st, o.M, o.N);
}

// conv2d_act(x, weight, bias?, residual?; stride, padding, dilation, groups, activation=#4);
// input 4: the weight pre-packed at load (prepack.h), from the graph runtime only.
// act(conv2d + residual). The conv kernel adds the residual and applies a relu while each
// output tile is in registers (f32 fast path); other activations run in one pass after.
template <class T>
void conv2d_act_k(const KernelArgs& k) {
  FW_CHECK(k.attrs->size() >= 5, "conv2d_act: expected 5 attributes, got ", k.attrs->size());
  Act act = parse_act(k.attrs->str(4));
  const bool fused =
      conv2d_forward<T>(k, "conv2d_act", act == Act::relu, k.has_input(3) ? &k.input(3) : nullptr, 4, 5);
  TensorView& out = k.output(0);
  FW_CHECK(out.is_contiguous(), "conv2d_act: output must be contiguous");
  if (act == Act::none || fused || out.numel() == 0) return;
  // One "row" per (image, channel) plane: the activation runs while the plane is in cache.
  int64_t plane = out.ndim >= 2 ? out.numel() / std::max<int64_t>(out.shape[0] * out.shape[1], 1) : out.numel();
  int64_t rows = plane ? out.numel() / plane : 0;
  bias_act_dispatch<T>(act, out.ptr<T>(), nullptr, 0, rows, plane);
}

// conv2d_act_maxpool(x, weight, bias?, residual?; stride, padding, dilation, groups,
// activation=#4 (none or relu), kernel_size=#5, pool_stride, pool_padding, pool_dilation,
// ceil_mode=#9); input 4: the packed weight, attribute #10: the layout (graph runtime only).
// max_pool2d(act(conv2d + residual)): each sample's conv map is pooled while it is in cache.
template <class T>
void conv2d_act_maxpool_k(const KernelArgs& k) {
  FW_CHECK(k.attrs->size() >= 10, "conv2d_act_maxpool: expected 10 attributes, got ", k.attrs->size());
  const Act act = parse_act(k.attrs->str(4));
  FW_CHECK(act == Act::none || act == Act::relu, "conv2d_act_maxpool: activation must be none or relu, got ",
           k.attrs->str(4));
  FW_CHECK(k.output(0).is_contiguous(), "conv2d_act_maxpool: output must be contiguous");
  conv2d_forward<T>(k, "conv2d_act_maxpool", act == Act::relu, k.has_input(3) ? &k.input(3) : nullptr, 4, 10, 5);
}

// ---------------------------------------------------------------- fused_elementwise
// Program: pairs (opcode, operand). LOAD/CONST push input[operand] / consts[operand]; unary
// ops replace the top; binary ops pop b, then replace a with f(a, b). Parameterized unary
// ops read their parameters from consts[operand] (and consts[operand + 1]).
enum Op : int64_t {
  LOAD = 0, CONST = 1,
  NEG = 10, ABS, EXP, LOG, LOG1P, SQRT, RSQRT, SIN, COS, TANH, SIGMOID, RELU, SILU, ERF,
  RECIPROCAL, GELU, GELU_TANH, FLOOR, CEIL, ROUND, SIGN,
  LEAKY_RELU = 40, ELU, CLAMP_MIN, CLAMP_MAX, SOFTPLUS,
  ADD = 60, SUB, MUL, DIV, POW, MAXIMUM, MINIMUM,
};
constexpr int kMaxInputs = 8;
constexpr int kMaxStack = 16;
constexpr int64_t kBlock = 256;

int arity(int64_t op) {
  if (op == LOAD || op == CONST) return 0;
  if ((op >= NEG && op <= SIGN) || (op >= LEAKY_RELU && op <= SOFTPLUS)) return 1;
  if (op >= ADD && op <= MINIMUM) return 2;
  return -1;
}

// Checks the program against the inputs and constants; returns the maximum stack depth.
int validate(const std::vector<int64_t>& prog, size_t nconst, const KernelArgs& k) {
  FW_CHECK(!prog.empty() && prog.size() % 2 == 0,
           "fused_elementwise: the program must be (opcode, operand) pairs, got ", prog.size(), " ints");
  int depth = 0, maxd = 0;
  for (size_t pc = 0; pc < prog.size(); pc += 2) {
    int64_t op = prog[pc], arg = prog[pc + 1];
    int n = arity(op);
    FW_CHECK(n >= 0, "fused_elementwise: unknown opcode ", op, " at instruction ", pc / 2);
    if (op == LOAD)
      FW_CHECK(arg >= 0 && arg < kMaxInputs && k.has_input(int(arg)),
               "fused_elementwise: LOAD of missing input ", arg);
    if (op == CONST || op == LEAKY_RELU || op == ELU || op == CLAMP_MIN || op == CLAMP_MAX)
      FW_CHECK(arg >= 0 && size_t(arg) < nconst, "fused_elementwise: constant #", arg, " missing");
    if (op == SOFTPLUS)
      FW_CHECK(arg >= 0 && size_t(arg) + 1 < nconst, "fused_elementwise: constants #", arg, "+1 missing");
    FW_CHECK(depth >= n, "fused_elementwise: stack underflow at instruction ", pc / 2);
    depth += (n == 0) ? 1 : (n == 2 ? -1 : 0);
    maxd = std::max(maxd, depth);
  }
  FW_CHECK(depth == 1, "fused_elementwise: the program leaves ", depth, " values, expected 1");
  FW_CHECK(maxd <= kMaxStack, "fused_elementwise: the program needs ", maxd,
           " stack slots, at most ", kMaxStack);
  return maxd;
}

// Stack entries are pointers: a contiguous input is read in place, and every op writes
// into its level's scratch block (or, for the last op, straight into a contiguous output).
template <class T, class F>
FW_TARGET_CLONES void map1(T* __restrict d, const T* __restrict x, int64_t m, F f) {
  for (int64_t j = 0; j < m; ++j) d[j] = f(x[j]);
}
template <class T, class F>
FW_TARGET_CLONES void map2(T* __restrict d, const T* __restrict x, const T* __restrict y, int64_t m, F f) {
  for (int64_t j = 0; j < m; ++j) d[j] = f(x[j], y[j]);
}

template <class T, class F>
FW_TARGET_CLONES void map1_inplace(T* __restrict d, int64_t m, F f) {
  for (int64_t j = 0; j < m; ++j) d[j] = f(d[j]);
}
template <class T, class F>
FW_TARGET_CLONES void map2_inplace(T* __restrict d, const T* __restrict y, int64_t m, F f) {
  for (int64_t j = 0; j < m; ++j) d[j] = f(d[j], y[j]);
}

// NOTE: every loop goes through a FW_TARGET_CLONES function: the baseline target has no
// SSE4.1 floor, which vm::exp needs to stay vectorized.
template <class T, class F>
inline void unary(T* d, const T* x, int64_t m, F f) {
  if (d == x) {
    map1_inplace(d, m, f);
  } else {
    map1(d, x, m, f);
  }
}
template <class T, class F>
inline void binary(T* d, const T* x, const T* y, int64_t m, F f) {
  if (d == x && d != y) {
    map2_inplace(d, y, m, f);
  } else if (d == y && d != x) {
    map2_inplace(d, x, m, [f](T yv, T xv) { return f(xv, yv); });
  } else if (d == x) {  // x is y is d
    map1_inplace(d, m, [f](T v) { return f(v, v); });
  } else {
    map2(d, x, y, m, f);
  }
}

template <class T>
void run_block(const std::vector<int64_t>& prog, const std::vector<double>& consts, char** p,
               const int64_t* s, int64_t m, T (*st)[kBlock]) {
  const T* top[kMaxStack];
  int sp = 0;
  const bool out_contig = s[0] == int64_t(sizeof(T));
  T* out = reinterpret_cast<T*>(p[0]);
  for (size_t pc = 0; pc < prog.size(); pc += 2) {
    int64_t op = prog[pc], arg = prog[pc + 1];
    const bool last = pc + 2 == prog.size();
    if (op == LOAD) {
      const char* src = p[1 + arg];
      int64_t bs = s[1 + arg];
      if (bs == int64_t(sizeof(T))) {
        top[sp] = reinterpret_cast<const T*>(src);
      } else {
        T* d = st[sp];
        if (bs == 0) {
          T v = *reinterpret_cast<const T*>(src);
          for (int64_t j = 0; j < m; ++j) d[j] = v;
        } else {
          for (int64_t j = 0; j < m; ++j) d[j] = *reinterpret_cast<const T*>(src + j * bs);
        }
        top[sp] = d;
      }
      ++sp;
      continue;
    }
    if (op == CONST) {
      T* d = st[sp];
      T v = T(consts[size_t(arg)]);
      for (int64_t j = 0; j < m; ++j) d[j] = v;
      top[sp++] = d;
      continue;
    }
    if (arity(op) == 1) {
      const T* x = top[sp - 1];
      T* d = (last && out_contig) ? out : st[sp - 1];
      switch (op) {
        case NEG: unary(d, x, m, [](T v) { return -v; }); break;
        case ABS: unary(d, x, m, [](T v) { return std::abs(v); }); break;
        case EXP: unary(d, x, m, [](T v) { return vm::exp(v); }); break;
        case LOG: unary(d, x, m, [](T v) { return std::log(v); }); break;
        case LOG1P: unary(d, x, m, [](T v) { return std::log1p(v); }); break;
        case SQRT: unary(d, x, m, [](T v) { return std::sqrt(v); }); break;
        case RSQRT: unary(d, x, m, [](T v) { return T(1) / std::sqrt(v); }); break;
        case SIN: unary(d, x, m, [](T v) { return std::sin(v); }); break;
        case COS: unary(d, x, m, [](T v) { return std::cos(v); }); break;
        case TANH: unary(d, x, m, [](T v) { return vm::tanh(v); }); break;
        case SIGMOID: unary(d, x, m, [](T v) { return sigmoid_f(v); }); break;
        case RELU: unary(d, x, m, [](T v) { return relu_f(v); }); break;
        case SILU: unary(d, x, m, [](T v) { return silu_f(v); }); break;
        case ERF: unary(d, x, m, [](T v) { return vm::erf(v); }); break;
        case RECIPROCAL: unary(d, x, m, [](T v) { return T(1) / v; }); break;
        case GELU: unary(d, x, m, [](T v) { return gelu_f(v); }); break;
        case GELU_TANH: unary(d, x, m, [](T v) { return gelu_tanh_f(v); }); break;
        case FLOOR: unary(d, x, m, [](T v) { return std::floor(v); }); break;
        case CEIL: unary(d, x, m, [](T v) { return std::ceil(v); }); break;
        case ROUND: unary(d, x, m, [](T v) { return std::nearbyint(v); }); break;
        case SIGN: unary(d, x, m, [](T v) { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0)); }); break;
        case LEAKY_RELU: {
          T a = T(consts[size_t(arg)]);
          unary(d, x, m, [=](T v) { return v > T(0) ? v : v * a; });
          break;
        }
        case ELU: {
          T a = T(consts[size_t(arg)]);
          unary(d, x, m, [=](T v) { return v > T(0) ? v : a * (std::exp(v) - T(1)); });
          break;
        }
        case CLAMP_MIN: {
          T lo = T(consts[size_t(arg)]);
          unary(d, x, m, [=](T v) { return (v != v) ? v : (v < lo ? lo : v); });
          break;
        }
        case CLAMP_MAX: {
          T hi = T(consts[size_t(arg)]);
          unary(d, x, m, [=](T v) { return (v != v) ? v : (v > hi ? hi : v); });
          break;
        }
        case SOFTPLUS: {
          T beta = T(consts[size_t(arg)]), th = T(consts[size_t(arg) + 1]);
          unary(d, x, m, [=](T v) {
            T bx = beta * v;
            return bx > th ? v : std::log1p(std::exp(bx)) / beta;
          });
          break;
        }
      }
      top[sp - 1] = d;
      continue;
    }
    const T* a = top[sp - 2];
    const T* b = top[sp - 1];
    T* d = (last && out_contig) ? out : st[sp - 2];
    switch (op) {
      case ADD: binary(d, a, b, m, [](T u, T v) { return u + v; }); break;
      case SUB: binary(d, a, b, m, [](T u, T v) { return u - v; }); break;
      case MUL: binary(d, a, b, m, [](T u, T v) { return u * v; }); break;
      case DIV: binary(d, a, b, m, [](T u, T v) { return u / v; }); break;
      case POW: binary(d, a, b, m, [](T u, T v) { return std::pow(u, v); }); break;
      case MAXIMUM:
        binary(d, a, b, m, [](T u, T v) { return (u != u || v != v) ? (u != u ? u : v) : (u > v ? u : v); });
        break;
      case MINIMUM:
        binary(d, a, b, m, [](T u, T v) { return (u != u || v != v) ? (u != u ? u : v) : (u < v ? u : v); });
        break;
    }
    --sp;
    top[sp - 1] = d;
  }
  if (top[0] == out) return;  // the last op wrote the output directly
  if (out_contig) {
    std::memcpy(out, top[0], size_t(m) * sizeof(T));
  } else {
    for (int64_t j = 0; j < m; ++j) *reinterpret_cast<T*>(p[0] + j * s[0]) = top[0][j];
  }
}

template <class T>
void fused_elementwise_k(const KernelArgs& k) {
  const std::vector<int64_t>& prog = k.attrs->ints(0);
  static const std::vector<double> no_consts;
  const AttrValue& c = k.attrs->at(1);
  FW_CHECK(c.kind == AttrValue::Floats || c.kind == AttrValue::None ||
               (c.kind == AttrValue::Ints && c.ints.empty()),
           "fused_elementwise: attribute #1 (consts) must be a float list");
  const std::vector<double>& consts = c.kind == AttrValue::Floats ? c.floats : no_consts;
  validate(prog, consts.size(), k);
  TensorView& out = k.output(0);
  FW_CHECK(out.dtype == k.input(0).dtype, "fused_elementwise: output dtype differs from input 0's");
  static const T zero = T(0);
  TensorView dummy;
  dummy.data = const_cast<T*>(&zero);
  dummy.dtype = out.dtype;
  dummy.ndim = 0;
  const TensorView* ins[kMaxInputs];
  for (int i = 0; i < kMaxInputs; ++i) {
    if (k.has_input(i)) {
      FW_CHECK(k.in[i].dtype == out.dtype, "fused_elementwise: input ", i, " has another dtype");
      ins[i] = &k.in[i];
    } else {
      ins[i] = &dummy;
    }
  }
  ElementwiseIter<1 + kMaxInputs> it(out, ins);
  it.for_each([&](char** p, const int64_t* s, int64_t n) {
    T st[kMaxStack][kBlock];
    char* q[1 + kMaxInputs];
    for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
      int64_t m = std::min(kBlock, n - b0);
      for (int i = 0; i <= kMaxInputs; ++i) q[i] = p[i] + b0 * s[i];
      run_block<T>(prog, consts, q, s, m, st);
    }
  }, 16384);
}

}  // namespace

FW_REGISTER_KERNELS(fused) {
  register_kernel("linear_act", DType::f32, &linear_act_k<float>);
  register_kernel("linear_act", DType::f64, &linear_act_k<double>);
  register_kernel("conv2d_act", DType::f32, &conv2d_act_k<float>);
  register_kernel("conv2d_act", DType::f64, &conv2d_act_k<double>);
  register_kernel("conv2d_act_maxpool", DType::f32, &conv2d_act_maxpool_k<float>);
  register_kernel("conv2d_act_maxpool", DType::f64, &conv2d_act_maxpool_k<double>);
  register_kernel("fused_elementwise", DType::f32, &fused_elementwise_k<float>);
  register_kernel("fused_elementwise", DType::f64, &fused_elementwise_k<double>);
}

}  // namespace fw
