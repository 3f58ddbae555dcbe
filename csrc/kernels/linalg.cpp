// linalg.cpp: matmul (batch-broadcast), linear, addmm, baddbmm over OpenBLAS GEMM.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/allocator.h"
#include "core/parallel.h"
#include "kernels/blas.h"
#include "kernels/loops.h"

namespace fw {
namespace {

inline void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
                      int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  scipy_cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}
inline void blas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
                      int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  scipy_cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    int(M), int(N), int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

// Returns (pointer, transposed, leading dim) for a strided R x Cc matrix, packing when needed.
template <class T>
const T* as_blas_operand(const T* p, int64_t R, int64_t Cc, int64_t rs, int64_t cs, bool& trans,
                         int64_t& ld, std::vector<T>& pack) {
  if (cs == 1 && (rs >= std::max<int64_t>(Cc, 1) || R == 1)) {
    trans = false;
    ld = std::max<int64_t>(R == 1 ? Cc : rs, std::max<int64_t>(Cc, 1));
    return p;
  }
  if (rs == 1 && (cs >= std::max<int64_t>(R, 1) || Cc == 1)) {
    trans = true;
    ld = std::max<int64_t>(Cc == 1 ? R : cs, std::max<int64_t>(R, 1));
    return p;
  }
  pack.resize(size_t(R * Cc));
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < Cc; ++j) pack[size_t(i * Cc + j)] = p[i * rs + j * cs];
  trans = false;
  ld = std::max<int64_t>(Cc, 1);
  return pack.data();
}

// One single-threaded BLAS call (OpenBLAS always runs with one thread: the pool owns them).
template <class T>
void gemm_serial(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t a_rs, int64_t a_cs,
                 const T* B, int64_t b_rs, int64_t b_cs, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  std::vector<T> pa, pb;
  bool ta, tb;
  int64_t lda, ldb;
  const T* a = as_blas_operand(A, M, K, a_rs, a_cs, ta, lda, pa);
  const T* b = as_blas_operand(B, K, N, b_rs, b_cs, tb, ldb, pb);
  blas_gemm(ta, tb, M, N, K, alpha, a, lda, b, ldb, beta, C, std::max<int64_t>(ldc, 1));
}

}  // namespace

// Big products outside a parallel region are split over the pool along the larger of M and
// N (blocks of 16 columns/rows, one block range per thread), each block one serial BLAS call.
template <class T>
void gemm_strided(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t a_rs, int64_t a_cs,
                  const T* B, int64_t b_rs, int64_t b_cs, T beta, T* C, int64_t ldc) {
  const int64_t threads = get_num_threads();
  if (threads <= 1 || in_parallel_region() || M * N * std::max<int64_t>(K, 1) < (int64_t(1) << 18)) {
    gemm_serial<T>(M, N, K, alpha, A, a_rs, a_cs, B, b_rs, b_cs, beta, C, ldc);
    return;
  }
  const bool split_n = N >= M;
  const int64_t len = split_n ? N : M;
  const int64_t chunk = ((len + threads - 1) / threads + 15) / 16 * 16;
  parallel_for((len + chunk - 1) / chunk, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t s = c * chunk, n = std::min(len, s + chunk) - s;
      if (split_n)
        gemm_serial<T>(M, n, K, alpha, A, a_rs, a_cs, B + s * b_cs, b_rs, b_cs, beta, C + s, ldc);
      else
        gemm_serial<T>(n, N, K, alpha, A + s * a_rs, a_rs, a_cs, B, b_rs, b_cs, beta, C + s * ldc, ldc);
    }
  });
}
template void gemm_strided<float>(int64_t, int64_t, int64_t, float, const float*, int64_t, int64_t,
                                  const float*, int64_t, int64_t, float, float*, int64_t);
template void gemm_strided<double>(int64_t, int64_t, int64_t, double, const double*, int64_t, int64_t,
                                   const double*, int64_t, int64_t, double, double*, int64_t);

namespace {

// Batched C = alpha * A @ B + beta * C over broadcast batch dims. a: (..., M, K), b: (..., K, N),
// out: (..., M, N) contiguous; a's and b's batch dims broadcast to out's.
template <class T>
void batched_gemm(const TensorView& a, const TensorView& b, TensorView& out, T alpha, T beta) {
  FW_CHECK(a.ndim >= 2 && b.ndim >= 2 && out.ndim >= 2, "matmul: operands need 2+ dims");
  FW_CHECK(out.is_contiguous(), "matmul: output must be contiguous");
  int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  FW_CHECK(b.size(-2) == K, "matmul: inner dims differ (", K, " vs ", b.size(-2), ")");
  FW_CHECK(out.size(-2) == M && out.size(-1) == N, "matmul: output shape mismatch");
  int bnd = out.ndim - 2;
  int64_t batch = 1;
  for (int d = 0; d < bnd; ++d) batch *= out.shape[d];
  // Broadcast batch strides of a and b against out's batch shape.
  int64_t as[kMaxDims] = {}, bs[kMaxDims] = {};
  for (int d = 0; d < bnd; ++d) {
    int ad = d - (bnd - (a.ndim - 2)), bd = d - (bnd - (b.ndim - 2));
    if (ad >= 0) {
      FW_CHECK(a.shape[ad] == out.shape[d] || a.shape[ad] == 1, "matmul: batch dims do not broadcast");
      as[d] = a.shape[ad] == 1 ? 0 : a.strides[ad];
    }
    if (bd >= 0) {
      FW_CHECK(b.shape[bd] == out.shape[d] || b.shape[bd] == 1, "matmul: batch dims do not broadcast");
      bs[d] = b.shape[bd] == 1 ? 0 : b.strides[bd];
    }
  }
  const T* ap = a.ptr<T>();
  const T* bp = b.ptr<T>();
  T* op = out.ptr<T>();
  auto one = [&](int64_t i) {
    int64_t rem = i, ao = 0, bo = 0;
    for (int d = bnd - 1; d >= 0; --d) {
      int64_t idx = rem % out.shape[d];
      rem /= out.shape[d];
      ao += idx * as[d];
      bo += idx * bs[d];
    }
    gemm_strided<T>(M, N, K, alpha, ap + ao, a.stride(-2), a.stride(-1), bp + bo, b.stride(-2),
                    b.stride(-1), beta, op + i * M * N, N);
  };
  // Many small products: one per worker, serial BLAS. Few big ones: each split over the pool.
  if (batch > 1 && M * N * K < (int64_t(1) << 21)) {
    parallel_for(batch, 1, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
}

template <class T>
void matmul_k(const KernelArgs& k) {
  batched_gemm<T>(k.input(0), k.input(1), k.output(0), T(1), T(0));
}

// Writes beta * src broadcast into out (contiguous).
template <class T>
void fill_scaled(TensorView& out, const TensorView& src, T beta) {
  unary_kernel<T, T>(out, src, [=](T x) { return beta * x; });
}

// addmm(input, m1, m2, beta=#0, alpha=#1); baddbmm has the same form with batch dims.
template <class T>
void addmm_k(const KernelArgs& k) {
  T beta = T(k.attrs->f(0)), alpha = T(k.attrs->f(1));
  TensorView& out = k.output(0);
  if (beta != T(0)) fill_scaled<T>(out, k.input(0), beta);
  batched_gemm<T>(k.input(1), k.input(2), out, alpha, beta != T(0) ? T(1) : T(0));
}

// linear(x (..., K), weight (N, K), bias (N) optional) -> (..., N).
template <class T>
void linear_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  const TensorView& w = k.input(1);
  TensorView& out = k.output(0);
  FW_CHECK(x.ndim >= 1 && w.ndim == 2, "linear: bad operand ranks");
  int64_t K = x.size(-1), N = w.size(0);
  FW_CHECK(w.size(1) == K, "linear: weight has in_features ", w.size(1), ", input has ", K);
  FW_CHECK(out.is_contiguous(), "linear: output must be contiguous");
  int64_t M = K == 0 ? out.numel() / std::max<int64_t>(N, 1) : x.numel() / K;
  FW_CHECK(out.ndim >= 1 && out.size(-1) == N && out.numel() == M * N, "linear: output has ", out.numel(),
           " elements, expected ", M, " x ", N);
  // x as an (M, K) matrix: needs rows at a fixed stride.
  const T* xp = x.ptr<T>();
  int64_t x_rs = K, x_cs = 1;
  std::vector<T> xpack;
  if (!x.is_contiguous()) {
    if (x.ndim == 2) {
      x_rs = x.strides[0];
      x_cs = x.strides[1];
    } else {
      xpack.resize(size_t(x.numel()));
      TensorView dst = make_view(xpack.data(), x.dtype, x.ndim, x.shape);
      unary_kernel<T, T>(dst, x, [](T v) { return v; });
      xp = xpack.data();
    }
  }
  T beta = T(0);
  if (k.has_input(2)) {
    const TensorView& b = k.input(2);
    FW_CHECK(b.numel() == N, "linear: bias has ", b.numel(), " elements, expected ", N);
    T* o = out.ptr<T>();
    const T* bp = b.ptr<T>();
    int64_t bst = b.ndim ? b.strides[b.ndim - 1] : 0;
    parallel_for(M, 256, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i)
        for (int64_t j = 0; j < N; ++j) o[i * N + j] = bp[j * bst];
    });
    beta = T(1);
  }
  gemm_strided<T>(M, N, K, T(1), xp, x_rs, x_cs, w.ptr<T>(), w.strides[1], w.strides[0], beta,
                  out.ptr<T>(), N);
}

}  // namespace

FW_REGISTER_KERNELS(linalg) {
  register_kernel("matmul", DType::f32, &matmul_k<float>);
  register_kernel("matmul", DType::f64, &matmul_k<double>);
  register_kernel("addmm", DType::f32, &addmm_k<float>);
  register_kernel("addmm", DType::f64, &addmm_k<double>);
  register_kernel("baddbmm", DType::f32, &addmm_k<float>);
  register_kernel("baddbmm", DType::f64, &addmm_k<double>);
  register_kernel("linear", DType::f32, &linear_k<float>);
  register_kernel("linear", DType::f64, &linear_k<double>);
}

}  // namespace fw
