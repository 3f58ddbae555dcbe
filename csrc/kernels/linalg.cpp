// linalg.cpp: matmul (batch-broadcast), linear, addmm, baddbmm over OpenBLAS GEMM.
#include <cblas.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/parallel.h"
#include "kernels/blas.h"
#include "kernels/loops.h"
#include "kernels/packed_tile.h"  // also AVX-512 intrinsics, when FW_PACKED_TILE_AVX512

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
  // Matrix-vector-like products (a few rows or columns) stay serial: split over two threads
  // they measured 2-3x slower than one serial call (1 x 784 -> 512: 0.096 vs 0.032 ms).
  if (threads <= 1 || in_parallel_region() || std::min(M, N) < 16 ||
      M * N * std::max<int64_t>(K, 1) < (int64_t(1) << 18)) {
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

#ifdef FW_PACKED_TILE_AVX512
// One whole panel of a row-major f32 weight: each panel row is a 16-lane gather down the
// panel's 16 weight rows (the scalar loop ran ~5 ns per element; ResNet-18's conv weights
// took ~30 ms to pack at load). Panel row k takes weight column col[k] (col null: k).
__attribute__((target("avx512f"))) void pack_panel_f32(const float* w, int64_t K, const int64_t* col, float* dst) {
  const __m512i rows = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(int(K)));
  for (int64_t k = 0; k < K; ++k)
    _mm512_storeu_ps(dst + k * kPackedPanel, _mm512_i32gather_ps(rows, w + (col ? col[k] : k), 4));
}
#endif

// pack_linear_weight with packed row k taken from weight column col[k] (col null: k).
template <class T>
void pack_panels(const T* w, int64_t N, int64_t K, int64_t w_rs, int64_t w_cs, const int64_t* col, T* out) {
  int64_t panels = (N + kPackedPanel - 1) / kPackedPanel;
  parallel_for(panels, 4, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* dst = out + p * K * kPackedPanel;
#ifdef FW_PACKED_TILE_AVX512
      if constexpr (std::is_same_v<T, float>) {
        // 32-bit gather offsets: row 15 of the panel is 15 * K elements on
        if (w_cs == 1 && w_rs == K && (p + 1) * kPackedPanel <= N && K <= (int64_t(1) << 26) &&
            cpu_has_avx512f()) {
          pack_panel_f32(w + p * kPackedPanel * K, K, col, dst);
          continue;
        }
      }
#endif
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = 0; j < kPackedPanel; ++j) {
          int64_t n = p * kPackedPanel + j;
          dst[k * kPackedPanel + j] = n < N ? w[n * w_rs + (col ? col[k] : k) * w_cs] : T(0);
        }
    }
  });
}

template <class T>
void pack_linear_weight(const T* w, int64_t N, int64_t K, int64_t w_rs, int64_t w_cs, T* out) {
  pack_panels<T>(w, N, K, w_rs, w_cs, nullptr, out);
}

void pack_conv_weight(const float* w, int64_t N, int64_t C, int64_t kh, int64_t kw, float* out) {
  std::vector<int64_t> col(static_cast<size_t>(C * kh * kw));
  for (int64_t i = 0, k = 0; i < kh; ++i)
    for (int64_t j = 0; j < kw; ++j)
      for (int64_t c = 0; c < C; ++c) col[size_t(k++)] = (c * kh + i) * kw + j;
  pack_panels<float>(w, N, C * kh * kw, C * kh * kw, 1, col.data(), out);
}
template void pack_linear_weight<float>(const float*, int64_t, int64_t, int64_t, int64_t, float*);
template void pack_linear_weight<double>(const double*, int64_t, int64_t, int64_t, int64_t, double*);

namespace {

// One panel (kPackedPanel columns) for MB rows of x: res[m][j] = sum_k x[m,k] * P[k,j].
// C independent accumulator chains per row (k split round robin) hide the FMA latency when
// MB is small; the chains are summed in a fixed order, so results are deterministic.
// NOTE: GCC vector types, not arrays: GCC does not vectorize the array form (it keeps the
// accumulators on the stack); a 16-wide vector is one zmm (f32) under the avx512f clone.
template <class T, int MB, int C>
FW_TARGET_CLONES void packed_panel(const T* __restrict x, int64_t x_rs, const T* __restrict P, int64_t K,
                                   T* __restrict res) {
  typedef T Vec __attribute__((vector_size(kPackedPanel * sizeof(T))));
  Vec acc[MB * C];
  for (int i = 0; i < MB * C; ++i) acc[i] = Vec{};
  Vec pk;
  int64_t k = 0;
  for (; k + C <= K; k += C) {
    for (int c = 0; c < C; ++c) {
      std::memcpy(&pk, P + (k + c) * kPackedPanel, sizeof(Vec));
      for (int m = 0; m < MB; ++m) acc[m * C + c] += x[m * x_rs + k + c] * pk;
    }
  }
  for (; k < K; ++k) {
    std::memcpy(&pk, P + k * kPackedPanel, sizeof(Vec));
    for (int m = 0; m < MB; ++m) acc[m * C] += x[m * x_rs + k] * pk;
  }
  for (int m = 0; m < MB; ++m) {
    Vec sum = acc[m * C];
    for (int c = 1; c < C; ++c) sum += acc[m * C + c];
    std::memcpy(res + m * kPackedPanel, &sum, sizeof(Vec));
  }
}

template <class T, int MB>
void packed_rows(int64_t p0, int64_t p1, int64_t N, int64_t K, const T* x, int64_t x_rs, const T* packed,
                 const T* bias, int64_t b_st, bool relu, T* out, int64_t ldo) {
  constexpr int C = MB == 1 ? 4 : MB == 2 ? 2 : 1;
  T res[MB * kPackedPanel];
  for (int64_t p = p0; p < p1; ++p) {
    packed_panel<T, MB, C>(x, x_rs, packed + p * K * kPackedPanel, K, res);
    int64_t n0 = p * kPackedPanel, w = std::min<int64_t>(kPackedPanel, N - n0);
    for (int m = 0; m < MB; ++m)
      for (int64_t j = 0; j < w; ++j) {
        const T v = res[m * kPackedPanel + j] + (bias ? bias[(n0 + j) * b_st] : T(0));
        out[m * ldo + n0 + j] = relu && v < T(0) ? T(0) : v;  // a NaN stays NaN
      }
  }
}

// ---- f32, more rows: 12 x 32 register tiles over pairs of panels (AVX-512) ----
#ifdef FW_PACKED_TILE_AVX512
constexpr int kTileRows = 12;

void linear_packed_tiles(int64_t M, int64_t N, int64_t K, const float* x, int64_t x_rs, const float* packed,
                         const float* bias, int64_t b_st, bool relu, float* out, int64_t ldo) {
  const int64_t panels = (N + kPackedPanel - 1) / kPackedPanel, pairs = (panels + 1) / 2;
  const int64_t row_blocks = (M + kTileRows - 1) / kTileRows;
  // The tiles read the bias in whole panels: a strided bias, or one ending in a partial
  // panel, is copied contiguous and zero-padded first.
  std::vector<float> padded;
  if (bias && (b_st != 1 || N % kPackedPanel != 0)) {
    padded.assign(size_t(panels * kPackedPanel), 0.f);
    for (int64_t j = 0; j < N; ++j) padded[size_t(j)] = bias[j * b_st];
    bias = padded.data();
  }
  // Tasks run pair-major: a thread's contiguous range of tasks covers a range of panel
  // pairs, whose weights then stay in that core's cache from call to call (the pool hands
  // chunk i to thread i).
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t pair = t / row_blocks, m0 = (t % row_blocks) * kTileRows;
      const int64_t p = 2 * pair, n0 = p * kPackedPanel, cols = std::min<int64_t>(2 * kPackedPanel, N - n0);
      const int mr = int(std::min<int64_t>(kTileRows, M - m0));
      const auto rows = std::make_integer_sequence<int, kTileRows>{};
      const RowTileFn fn = cols > kPackedPanel ? pick_row_tile<2>(mr, rows) : pick_row_tile<1>(mr, rows);
      fn(K, x + m0 * x_rs, x_rs, packed + p * K * kPackedPanel, bias ? bias + n0 : nullptr, relu,
         out + m0 * ldo + n0, ldo, cols);
    }
  };
  // ~64K multiply-adds per task at least: waking a worker costs microseconds.
  const int64_t per_task = kTileRows * 2 * kPackedPanel * std::max<int64_t>(K, 1);
  parallel_for(pairs * row_blocks, std::max<int64_t>(1, 65536 / per_task), run);
}

// ---- f32, 1-4 rows (batch-1 inference): tiles of all the rows x 4 panels (AVX-512) ----
// Bound by reading the weight, once per call: here one broadcast of x feeds 4 panel rows
// (64 floats), where packed_rows spends a broadcast per panel row. The benchmark MLP in
// graph mode, 2 threads: batch 1 21.6 -> 20.5 us per call, batch 2 27.0 -> 21.5 us.
constexpr int kFewPanels = 4, kFewMaxRows = 4;

void linear_packed_few(int64_t M, int64_t N, int64_t K, const float* x, int64_t x_rs, const float* packed,
                       const float* bias, int64_t b_st, bool relu, float* out, int64_t ldo) {
  const int64_t panels = (N + kPackedPanel - 1) / kPackedPanel, groups = (panels + kFewPanels - 1) / kFewPanels;
  const auto rows = std::make_integer_sequence<int, kFewMaxRows>{};
  const int mr = int(M);
  const RowTileFn tile[kFewPanels] = {pick_row_tile<1>(mr, rows), pick_row_tile<2>(mr, rows),
                                      pick_row_tile<3>(mr, rows), pick_row_tile<4>(mr, rows)};
  // ~64K multiply-adds per task at least: waking a worker costs microseconds.
  const int64_t per_task = M * kFewPanels * kPackedPanel * std::max<int64_t>(K, 1);
  parallel_for(groups, std::max<int64_t>(1, 65536 / per_task), [&](int64_t g0, int64_t g1) {
    float padded[kFewPanels * kPackedPanel];  // the tiles read the bias in whole panels
    for (int64_t g = g0; g < g1; ++g) {
      const int64_t p = g * kFewPanels, np = std::min<int64_t>(kFewPanels, panels - p), n0 = p * kPackedPanel;
      const int64_t cols = std::min<int64_t>(np * kPackedPanel, N - n0);
      const float* b = bias ? bias + n0 * b_st : nullptr;
      if (bias && (b_st != 1 || cols < np * kPackedPanel)) {
        for (int64_t j = 0; j < np * kPackedPanel; ++j) padded[j] = j < cols ? bias[(n0 + j) * b_st] : 0.f;
        b = padded;
      }
      tile[np - 1](K, x, x_rs, packed + p * K * kPackedPanel, b, relu, out + n0, ldo, cols);
    }
  });
}
#endif

}  // namespace

template <class T>
bool linear_packed(int64_t M, int64_t N, int64_t K, const T* x, int64_t x_rs, const T* packed, const T* bias,
                   int64_t b_st, bool relu, T* out, int64_t ldo) {
  if (M > kPackedMaxRows) {
#ifdef FW_PACKED_TILE_AVX512
    if constexpr (std::is_same_v<T, float>) {
      if (cpu_has_avx512f() && N > 0) {
        linear_packed_tiles(M, N, K, x, x_rs, packed, bias, b_st, relu, out, ldo);
        return true;
      }
    }
#endif
    return false;
  }
  if (M == 0 || N == 0) return true;
#ifdef FW_PACKED_TILE_AVX512
  if constexpr (std::is_same_v<T, float>) {
    if (M <= kFewMaxRows && cpu_has_avx512f()) {
      linear_packed_few(M, N, K, x, x_rs, packed, bias, b_st, relu, out, ldo);
      return true;
    }
  }
#endif
  int64_t panels = (N + kPackedPanel - 1) / kPackedPanel;
  // At least ~64K multiply-adds per task: waking a worker costs microseconds.
  int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, M * K * kPackedPanel));
  parallel_for(panels, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t m0 = 0; m0 < M;) {  // row blocks of 8, 4, then the rest
      const T* xm = x + m0 * x_rs;
      T* om = out + m0 * ldo;
      int64_t rows = M - m0;
      if (rows >= 8) {
        packed_rows<T, 8>(p0, p1, N, K, xm, x_rs, packed, bias, b_st, relu, om, ldo);
        rows = 8;
      } else if (rows >= 4) {
        packed_rows<T, 4>(p0, p1, N, K, xm, x_rs, packed, bias, b_st, relu, om, ldo);
        rows = 4;
      } else if (rows == 3) {
        packed_rows<T, 3>(p0, p1, N, K, xm, x_rs, packed, bias, b_st, relu, om, ldo);
      } else if (rows == 2) {
        packed_rows<T, 2>(p0, p1, N, K, xm, x_rs, packed, bias, b_st, relu, om, ldo);
      } else {
        packed_rows<T, 1>(p0, p1, N, K, xm, x_rs, packed, bias, b_st, relu, om, ldo);
      }
      m0 += rows;
    }
  });
  return true;
}
template bool linear_packed<float>(int64_t, int64_t, int64_t, const float*, int64_t, const float*, const float*,
                                   int64_t, bool, float*, int64_t);
template bool linear_packed<double>(int64_t, int64_t, int64_t, const double*, int64_t, const double*,
                                    const double*, int64_t, bool, double*, int64_t);

template <class T>
LinearOperands<T> linear_operands(const KernelArgs& k, const char* op, std::vector<T>& pack) {
  const TensorView& x = k.input(0);
  const TensorView& w = k.input(1);
  const TensorView& out = k.output(0);
  FW_CHECK(x.ndim >= 1 && w.ndim == 2, op, ": bad operand ranks (input ", x.ndim, " dims, weight ", w.ndim,
           " dims)");
  LinearOperands<T> o{0, w.size(0), x.size(-1), x.ptr<T>(), x.size(-1), 1, nullptr, 0};
  FW_CHECK(w.size(1) == o.K, op, ": weight has in_features ", w.size(1), ", input has ", o.K);
  FW_CHECK(out.is_contiguous(), op, ": output must be contiguous");
  o.M = o.K == 0 ? out.numel() / std::max<int64_t>(o.N, 1) : x.numel() / o.K;
  FW_CHECK(out.ndim >= 1 && out.size(-1) == o.N && out.numel() == o.M * o.N, op, ": output has ", out.numel(),
           " elements, expected ", o.M, " x ", o.N);
  if (!x.is_contiguous()) {  // x as an (M, K) matrix needs rows at a fixed stride
    if (x.ndim == 2) {
      o.x_rs = x.strides[0];
      o.x_cs = x.strides[1];
    } else {
      pack.resize(size_t(x.numel()));
      TensorView dst = make_view(pack.data(), x.dtype, x.ndim, x.shape);
      unary_kernel<T, T>(dst, x, [](T v) { return v; });
      o.x = pack.data();
    }
  }
  if (k.has_input(2)) {
    const TensorView& b = k.input(2);
    FW_CHECK(b.numel() == o.N, op, ": bias has ", b.numel(), " elements, expected ", o.N);
    o.bias = b.ptr<T>();
    o.b_st = b.ndim ? b.strides[b.ndim - 1] : 0;
  }
  return o;
}
template LinearOperands<float> linear_operands<float>(const KernelArgs&, const char*, std::vector<float>&);
template LinearOperands<double> linear_operands<double>(const KernelArgs&, const char*, std::vector<double>&);

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

// linear(x (..., K), weight (N, K), bias (N) optional) -> (..., N). The graph runtime may
// pass a 4th input: the weight pre-packed by pack_linear_weight (blas.h); eager calls (none)
// read the weight in place (linear_eager_nt) or use BLAS.
template <class T>
void linear_k(const KernelArgs& k) {
  std::vector<T> xpack;
  const LinearOperands<T> o = linear_operands<T>(k, "linear", xpack);
  T* out = k.output(0).ptr<T>();
  const T* packed = packed_weight_arg<T>(k, 3, o.N, o.K, o.x_cs);
  if (packed && linear_packed<T>(o.M, o.N, o.K, o.x, o.x_rs, packed, o.bias, o.b_st, false, out, o.N)) return;
  if (!packed && linear_eager_nt<T>(o, k.input(1), false, out)) return;
  if (o.bias) {
    parallel_for(o.M, 256, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; ++i)
        for (int64_t j = 0; j < o.N; ++j) out[i * o.N + j] = o.bias[j * o.b_st];
    });
  }
  const TensorView& w = k.input(1);
  gemm_strided<T>(o.M, o.N, o.K, T(1), o.x, o.x_rs, o.x_cs, w.ptr<T>(), w.strides[1], w.strides[0],
                  o.bias ? T(1) : T(0), out, o.N);
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
