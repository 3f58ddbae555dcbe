// linear_nt.cpp: eager f32 linear y[M,N] = x[M,K] @ W[N,K]^T (+ bias, relu) on AVX-512 with
// the weight read in place (no packing per call), for eager calls (the graph runtime packs
// its weights at load instead: linear_packed in linalg.cpp).
//
// Dot-product register tiles: x rows and W rows are both contiguous in k, so a tile of MR
// (<= 6) rows of x by 4 rows of W keeps MR * 4 zmm accumulators over 16-wide k chunks
// (MR + 4 loads per 4 * MR FMAs; the K tail is a masked load), then reduces each
// accumulator horizontally once (4 accumulators per 128-bit lane, then across lanes: one
// zmm holds a 4 x 4 output block), adds the bias, applies the relu and stores.
// The pool splits N in quads of W rows (chunk i goes to thread i, so a thread's share of W
// stays in its core's L2 from call to call); each thread runs its x row tiles outer (the
// tile's rows stay in L1) and its quads inner (W streamed from L2).
// With many rows and a short K the horizontal sums cost more than transposing W: then each
// thread transposes its pairs of 16-row W panels into a scratch buffer, one pair at a time,
// and runs the graph runtime's 12 x 32 packed tiles (packed_tile.h) over all rows. With
// 65-160 rows and a long K the whole W is transposed into one shared buffer first (pack_shape).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <utility>

#include "core/allocator.h"
#include "core/error.h"
#include "core/parallel.h"
#include "kernels/blas.h"
#include "kernels/packed_tile.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// NOTE: GCC 12 warns about _mm512_undefined_ps inside its own intrinsics.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define FW_LINEAR_NT_AVX512 1
#endif

namespace fw {

#ifdef FW_LINEAR_NT_AVX512
// NOTE: GCC 12 warns about _mm512_undefined_ps inside its own shuffle intrinsics when they
// are inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

constexpr int kNtRows = 6;  // x rows per tile
constexpr int kNtCols = 4;  // W rows (output columns) per tile

#define FW_NT_TARGET __attribute__((target("avx512f"), always_inline)) inline

// Per 128-bit lane l: [sum of a's lane-l quarter, b's, c's, d's].
FW_NT_TARGET __m512 reduce4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  return _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
}

// From four reduce4 results (one per row): 128-bit lane i = row i's 4 sums.
FW_NT_TARGET __m512 combine_lanes(__m512 u0, __m512 u1, __m512 u2, __m512 u3) {
  const __m512 s01 = _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 s23 = _mm512_add_ps(_mm512_shuffle_f32x4(u2, u3, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(u2, u3, _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(s01, s23, _MM_SHUFFLE(3, 1, 3, 1)));
}

// Stores rows [R0, R0 + 4) ∩ [0, MR) of a 4 x 4 block r (128-bit lane i = row R0 + i), with
// the bias (bias4: this quad's 4 values, broadcast per lane) added and the relu applied (a
// NaN stays NaN); only the first `cols` columns when cols < 4.
template <int MR, int R0>
FW_NT_TARGET void store_block(__m512 r, __m512 bias4, bool relu, float* out, int64_t ldo, int cols) {
  r = _mm512_add_ps(r, bias4);
  if (relu) {
    const __m512 zero = _mm512_setzero_ps();
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(r, zero, _CMP_LT_OQ), zero);
  }
  alignas(64) float buf[16];
  if (cols == kNtCols) {
    if constexpr (R0 + 0 < MR) _mm_storeu_ps(out + (R0 + 0) * ldo, _mm512_extractf32x4_ps(r, 0));
    if constexpr (R0 + 1 < MR) _mm_storeu_ps(out + (R0 + 1) * ldo, _mm512_extractf32x4_ps(r, 1));
    if constexpr (R0 + 2 < MR) _mm_storeu_ps(out + (R0 + 2) * ldo, _mm512_extractf32x4_ps(r, 2));
    if constexpr (R0 + 3 < MR) _mm_storeu_ps(out + (R0 + 3) * ldo, _mm512_extractf32x4_ps(r, 3));
    return;
  }
  _mm512_store_ps(buf, r);
  for (int i = 0; i < 4 && R0 + i < MR; ++i)
    for (int j = 0; j < cols; ++j) out[(R0 + i) * ldo + j] = buf[4 * i + j];
}

// acc[m][n] += x[m, k:k+16] * W row n [k:k+16] (lanes off in `mask` read as 0).
template <int MR>
FW_NT_TARGET void nt_step(const float* x, int64_t x_rs, const float* const (&w)[kNtCols], int64_t k,
                          __mmask16 mask, __m512 (&acc)[MR][kNtCols]) {
  __m512 xv[MR];
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) xv[m] = _mm512_maskz_loadu_ps(mask, x + m * x_rs);
#pragma GCC unroll 4
  for (int n = 0; n < kNtCols; ++n) {
    const __m512 wv = _mm512_maskz_loadu_ps(mask, w[n] + k);
#pragma GCC unroll 6
    for (int m = 0; m < MR; ++m) acc[m][n] = _mm512_fmadd_ps(xv[m], wv, acc[m][n]);
  }
}

// out[MR, cols] = act(x[MR, K] @ W[4, K]^T + b4): x rows x_rs apart, W rows w0..w3, b4: the
// quad's 4 bias values.
template <int MR>
__attribute__((target("avx512f"))) void nt_tile(int64_t K, const float* __restrict x, int64_t x_rs,
                                                const float* w0, const float* w1, const float* w2,
                                                const float* w3, const float* b4, bool relu, float* out,
                                                int64_t ldo, int cols) {
  __m512 acc[MR][kNtCols];
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 4
    for (int n = 0; n < kNtCols; ++n) acc[m][n] = _mm512_setzero_ps();
  const float* w[kNtCols] = {w0, w1, w2, w3};
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) nt_step<MR>(x + k, x_rs, w, k, __mmask16(0xFFFF), acc);
  if (k < K) nt_step<MR>(x + k, x_rs, w, k, __mmask16((1u << (K - k)) - 1), acc);
  __m512 u[8];
#pragma GCC unroll 8
  for (int m = 0; m < 8; ++m) u[m] = _mm512_setzero_ps();
#pragma GCC unroll 6
  for (int m = 0; m < MR; ++m) u[m] = reduce4(acc[m][0], acc[m][1], acc[m][2], acc[m][3]);
  const __m512 bias4 = _mm512_broadcast_f32x4(_mm_loadu_ps(b4));
  store_block<MR, 0>(combine_lanes(u[0], u[1], u[2], u[3]), bias4, relu, out, ldo, cols);
  if constexpr (MR > 4) store_block<MR, 4>(combine_lanes(u[4], u[5], u[6], u[7]), bias4, relu, out, ldo, cols);
}

using NtTileFn = void (*)(int64_t, const float*, int64_t, const float*, const float*, const float*, const float*,
                          const float*, bool, float*, int64_t, int);
constexpr NtTileFn kNtTiles[kNtRows + 1] = {nullptr,    &nt_tile<1>, &nt_tile<2>, &nt_tile<3>,
                                            &nt_tile<4>, &nt_tile<5>, &nt_tile<6>};

// Quads [q0, q1) of output columns for all M rows: blocks of quads whose W rows fit in
// kNtBlockBytes of L2, per block the row tiles outer (a tile's x rows stay in L1) and the
// block's quads inner (W from L2). Rows are split into tiles of near-equal height (9 rows:
// 5 + 4, not 6 + 3: a short tile does fewer FMAs per load).
constexpr int64_t kNtBlockBytes = 256 << 10;

__attribute__((target("avx512f"))) void nt_quads(int64_t q0, int64_t q1, int64_t M, int64_t N, int64_t K,
                                                 const float* x, int64_t x_rs, const float* w, int64_t w_rs,
                                                 const float* bias, int64_t b_st, bool relu, float* out,
                                                 int64_t ldo) {
  const int64_t tiles = (M + kNtRows - 1) / kNtRows, base = M / tiles, taller = M % tiles;
  const int64_t block = std::max<int64_t>(1, kNtBlockBytes / (kNtCols * std::max<int64_t>(K, 1) * 4));
  for (int64_t qb = q0; qb < q1; qb += block) {
    const int64_t qe = std::min(q1, qb + block);
    for (int64_t t = 0, m0 = 0; t < tiles; ++t) {
      const int mr = int(base + (t < taller ? 1 : 0));
      const NtTileFn fn = kNtTiles[mr];
      for (int64_t q = qb; q < qe; ++q) {
        const int64_t n0 = q * kNtCols;
        const int cols = int(std::min<int64_t>(kNtCols, N - n0));
        const float* wr[kNtCols];
        float b[kNtCols] = {0.f, 0.f, 0.f, 0.f};
        for (int j = 0; j < kNtCols; ++j) {
          const int64_t n = n0 + std::min(j, cols - 1);  // past N: repeat the last row (not stored)
          wr[j] = w + n * w_rs;
          if (bias && j < cols) b[j] = bias[n * b_st];
        }
        fn(K, x + m0 * x_rs, x_rs, wr[0], wr[1], wr[2], wr[3], b, relu, out + m0 * ldo + n0, ldo, cols);
      }
      m0 += mr;
    }
  }
}

// ---- many rows, short K: W transposed per call into panel pairs, then packed tiles ----
constexpr int kPtRows = 12;

// dst = panels v = 0, 1 of W rows [n0, n0 + 32) (k-major, (v, k, j) = W[n0 + 16v + j, k],
// zero past N): 16 x 16 blocks transposed in registers (masked loads for the K tail).
__attribute__((target("avx512f"))) void pack_pair(const float* w, int64_t w_rs, int64_t n0, int64_t N, int64_t K,
                                                  float* dst) {
  for (int v = 0; v < 2; ++v) {
    const int64_t r0 = n0 + 16 * v;
    const int rows = int(std::max<int64_t>(0, std::min<int64_t>(16, N - r0)));
    float* d = dst + v * K * 16;
    for (int64_t k = 0; k < K; k += 16) {
      const int kt = int(std::min<int64_t>(16, K - k));
      const __mmask16 mask = kt == 16 ? __mmask16(0xFFFF) : __mmask16((1u << kt) - 1);
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, w + (r0 + i) * w_rs + k) : _mm512_setzero_ps();
      transpose16x16(r);
      if (kt == 16) {
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) _mm512_storeu_ps(d + (k + i) * 16, r[i]);
      } else {
        for (int i = 0; i < kt; ++i) _mm512_storeu_ps(d + (k + i) * 16, r[i]);
      }
    }
  }
}

// Panel pairs [p0, p1) (output columns [32 p0, 32 p1)) for all M rows: each pair transposed
// into this thread's scratch, then row tiles of 12 over it.
void pt_pairs(int64_t p0, int64_t p1, int64_t M, int64_t N, int64_t K, const float* x, int64_t x_rs,
              const float* w, int64_t w_rs, const float* bias, int64_t b_st, bool relu, float* out, int64_t ldo) {
  float* buf = static_cast<float*>(thread_scratch(size_t(K * 32) * sizeof(float)));
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t n0 = p * 32, cols = std::min<int64_t>(32, N - n0);
    pack_pair(w, w_rs, n0, N, K, buf);
    float b[32] = {};
    if (bias)
      for (int64_t j = 0; j < cols; ++j) b[j] = bias[(n0 + j) * b_st];
    for (int64_t m0 = 0; m0 < M; m0 += kPtRows) {
      const int mr = int(std::min<int64_t>(kPtRows, M - m0));
      const auto seq = std::make_integer_sequence<int, kPtRows>{};
      const RowTileFn fn = cols > 16 ? pick_row_tile<2>(mr, seq) : pick_row_tile<1>(mr, seq);
      fn(K, x + m0 * x_rs, x_rs, buf, bias ? b : nullptr, relu, out + m0 * ldo + n0, ldo, cols);
    }
  }
}

}  // namespace
#pragma GCC diagnostic pop
#endif

// The shapes that take these kernels. Single-thread GFLOP/s (time.thread_time() around
// _C.run of the linear kernel, 1 thread, Zen 4 EPYC shared with other jobs: ranges over
// 2-4 runs; BLAS = OpenBLAS sgemm via gemm_strided, tiles = the dot-product tiles, packed =
// the graph runtime's pre-packed 12 x 32 tiles, for reference):
//   (M, K -> N)        BLAS    tiles    packed    (M, K -> N)        BLAS    tiles
//   64, 784 -> 512     87-94   103-107  108-110   16, 784 -> 512     58-66   97-106
//   64, 512 -> 512     84-93   99-103   106-110    9, 512 -> 512     35-43   97-101
//   64, 512 -> 10      81-94   77-82    60-64      4, 784 -> 512     25-30   88-96
//   64, 1024 -> 1024   61-72   91-106               3, 784 -> 512     19      47
//   32, 4096 -> 1024   48-51   89-92                2, 784 -> 512     75      57
//  128, 784 -> 512     92-101  93-105               1, 784 -> 512     33-37   33-34
//  128, 1024 -> 256    78-86   64-95    74-101     8, 128 -> 512     45      70
//  512, 1024 -> 1024   87-98   59-104   69-97     16, 128 -> 512     61      76
// 2048, 512 -> 512     96      92-95              64, 128 -> 512     82-86   73-77
//                                                 64,  64 -> 512     75-79   54-60
// The tiles reduce every accumulator horizontally once (~3 shuffles or adds per output),
// which a short K does not amortize, and 1-2 row tiles do few FMAs per load: BLAS keeps
// M < 3 on one thread (vector_shape), K < 64, and K < 256 past 16 rows. Past 64 rows with
// K > 784 the tiles swing with the machine's load and often lose (x no longer stays in L2
// next to the W block; blocking M or K did not help): BLAS keeps those too. Ties (tiny N,
// 2048 rows) take the tiles.
inline bool nt_shape(int64_t M, int64_t K) {
  return M >= 3 && (K >= 256 || (K >= 64 && M <= 16)) && (K <= 784 || M <= 64);
}
inline bool transpose_shape(int64_t M, int64_t K) { return K <= 320 && M >= 96 && M <= 512; }
// Past nt_shape's 64 rows with K > 784, up to 160 rows: W packed once per call into the
// graph runtime's panel layout (both threads packing, into one shared buffer), then its 12 x
// 32 packed tiles (linear_packed). The packing costs N*K against M*N*K multiply-adds, paid
// back from ~100 rows on; past 160 rows OpenBLAS is as fast. GFLOP/s, 2 threads, OpenBLAS
// -> this: 128, 1024 -> 256 (a transformer's second feed-forward layer) 148-163 -> 171-182;
// 100, 2048 -> 512 145-155 -> 178-182; 96, 800 -> 64 149-156 -> 167-180; 128, 3072 -> 768
// 158-163 -> 159-168; 256, 1024 -> 1024 168-187 -> 180-182 (OpenBLAS kept).
inline bool pack_shape(int64_t M, int64_t K) { return M > 64 && M <= 160 && K > 784; }
// One or two rows (a matrix-vector product, batch 1 or 2) with K >= 256: the products are
// bound by reading W, which one serial BLAS call does from one core. The dot-product tiles
// split over the pool read each half of W from its own core's L2 (the same half from call to
// call): 1 x 784 -> 512 19.4 -> 11.5 us, 1 x 512 -> 512 12.8 -> 8.4 us at 2 threads. On one
// thread the tiles are ~5% slower than BLAS, so they take these shapes only when they split.
inline bool vector_shape(int64_t M, int64_t K) { return M >= 1 && M < 3 && K >= 256; }

template <>
bool linear_eager_nt<float>(const LinearOperands<float>& o, const TensorView& w, bool relu, float* out) {
#ifdef FW_LINEAR_NT_AVX512
  if (o.x_cs != 1 || w.strides[1] != 1 || !cpu_has_avx512f()) return false;
  if (pack_shape(o.M, o.K) && o.N > 0) {
    const int64_t pairs = (o.N + 31) / 32;
    const size_t bytes = size_t(pairs * 32 * o.K) * sizeof(float);
    const std::unique_ptr<float, std::function<void(float*)>> packed(
        static_cast<float*>(cached_alloc(bytes)), [bytes](float* p) { cached_free(p, bytes); });
    const float* wp = w.ptr<float>();
    parallel_for(pairs, 1, [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q) pack_pair(wp, w.strides[0], q * 32, o.N, o.K, packed.get() + q * 32 * o.K);
    });
    FW_CHECK(linear_packed<float>(o.M, o.N, o.K, o.x, o.x_rs, packed.get(), o.bias, o.b_st, relu, out, o.N),
             "linear: the packed tiles did not take a ", o.M, " x ", o.K, " product");
    return true;
  }
  const int64_t quads = (o.N + kNtCols - 1) / kNtCols;
  // ~64K multiply-adds per task at least: waking a worker costs microseconds.
  const int64_t grain =
      std::max<int64_t>(1, 65536 / (kNtCols * std::max<int64_t>(o.M, 1) * std::max<int64_t>(o.K, 1)));
  if (vector_shape(o.M, o.K)) {
    if (get_num_threads() < 2 || in_parallel_region() || quads <= grain) return false;
  } else if (!nt_shape(o.M, o.K)) {
    return false;
  }
  if (o.N == 0) return true;
  if (transpose_shape(o.M, o.K)) {
    const int64_t pairs = (o.N + 31) / 32;
    const int64_t grain = std::max<int64_t>(1, 65536 / (32 * o.M * o.K));
    const float* wp = w.ptr<float>();
    parallel_for(pairs, grain, [&](int64_t q0, int64_t q1) {
      pt_pairs(q0, q1, o.M, o.N, o.K, o.x, o.x_rs, wp, w.strides[0], o.bias, o.b_st, relu, out, o.N);
    });
    return true;
  }
  const float* wp = w.ptr<float>();
  parallel_for(quads, grain, [&](int64_t q0, int64_t q1) {
    nt_quads(q0, q1, o.M, o.N, o.K, o.x, o.x_rs, wp, w.strides[0], o.bias, o.b_st, relu, out, o.N);
  });
  return true;
#else
  (void)o, (void)w, (void)relu, (void)out;
  return false;
#endif
}

template <>
bool linear_eager_nt<double>(const LinearOperands<double>&, const TensorView&, bool, double*) {
  return false;
}

}  // namespace fw
