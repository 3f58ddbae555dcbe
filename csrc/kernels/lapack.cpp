// lapack.cpp: linalg_solve, linalg_inv, linalg_slogdet, linalg_cholesky, linalg_qr and
// linalg_eigh over LAPACK (the
// OpenBLAS of scipy-openblas32, symbols prefixed scipy_). Each batch matrix is copied into a
// column-major scratch buffer (LAPACK's layout; the copy also takes any strides), factored
// there by one single-threaded LAPACK call, and the batch is split over the pool. A failure
// (a singular matrix, one not positive-definite) is reported after the loop, naming the
// first batch element it happened to, as torch does.
#include <lapacke.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "kernels/registry.h"
#include "kernels/strided.h"

namespace fw {
namespace {

int gesv(int n, int nrhs, float* a, int* ipiv, float* b) {
  return scipy_LAPACKE_sgesv_work(LAPACK_COL_MAJOR, n, nrhs, a, n, ipiv, b, n);
}
int gesv(int n, int nrhs, double* a, int* ipiv, double* b) {
  return scipy_LAPACKE_dgesv_work(LAPACK_COL_MAJOR, n, nrhs, a, n, ipiv, b, n);
}
int getrf(int n, float* a, int* ipiv) { return scipy_LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, n, n, a, n, ipiv); }
int getrf(int n, double* a, int* ipiv) { return scipy_LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, n, n, a, n, ipiv); }
int potrf(int n, float* a) { return scipy_LAPACKE_spotrf_work(LAPACK_COL_MAJOR, 'L', n, a, n); }
int potrf(int n, double* a) { return scipy_LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', n, a, n); }
int syevd(int n, float* a, float* w) { return scipy_LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', 'L', n, a, n, w); }
int syevd(int n, double* a, double* w) { return scipy_LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', 'L', n, a, n, w); }
int geqrf(int m, int n, float* a, float* tau) { return scipy_LAPACKE_sgeqrf(LAPACK_COL_MAJOR, m, n, a, m, tau); }
int geqrf(int m, int n, double* a, double* tau) { return scipy_LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, n, a, m, tau); }
int orgqr(int m, int n, int k, float* a, const float* tau) {
  return scipy_LAPACKE_sorgqr(LAPACK_COL_MAJOR, m, n, k, a, m, tau);
}
int orgqr(int m, int n, int k, double* a, const double* tau) {
  return scipy_LAPACKE_dorgqr(LAPACK_COL_MAJOR, m, n, k, a, m, tau);
}

// A view of square matrices (..., n, n): its n and batch count, checked.
struct Batch {
  int64_t n = 0, count = 1;
};

Batch square_batch(const TensorView& a, const char* op) {
  FW_CHECK(a.ndim >= 2, op, ": A must have at least 2 dimensions, got ", a.ndim);
  Batch b;
  b.n = a.shape[a.ndim - 1];
  FW_CHECK(a.shape[a.ndim - 2] == b.n, op, ": A must be batches of square matrices, but they are ",
           a.shape[a.ndim - 2], " by ", b.n, " matrices");
  // Each call factors an n x n scratch copy; an expanded (stride-0) A costs no memory itself,
  // so n is bounded here (16384^2 doubles: 2 GiB, and ~10^12 flops per matrix).
  FW_CHECK(b.n <= 16384, op, ": matrices of size ", b.n, " are larger than the 16384 supported");
  for (int d = 0; d < a.ndim - 2; ++d) b.count *= a.shape[d];
  return b;
}

// Batch matrix i of v (R x C, any strides) into column-major dst.
template <class T>
void load_col_major(const TensorView& v, int64_t i, T* dst) {
  const int64_t R = v.shape[v.ndim - 2], C = v.shape[v.ndim - 1];
  const int64_t rs = v.strides[v.ndim - 2], cs = v.strides[v.ndim - 1];
  const T* p = v.ptr<T>() + batch_offset(v, i);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t r = 0; r < R; ++r) dst[c * R + r] = p[r * rs + c * cs];
}

// Column-major src (R x C) into row-major out (contiguous).
template <class T>
void store_row_major(const T* src, int64_t R, int64_t C, T* out) {
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) out[r * C + c] = src[c * R + r];
}

void check_out(const TensorView& out, int64_t numel, const char* op) {
  FW_CHECK(out.numel() == numel && (numel == 0 || out.is_contiguous()), op, ": output must be contiguous with ",
           numel, " elements, got ", out.numel());
}

// Runs fn(i, scratch) for each batch matrix over the pool; fn returns LAPACK's info. The
// first failing batch element (lowest index) and its info, or (-1, 0).
template <class T, class Fn>
std::pair<int64_t, int> for_each_matrix(int64_t count, int64_t scratch, const Fn& fn) {
  std::atomic<int64_t> bad{std::numeric_limits<int64_t>::max()};
  std::vector<int> infos(static_cast<size_t>(count), 0);
  parallel_for(count, 1, [&](int64_t s, int64_t e) {
    std::vector<T> buf(static_cast<size_t>(scratch));
    for (int64_t i = s; i < e; ++i) {
      const int info = fn(i, buf.data());
      if (info != 0) {
        infos[size_t(i)] = info;
        int64_t cur = bad.load();
        while (i < cur && !bad.compare_exchange_weak(cur, i)) {
        }
      }
    }
  });
  const int64_t b = bad.load();
  return b == std::numeric_limits<int64_t>::max() ? std::pair<int64_t, int>{-1, 0}
                                                   : std::pair<int64_t, int>{b, infos[size_t(b)]};
}

// linalg_solve(A (..., n, n), B (..., n, k)) -> X with A X = B; batch shapes equal (the
// Python side broadcasts them).
template <class T>
void solve_k(const KernelArgs& k) {
  const TensorView& a = k.input(0);
  const TensorView& b = k.input(1);
  const Batch bt = square_batch(a, "linalg.solve");
  FW_CHECK(b.ndim == a.ndim && b.shape[b.ndim - 2] == bt.n, "linalg.solve: B must be (..., ", bt.n,
           ", k) with A's batch dims, got ", b.ndim, " dims");
  for (int d = 0; d < a.ndim - 2; ++d)
    FW_CHECK(a.shape[d] == b.shape[d], "linalg.solve: A and B batch dims differ at dim ", d);
  const int64_t n = bt.n, nrhs = b.shape[b.ndim - 1];
  FW_CHECK(nrhs <= INT_MAX, "linalg.solve: too many right-hand sides");
  TensorView& out = k.output(0);
  check_out(out, bt.count * n * nrhs, "linalg.solve");
  T* op = out.ptr<T>();
  const auto [bad, info] = for_each_matrix<T>(bt.count, n * n + n * nrhs + n, [&](int64_t i, T* buf) {
    T *A = buf, *B = buf + n * n;
    int* ipiv = reinterpret_cast<int*>(B + n * nrhs);  // n ints fit in n Ts
    load_col_major(a, i, A);
    load_col_major(b, i, B);
    const int r = n ? gesv(int(n), int(nrhs), A, ipiv, B) : 0;
    if (r == 0) store_row_major(B, n, nrhs, op + i * n * nrhs);
    return r;
  });
  FW_CHECK(bad < 0, "linalg.solve: (Batch element ", bad, "): The solver failed because the input matrix is ",
           "singular (U[", info, ",", info, "] is zero).");
}

// linalg_inv(A (..., n, n)) -> A^-1, by solving A X = I.
template <class T>
void inv_k(const KernelArgs& k) {
  const TensorView& a = k.input(0);
  const Batch bt = square_batch(a, "linalg.inv");
  const int64_t n = bt.n;
  TensorView& out = k.output(0);
  check_out(out, bt.count * n * n, "linalg.inv");
  T* op = out.ptr<T>();
  const auto [bad, info] = for_each_matrix<T>(bt.count, 2 * n * n + n, [&](int64_t i, T* buf) {
    T *A = buf, *B = buf + n * n;
    int* ipiv = reinterpret_cast<int*>(B + n * n);
    load_col_major(a, i, A);
    for (int64_t j = 0; j < n * n; ++j) B[j] = T(0);
    for (int64_t j = 0; j < n; ++j) B[j * n + j] = T(1);
    const int r = n ? gesv(int(n), int(n), A, ipiv, B) : 0;
    if (r == 0) store_row_major(B, n, n, op + i * n * n);
    return r;
  });
  FW_CHECK(bad < 0, "linalg.inv: (Batch element ", bad, "): The diagonal element ", info,
           " is zero, the inversion could not be completed because the input matrix is singular.");
}

// linalg_slogdet(A (..., n, n)) -> (sign, log|det|) from an LU factorization: sign 0 and
// log|det| -inf for a singular matrix, as torch.
template <class T>
void slogdet_k(const KernelArgs& k) {
  const TensorView& a = k.input(0);
  const Batch bt = square_batch(a, "linalg.slogdet");
  const int64_t n = bt.n;
  TensorView& sign = k.output(0);
  TensorView& logabs = k.output(1);
  check_out(sign, bt.count, "linalg.slogdet");
  check_out(logabs, bt.count, "linalg.slogdet");
  T *sp = sign.ptr<T>(), *lp = logabs.ptr<T>();
  for_each_matrix<T>(bt.count, n * n + n, [&](int64_t i, T* buf) {
    int* ipiv = reinterpret_cast<int*>(buf + n * n);
    load_col_major(a, i, buf);
    const int r = n ? getrf(int(n), buf, ipiv) : 0;
    T s = 1, l = 0;
    if (r > 0) {  // an exact zero pivot: singular
      s = 0, l = -std::numeric_limits<T>::infinity();
    } else {
      for (int64_t j = 0; j < n; ++j) {
        const T u = buf[j * n + j];
        if (ipiv[j] != j + 1) s = -s;
        if (u < 0) s = -s;
        l += std::log(std::abs(u));
      }
    }
    sp[i] = s, lp[i] = l;
    return r < 0 ? r : 0;
  });
}

// linalg_cholesky(A (..., n, n)) -> lower L with L L^T = A, reading A's lower triangle.
template <class T>
void cholesky_k(const KernelArgs& k) {
  const TensorView& a = k.input(0);
  const Batch bt = square_batch(a, "linalg.cholesky");
  const int64_t n = bt.n;
  TensorView& out = k.output(0);
  check_out(out, bt.count * n * n, "linalg.cholesky");
  T* op = out.ptr<T>();
  const auto [bad, info] = for_each_matrix<T>(bt.count, n * n, [&](int64_t i, T* buf) {
    load_col_major(a, i, buf);
    const int r = n ? potrf(int(n), buf) : 0;
    if (r == 0) {
      for (int64_t c = 0; c < n; ++c)
        for (int64_t rr = 0; rr < c; ++rr) buf[c * n + rr] = T(0);  // the upper triangle LAPACK left
      store_row_major(buf, n, n, op + i * n * n);
    }
    return r;
  });
  FW_CHECK(bad < 0, "linalg.cholesky: (Batch element ", bad, "): The factorization could not be completed ",
           "because the input is not positive-definite (the leading minor of order ", info,
           " is not positive-definite).");
}

// linalg_qr(A (..., m, n); complete=#0) -> Q (..., m, q), R (..., q, n) with q = min(m, n)
// (reduced) or m (complete): Householder QR (geqrf, then orgqr for Q), LAPACK's signs, as
// torch's.
template <class T>
void qr_k(const KernelArgs& k) {
  const TensorView& a = k.input(0);
  FW_CHECK(a.ndim >= 2, "linalg.qr: A must have at least 2 dimensions, got ", a.ndim);
  const int64_t m = a.shape[a.ndim - 2], n = a.shape[a.ndim - 1], kk = std::min(m, n);
  FW_CHECK(m <= 16384 && n <= 16384, "linalg.qr: matrices of size ", m, "x", n,
           " are larger than the 16384 supported");
  const bool complete = k.attrs->i(0) != 0;
  const int64_t qc = complete ? m : kk;  // Q's columns, R's rows
  int64_t count = 1;
  for (int d = 0; d < a.ndim - 2; ++d) count *= a.shape[d];
  TensorView& qo = k.output(0);
  TensorView& ro = k.output(1);
  check_out(qo, count * m * qc, "linalg.qr");
  check_out(ro, count * qc * n, "linalg.qr");
  T *qp = qo.ptr<T>(), *rp = ro.ptr<T>();
  const int64_t cols = std::max(n, qc);  // the buffer holds A, then Q's qc columns
  for_each_matrix<T>(count, m * cols + kk, [&](int64_t i, T* buf) {
    T* tau = buf + m * cols;
    load_col_major(a, i, buf);  // m x n, column-major, ld m
    int r = m && n ? geqrf(int(m), int(n), buf, tau) : 0;
    T* R = rp + i * qc * n;
    for (int64_t rr = 0; rr < qc; ++rr)
      for (int64_t c = 0; c < n; ++c) R[rr * n + c] = rr < kk && c >= rr ? buf[c * m + rr] : T(0);
    if (r == 0 && m && qc) r = orgqr(int(m), int(qc), int(kk), buf, tau);
    if (r == 0) store_row_major(buf, m, qc, qp + i * m * qc);
    return r;
  });
}

// linalg_eigh(A (..., n, n)) -> eigenvalues (..., n) ascending, eigenvectors (..., n, n) as
// columns, from A's lower triangle (syevd, as torch's, so the vectors' signs agree).
template <class T>
void eigh_k(const KernelArgs& k) {
  const TensorView& a = k.input(0);
  const Batch bt = square_batch(a, "linalg.eigh");
  const int64_t n = bt.n;
  TensorView& lo = k.output(0);
  TensorView& vo = k.output(1);
  check_out(lo, bt.count * n, "linalg.eigh");
  check_out(vo, bt.count * n * n, "linalg.eigh");
  T *lp = lo.ptr<T>(), *vp = vo.ptr<T>();
  const auto [bad, info] = for_each_matrix<T>(bt.count, n * n, [&](int64_t i, T* buf) {
    load_col_major(a, i, buf);
    const int r = n ? syevd(int(n), buf, lp + i * n) : 0;
    if (r == 0) store_row_major(buf, n, n, vp + i * n * n);
    return r;
  });
  FW_CHECK(bad < 0, "linalg.eigh: (Batch element ", bad, "): The algorithm failed to converge because the input ",
           "matrix is ill-conditioned or has too many repeated eigenvalues (error code: ", info, ").");
}

}  // namespace

FW_REGISTER_KERNELS(lapack) {
  register_kernel("linalg_eigh", DType::f32, &eigh_k<float>);
  register_kernel("linalg_eigh", DType::f64, &eigh_k<double>);
  register_kernel("linalg_qr", DType::f32, &qr_k<float>);
  register_kernel("linalg_qr", DType::f64, &qr_k<double>);
  register_kernel("linalg_solve", DType::f32, &solve_k<float>);
  register_kernel("linalg_solve", DType::f64, &solve_k<double>);
  register_kernel("linalg_inv", DType::f32, &inv_k<float>);
  register_kernel("linalg_inv", DType::f64, &inv_k<double>);
  register_kernel("linalg_slogdet", DType::f32, &slogdet_k<float>);
  register_kernel("linalg_slogdet", DType::f64, &slogdet_k<double>);
  register_kernel("linalg_cholesky", DType::f32, &cholesky_k<float>);
  register_kernel("linalg_cholesky", DType::f64, &cholesky_k<double>);
}

}  // namespace fw
