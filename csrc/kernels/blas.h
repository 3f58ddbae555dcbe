// blas.h: the GEMM entry points kernels use (OpenBLAS from scipy-openblas32, prefixed
// symbols). Row-major helpers that accept any strided 2-D view: a view with a unit stride
// on either axis goes straight to BLAS, anything else is packed into scratch first.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor_view.h"
#include "kernels/registry.h"

namespace fw {

// C[M,N] = alpha * A[M,K] @ B[K,N] + beta * C, on raw strided matrices (strides in elements).
// C must have unit column stride.
template <class T>
void gemm_strided(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t a_rs, int64_t a_cs,
                  const T* B, int64_t b_rs, int64_t b_cs, T beta, T* C, int64_t ldc);

// ---- pre-packed weights (the graph runtime packs them once, at load) ----
//
// linear/linear_act compute x[M,K] @ W[N,K]^T with W packed into panels of kPackedPanel
// output columns, each stored k-major: (panel p, k, j) = W[p * kPackedPanel + j, k]
// (zero-padded past N). The runtime passes that packed weight to the kernel as an extra
// trailing input (after the bias).
//   - A few rows (M <= kPackedMaxRows): the product streams the whole weight per call and is
//     bound by memory; it reads the panels in one contiguous pass with one vector FMA per
//     panel row and no horizontal sums (f32 and f64; f32 with 1-4 rows on AVX-512 in register
//     tiles of the rows x 4 panels, one broadcast of x per 4 panel rows).
//   - More rows, f32 on an AVX-512 CPU: register tiles of 12 rows x 2 panels (24 zmm
//     accumulators over the whole K), x read in place and broadcast, the panels streamed
//     from cache; no packing per call. ~1.25x OpenBLAS's sgemm on the MLP and transformer
//     shapes (OpenBLAS packs both operands on every call).
//   - Otherwise the kernel uses BLAS on the stored weight.
constexpr int64_t kPackedPanel = 16;
constexpr int64_t kPackedMaxRows = 8;
// Convolutions with a smaller K (C*kh*kw) never use a packed weight (kernels/conv.cpp says
// why), so the runtime does not pack theirs.
constexpr int64_t kPackedConvMinK = 256;

// Elements of W[N,K] packed.
inline int64_t packed_weight_numel(int64_t N, int64_t K) {
  return (N + kPackedPanel - 1) / kPackedPanel * kPackedPanel * K;
}

// Packs a strided W[N,K] (strides in elements) into `out` (packed_weight_numel elements).
template <class T>
void pack_linear_weight(const T* w, int64_t N, int64_t K, int64_t w_rs, int64_t w_cs, T* out);

// Packs a contiguous conv weight (N = Cout, C, kh, kw) the same way, as N rows of K =
// C*kh*kw, but with its K rows in tap order: packed row (i*kw + j)*C + c holds tap (c, i, j),
// so the taps of a conv output row that read real input rows (not the top or bottom
// padding) are one run of rows, and those of a column one run per kernel row
// (kernels/conv.cpp, tap_rows).
void pack_conv_weight(const float* w, int64_t N, int64_t C, int64_t kh, int64_t kw, float* out);

// out[M,N] (row stride ldo) = act(x[M,K] (row stride x_rs, unit column stride) @ W^T + bias)
// from the packed W, with act = relu when `relu`, else none (bias may be null; bias stride
// b_st). Returns false, computing nothing, when no packed path covers the product (f64 or
// no AVX-512 with M > kPackedMaxRows): the caller then uses BLAS. Parallel over panels.
template <class T>
bool linear_packed(int64_t M, int64_t N, int64_t K, const T* x, int64_t x_rs, const T* packed, const T* bias,
                   int64_t b_st, bool relu, T* out, int64_t ldo);

// The packed weight a linear kernel got as input `index` (from the runtime) when x has unit
// column stride; else null (use BLAS).
template <class T>
const T* packed_weight_arg(const KernelArgs& k, int index, int64_t N, int64_t K, int64_t x_cs) {
  if (!k.has_input(index) || x_cs != 1) return nullptr;
  const TensorView& p = k.in[index];
  FW_CHECK(p.dtype == k.in[1].dtype && p.is_contiguous() && p.numel() == packed_weight_numel(N, K),
           "packed weight: expected ", packed_weight_numel(N, K), " contiguous elements, got ", p.numel());
  return p.ptr<T>();
}

// The operands of linear / linear_act (x (..., K), weight (N, K), bias (N)?) checked and seen
// as matrices: x as (M, K) with a fixed row stride (a copy in `pack` when x's strides need
// one), the bias as a pointer and stride (null without a bias).
template <class T>
struct LinearOperands {
  int64_t M, N, K;
  const T* x;
  int64_t x_rs, x_cs;
  const T* bias;
  int64_t b_st;
};
template <class T>
LinearOperands<T> linear_operands(const KernelArgs& k, const char* op, std::vector<T>& pack);

// Eager linear with no packed weight (kernels/linear_nt.cpp): out[M,N] = act(x @ W^T + bias),
// act = relu when `relu`, from AVX-512 dot-product register tiles that read W (N, K) in place,
// when the product is f32 on an AVX-512 CPU, x and W have unit column strides and the shape
// is one where that measured faster than OpenBLAS; else returns false, computing nothing
// (the caller uses BLAS).
template <class T>
bool linear_eager_nt(const LinearOperands<T>& o, const TensorView& w, bool relu, T* out);

}  // namespace fw
