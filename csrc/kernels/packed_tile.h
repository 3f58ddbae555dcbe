// packed_tile.h: the register tile over a weight packed in panels of 16 output columns
// (blas.h, pack_linear_weight), shared by linear (kernels/linalg.cpp: rows of x) and conv
// (kernels/conv.cpp: output pixels of a zero-padded input band, one offset per tap): the
// accumulate loop and the row store (conv also stores transposed, in conv.cpp).
#pragma once
#include <cstdint>
#include <utility>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// NOTE: GCC 12 warns about _mm512_undefined_ps inside its own intrinsics.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define FW_PACKED_TILE_AVX512 1

namespace fw {

// acc[m][v] = bias[16v, 16v + 16) for m < MR and v < NP (bias null = 0).
template <int MR, int NP>
__attribute__((target("avx512f"), always_inline)) inline void packed_tile_init(const float* bias,
                                                                             __m512 (&acc)[MR][NP]) {
#pragma GCC unroll 4
  for (int v = 0; v < NP; ++v) {
    const __m512 b0 = bias ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 12
    for (int m = 0; m < MR; ++m) acc[m][v] = b0;
  }
}

// acc[m][v] += sum over k in [k0, k1) of a(m, k) * panel v's row k, for m < MR and v < NP
// (panel v starts v * K * 16 floats after panel 0), where a(m, k) is x[m * xm + k] (TAPS false:
// rows of a matrix) or x[m * XS + koff[k]] (TAPS true: consecutive pixels of a band, koff[k]
// the offset of tap k; XS: the pixel stride, 16 in a channel-blocked band, 0: xm floats).
// One broadcast per (m, k), one panel-row load per (v, k), MR * NP FMAs per k; 12 x 2 keeps
// 24 zmm accumulators, and 1 x 4 (a GEMV) reads 4 panel rows per broadcast.
template <int MR, int NP, bool TAPS, int XS = 1>
__attribute__((target("avx512f"), always_inline)) inline void packed_tile_fma(int64_t K, int64_t k0, int64_t k1,
                                                                            const float* __restrict x, int64_t xm,
                                                                            const int64_t* __restrict koff,
                                                                            const float* __restrict P,
                                                                            __m512 (&acc)[MR][NP]) {
#pragma GCC unroll 2
  for (int64_t k = k0; k < k1; ++k) {
    const float* xk = TAPS ? x + koff[k] : x + k;
    __m512 bv[NP];
#pragma GCC unroll 4
    for (int v = 0; v < NP; ++v) bv[v] = _mm512_loadu_ps(P + v * K * 16 + k * 16);
#pragma GCC unroll 12
    for (int m = 0; m < MR; ++m) {
      const __m512 a = _mm512_set1_ps(TAPS && XS ? xk[m * XS] : xk[m * xm]);
#pragma GCC unroll 4
      for (int v = 0; v < NP; ++v) acc[m][v] = _mm512_fmadd_ps(a, bv[v], acc[m][v]);
    }
  }
}

// acc = bias + the whole K loop (packed_tile_init, then packed_tile_fma over [0, K)).
template <int MR, int NP, bool TAPS, int XS = 1>
__attribute__((target("avx512f"), always_inline)) inline void packed_tile_acc(int64_t K, const float* __restrict x,
                                                                            int64_t xm,
                                                                            const int64_t* __restrict koff,
                                                                            const float* __restrict P,
                                                                            const float* bias, __m512 (&acc)[MR][NP]) {
  packed_tile_init<MR, NP>(bias, acc);
  packed_tile_fma<MR, NP, TAPS, XS>(K, 0, K, x, xm, koff, P, acc);
}

// out[m, 16v + j] = acc[m][v] lane j for m < MR and 16v + j < cols (row stride ldo), with a
// relu first when `relu` (a NaN stays NaN).
template <int MR, int NP>
__attribute__((target("avx512f"), always_inline)) inline void packed_tile_store_rows(const __m512 (&acc)[MR][NP],
                                                                                   float* __restrict out,
                                                                                   int64_t ldo, int64_t cols,
                                                                                   bool relu) {
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 4
  for (int v = 0; v < NP; ++v) {
    const int64_t left = cols - 16 * v;
    const __mmask16 mask = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
#pragma GCC unroll 12
    for (int m = 0; m < MR; ++m) {
      __m512 r = acc[m][v];
      if (relu) r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(r, zero, _CMP_LT_OQ), zero);
      _mm512_mask_storeu_ps(out + m * ldo + 16 * v, mask, r);
    }
  }
}

// out[MR, 16*NP] (columns < cols valid) = act(bias + x[MR, K] @ panels p..p+NP-1) over a packed
// weight, rows of x at stride x_rs: the tile linear runs over weights packed at load
// (kernels/linalg.cpp) and eager linear over panels it transposed per call (linear_nt.cpp).
// bias: these columns' bias in whole panels (16*NP floats) or null.
template <int MR, int NP>
__attribute__((target("avx512f"))) void packed_row_tile(int64_t K, const float* __restrict x, int64_t x_rs,
                                                        const float* __restrict P, const float* bias, bool relu,
                                                        float* __restrict out, int64_t ldo, int64_t cols) {
  __m512 acc[MR][NP];
  packed_tile_acc<MR, NP, false>(K, x, x_rs, nullptr, P, bias, acc);
  packed_tile_store_rows<MR, NP>(acc, out, ldo, cols, relu);
}

using RowTileFn = void (*)(int64_t, const float*, int64_t, const float*, const float*, bool, float*, int64_t, int64_t);

// packed_row_tile<mr, NP> for a runtime mr in 1..sizeof...(MR) (an integer sequence 0..n-1).
template <int NP, int... MR>
constexpr RowTileFn pick_row_tile(int mr, std::integer_sequence<int, MR...>) {
  RowTileFn fn = nullptr;
  ((fn = mr == MR + 1 ? &packed_row_tile<MR + 1, NP> : fn), ...);
  return fn;
}

// r[i] <- column i of the 16 x 16 block of floats whose rows are r[0..15], in registers:
// conv's transposing store, the nchw16c reorder and eager linear's per-call panels use it.
__attribute__((target("avx512f"), always_inline)) inline void transpose16x16(__m512 (&r)[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {  // within each 128-bit lane: pairs of rows interleaved
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int g = 0; g < 16; g += 4) {
    r[g + 0] = _mm512_shuffle_ps(t[g + 0], t[g + 2], _MM_SHUFFLE(1, 0, 1, 0));
    r[g + 1] = _mm512_shuffle_ps(t[g + 0], t[g + 2], _MM_SHUFFLE(3, 2, 3, 2));
    r[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], _MM_SHUFFLE(1, 0, 1, 0));
    r[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {  // then a 4 x 4 transpose of the 128-bit lanes
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

}  // namespace fw
#endif
