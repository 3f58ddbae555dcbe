// blas.h: the GEMM entry points kernels use (OpenBLAS from scipy-openblas32, prefixed
// symbols). Row-major helpers that accept any strided 2-D view: a view with a unit stride
// on either axis goes straight to BLAS, anything else is packed into scratch first.
#pragma once
#include <cstdint>

#include "core/tensor_view.h"

namespace fw {

// C[M,N] = alpha * A[M,K] @ B[K,N] + beta * C, on raw strided matrices (strides in elements).
// C must have unit column stride.
template <class T>
void gemm_strided(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t a_rs, int64_t a_cs,
                  const T* B, int64_t b_rs, int64_t b_cs, T beta, T* C, int64_t ldc);

}  // namespace fw
