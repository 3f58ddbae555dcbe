// pool.cpp: 2-D pooling over NCHW tensors (max_pool2d with or without indices, avg_pool2d,
// adaptive_avg_pool2d) and their backward computations. Inputs may be strided (a plane with a
// non-unit column stride is gathered first); outputs and gradients are contiguous. Work is
// split over the N*C planes, so a backward scatter never races (each plane is written by one
// thread). Window rules, NaN propagation and argmax indices follow ATen's CPU kernels.
//
// max_pool2d paths, all vectorized over output columns:
//   - f32 on an AVX-512 CPU, 2x2 or 3x3 windows of stride 2, padding <= 1, no dilation (small
//     CNNs' 2x2 s2, ResNet's 3x3 s2 p1), values with or without indices: whole ranges of
//     planes per call, 16 outputs per vector (max_pool_s2_avx512);
//   otherwise (f64, other CPUs, other windows) FW_TARGET_CLONES loops:
//   - 2x2 stride 2, no padding/dilation: one loop per output row (values, or values+indices);
//   - without indices (attr with_indices false: graph mode after skip_unused_outputs, eager
//     when neither the indices nor a gradient are wanted), kernels up to 3x3, stride 1 or 2,
//     no dilation (ResNet's 3x3 s2 p1): separable, row maxima then column maxima;
//   - anything else: per window tap, a pass over the output row's valid columns.
// With the graph runtime's trailing layout attribute, max_pool2d (nchw16c in and out) and
// adaptive_avg_pool2d (nchw16c in, NCHW or nchw16c out) run on 16-channel vectors instead
// (see "nchw16c (channel-blocked) pooling" below).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/parallel.h"
#include "kernels/nchw.h"
#include "kernels/registry.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// NOTE: GCC 12 warns about _mm512_undefined_ps inside its own _mm512_max_ps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define FW_POOL_AVX512 1
#else
#define FW_POOL_AVX512 0
#endif

namespace fw {

Window read_window(const Attrs& a, size_t first, bool dilation, const char* op) {
  const auto &k = a.ints(first), &s = a.ints(first + 1), &p = a.ints(first + 2);
  FW_CHECK(k.size() == 2 && s.size() == 2 && p.size() == 2, op, ": kernel/stride/padding need 2 ints");
  Window w{k[0], k[1], s[0], s[1], p[0], p[1]};
  if (dilation) {
    const auto& d = a.ints(first + 3);
    FW_CHECK(d.size() == 2 && d[0] > 0 && d[1] > 0, op, ": dilation needs 2 positive ints");
    w.dh = d[0];
    w.dw = d[1];
  }
  FW_CHECK(w.kh > 0 && w.kw > 0 && w.sh > 0 && w.sw > 0 && w.ph >= 0 && w.pw >= 0, op,
           ": kernel and stride must be positive, padding non-negative");
  // As torch; also keeps the window loops short and free of overflow for crafted attributes.
  FW_CHECK(w.ph <= w.kh / 2 && w.pw <= w.kw / 2, op, ": padding must be at most half the kernel size");
  constexpr int64_t kMax = int64_t(1) << 24;
  FW_CHECK(w.kh <= kMax && w.kw <= kMax && w.sh <= kMax && w.sw <= kMax && w.dh <= kMax && w.dw <= kMax, op,
           ": kernel, stride or dilation too large");
  return w;
}

int64_t pool_out_size(int64_t n, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t num = n + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= n + p) --out;
  return out;
}

// With read_window's padding rule (p <= k / 2), torch's output size puts every window's start
// inside the padded plane: (Ho - 1) * sh - ph < H, and the same for columns.
void check_pool_output(const char* op, const Window& w, bool ceil_mode, int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
  const int64_t eh = pool_out_size(H, w.kh, w.sh, w.ph, w.dh, ceil_mode);
  const int64_t ew = pool_out_size(W, w.kw, w.sw, w.pw, w.dw, ceil_mode);
  FW_CHECK(Ho == eh && Wo == ew, op, ": output ", Ho, "x", Wo, " does not match the window over input ", H, "x", W,
           " (expected ", eh, "x", ew, ")");
}

namespace {

void check_pair(const char* op, const Planes& in, const Planes& out) {
  FW_CHECK(in.N == out.N && in.C == out.C, op, ": batch/channels of input (", in.N, ", ", in.C,
           ") and output (", out.N, ", ", out.C, ") differ");
}

// The output columns [lo, hi) whose input column ow*s + off lies inside [0, W).
inline void valid_columns(int64_t Wo, int64_t W, int64_t s, int64_t off, int64_t& lo, int64_t& hi) {
  const int64_t a = -off;  // first ow with ow*s >= a
  lo = a <= 0 ? 0 : std::min(Wo, (a + s - 1) / s);
  const int64_t b = W - 1 - off;  // last ow with ow*s <= b
  hi = b < 0 ? 0 : std::min(Wo, b / s + 1);
  hi = std::max(hi, lo);
}

// ---- max_pool2d ----------------------------------------------------------------------
//
// One output row at a time, vectorized over the output columns: for every window element
// (i, j) in row-major order, the output columns whose input column is inside the plane
// compare that element against their running maximum. Each output thus sees its window's
// elements in ATen's order, so the values (a NaN wins and stays) and the argmax indices
// (the last NaN, else the first maximum, else the window's first element) equal torch's.
// Column strides 1 and 2 are compiled separately so the loads vectorize; a 2x2 stride-2
// unpadded window without indices (the common inference case) has its own loop.

// NOTE: the NaN-propagating comparisons are written out inside each FW_TARGET_CLONES loop
// (torch's "v > best || isnan(v)" as a bitwise |): a helper function is not inlined into
// the clones, and short-circuit || becomes branches; either way the loop stops vectorizing.

// y[ow] = max over (x0, x1) rows of x[2ow], x[2ow+1], ow in [0, Wo); a NaN wins.
template <class T>
FW_TARGET_CLONES void max_2x2_row(const T* __restrict x0, const T* __restrict x1, T* __restrict y, int64_t Wo) {
  for (int64_t ow = 0; ow < Wo; ++ow) {
    T a = x0[2 * ow], b = x0[2 * ow + 1], c = x1[2 * ow], d = x1[2 * ow + 1];
    T ab = b > a ? b : a;
    ab = b != b ? b : ab;
    T cd = d > c ? d : c;
    cd = d != d ? d : cd;
    T m = cd > ab ? cd : ab;
    y[ow] = cd != cd ? cd : m;
  }
}

// As max_2x2_row, also writing torch's index (ih*W + iw) of each maximum: the four elements
// are compared in ATen's order (a NaN, or a strictly larger value, takes over).
template <class T>
FW_TARGET_CLONES void max_2x2_row_idx(const T* __restrict x0, const T* __restrict x1, T* __restrict y,
                                      int64_t* __restrict idx, int64_t Wo, int64_t i0, int64_t W) {
  for (int64_t ow = 0; ow < Wo; ++ow) {
    const T a = x0[2 * ow], b = x0[2 * ow + 1], c = x1[2 * ow], d = x1[2 * ow + 1];
    T m = a;
    int64_t k = i0 + 2 * ow;
    bool u = (b > m) | (b != b);
    m = u ? b : m;
    k = u ? i0 + 2 * ow + 1 : k;
    u = (c > m) | (c != c);
    m = u ? c : m;
    k = u ? i0 + W + 2 * ow : k;
    u = (d > m) | (d != d);
    m = u ? d : m;
    k = u ? i0 + W + 2 * ow + 1 : k;
    y[ow] = m;
    idx[ow] = k;
  }
}

// For ow in [lo, hi): the element src[ow * S] (S = column stride, or sw when S == 0) updates
// y[ow] (and idx[ow] = base + ow * S when indices are kept).
template <class T, int S, bool Idx>
FW_TARGET_CLONES void max_update(const T* __restrict src, T* __restrict y, int64_t* __restrict idx, int64_t lo,
                                 int64_t hi, int64_t sw, int64_t base) {
  const int64_t s = S ? S : sw;
  for (int64_t ow = lo; ow < hi; ++ow) {
    const T v = src[ow * s], b = y[ow];
    const bool u = (v > b) | (v != v);
    if (Idx) idx[ow] = u ? base + ow * s : idx[ow];
    y[ow] = u ? v : b;
  }
}

// One plane, general window (any kernel, stride, padding, dilation, ceil_mode). xpl is the
// plane's first element with row stride rs and unit column stride; y/idx are the plane's
// contiguous outputs. lo[j - j_lo], hi[j - j_lo]: the output columns whose window column j
// is inside, for the window columns [j_lo, j_hi) that can be inside at all (the others are
// padding only: a crafted kernel of 2^24 taps over a few pixels stays cheap).
template <class T, int S, bool Idx>
void max_pool_plane(const Window& w, const int64_t* lo, const int64_t* hi, int64_t j_lo, int64_t j_hi, const T* xpl,
                    int64_t rs, int64_t H, int64_t W, T* y, int64_t* idx, int64_t Ho, int64_t Wo) {
  for (int64_t oh = 0; oh < Ho; ++oh, y += Wo, idx += Idx ? Wo : 0) {
    std::fill(y, y + Wo, -std::numeric_limits<T>::infinity());
    const int64_t top = oh * w.sh - w.ph;  // input row of window row 0
    const int64_t i_lo = top < 0 ? (-top + w.dh - 1) / w.dh : 0;
    const int64_t i_hi = H - 1 - top < 0 ? 0 : std::min(w.kh, (H - 1 - top) / w.dh + 1);
    if (Idx) {  // the first in-bounds element, as the per-element loop would pick
      const int64_t h0 = top + i_lo * w.dh;
      for (int64_t ow = 0; ow < Wo; ++ow) {
        int64_t w0 = ow * w.sw - w.pw;
        if (w0 < 0) w0 += (-w0 + w.dw - 1) / w.dw * w.dw;
        idx[ow] = h0 * W + w0;
      }
    }
    for (int64_t i = i_lo; i < i_hi; ++i) {
      const int64_t ih = top + i * w.dh;
      for (int64_t j = j_lo; j < j_hi; ++j) {
        const int64_t off = j * w.dw - w.pw;  // input column of output 0
        max_update<T, S, Idx>(xpl + ih * rs + off, y, idx, lo[j - j_lo], hi[j - j_lo], w.sw, ih * W + off);
      }
    }
  }
}

// Values only (no indices), separable: the max over a window is the max over its rows of
// the row maxima, and any NaN in the window makes it NaN in either order, so the values equal
// the per-tap loop's. hmax: h[ow] = max_j x[ow*S + off + j] for the interior columns, where
// all KW taps are inside the row; vmax: y[ow] = max_i rows[i][ow].
template <class T, int KW, int S>
FW_TARGET_CLONES void hmax_row(const T* __restrict x, T* __restrict h, int64_t lo, int64_t hi, int64_t off) {
  for (int64_t ow = lo; ow < hi; ++ow) {
    const T* p = x + ow * S + off;
    T m = p[0];
#pragma GCC unroll 4
    for (int j = 1; j < KW; ++j) {
      const T v = p[j];
      m = v > m ? v : m;
      m = v != v ? v : m;
    }
    h[ow] = m;
  }
}

template <class T, int KH>
FW_TARGET_CLONES void vmax_row(const T* const* rows, T* __restrict y, int64_t n) {
  for (int64_t ow = 0; ow < n; ++ow) {
    T m = rows[0][ow];
#pragma GCC unroll 4
    for (int i = 1; i < KH; ++i) {
      const T v = rows[i][ow];
      m = v > m ? v : m;
      m = v != v ? v : m;
    }
    y[ow] = m;
  }
}

// Whether max_pool_separable handles this window (no indices, dilation 1, small kernels).
bool separable_ok(const Window& w) {
  return w.dh == 1 && w.dw == 1 && w.kh >= 1 && w.kh <= 3 && w.kw >= 1 && w.kw <= 3 && w.sw >= 1 && w.sw <= 2;
}

template <class T, int KW, int S>
void hmax_plane(const Window& w, const T* xpl, int64_t rs, int64_t H, int64_t W, T* hp, int64_t Wo) {
  // Interior columns: every tap ow*S - pw + j in [0, W).
  const int64_t lo = std::min(Wo, (w.pw + S - 1) / S);
  const int64_t last = W - KW + w.pw;  // the largest ow * S with the window inside
  const int64_t hi = last < 0 ? lo : std::max(lo, std::min(Wo, last / S + 1));
  for (int64_t ih = 0; ih < H; ++ih) {
    const T* xr = xpl + ih * rs;
    T* h = hp + ih * Wo;
    hmax_row<T, KW, S>(xr, h, lo, hi, -w.pw);
    for (int64_t ow = 0; ow < Wo; ++ow) {  // border columns: clipped windows
      if (ow == lo) ow = std::max(hi, lo);
      if (ow >= Wo) break;
      const int64_t c0 = std::max<int64_t>(0, ow * S - w.pw), c1 = std::min<int64_t>(W, ow * S - w.pw + KW);
      T m = xr[c0];
      for (int64_t c = c0 + 1; c < c1; ++c) m = (xr[c] > m) | (xr[c] != xr[c]) ? xr[c] : m;
      h[ow] = m;
    }
  }
}

template <class T>
void max_pool_separable(const Window& w, const T* xpl, int64_t rs, int64_t H, int64_t W, T* y, int64_t Ho, int64_t Wo,
                        T* hp) {
  using HFn = void (*)(const Window&, const T*, int64_t, int64_t, int64_t, T*, int64_t);
  static constexpr HFn hfn[3][2] = {{&hmax_plane<T, 1, 1>, &hmax_plane<T, 1, 2>},
                                    {&hmax_plane<T, 2, 1>, &hmax_plane<T, 2, 2>},
                                    {&hmax_plane<T, 3, 1>, &hmax_plane<T, 3, 2>}};
  hfn[w.kw - 1][w.sw - 1](w, xpl, rs, H, W, hp, Wo);
  for (int64_t oh = 0; oh < Ho; ++oh) {
    const int64_t r0 = std::max<int64_t>(0, oh * w.sh - w.ph), r1 = std::min<int64_t>(H, oh * w.sh - w.ph + w.kh);
    const T* rows[3];
    for (int64_t i = 0; i < 3; ++i) rows[i] = hp + std::min(r0 + i, r1 - 1) * Wo;  // repeats are harmless
    T* yr = y + oh * Wo;
    switch (w.kh) {
      case 1: vmax_row<T, 1>(rows, yr, Wo); break;
      case 2: vmax_row<T, 2>(rows, yr, Wo); break;
      default: vmax_row<T, 3>(rows, yr, Wo); break;
    }
  }
}

// ---- max_pool2d, f32 AVX-512: 2x2 or 3x3 windows, stride 2, padding 0 or 1 ---------------
//
// The 2x2/s2 (small CNNs) and 3x3/s2/p1 (ResNet stem) pools, values with or without indices,
// over a range of planes per call. A vector holds 16 outputs: 16 consecutive columns of one
// output row ("wide": the row's input columns [c0, c0 + 32) are two 16-float loads and each
// window column is picked out of them with a permute; 3x3 also loads [c0 + 2, c0 + 34)), or,
// for rows of at most 8 outputs (7 for 3x3), two output rows side by side ("pair": lanes
// [0, Wo) are output row q, lanes [Wo, 2*Wo) row q + 1, counting rows across the range's
// planes, each half permuted out of one load per input row).
// Each output folds its window row by row (the row maxima, then over the rows) with torch's
// update "v > m || isnan(v)": the elements are seen in ATen's row-major order, so the values
// (a NaN wins, a tie keeps the first, so even the sign of a zero maximum) and the indices
// equal torch's.
//   - values: columns outside the plane load as -inf and never change a maximum. The fold
//     runs on plain vmaxps (its second operand wins ties) while a mask records whether any
//     loaded tap was NaN; a row step that saw one is recomputed with the NaN-propagating
//     update (NaN inputs are rare, the plain fold has half the instructions);
//   - indices (int32 lanes, so (H + 2) * W < 2^31, stored widened to int64): per-lane masks of
//     the in-bounds taps start each fold at the window's first in-bounds element, as ATen's
//     loop does, so even an all -inf window gets torch's index.
#if FW_POOL_AVX512
#define FW_AVX512_INLINE inline __attribute__((target("avx512f"), always_inline))

// torch's update m <- v if v > m or v is NaN: vmaxps returns its second operand on ties and
// on NaN, so max(v, m) keeps m on a tie and on a NaN m; a NaN v is then put in.
FW_AVX512_INLINE __m512 upd(__m512 m, __m512 v) {
  return _mm512_mask_mov_ps(_mm512_max_ps(v, m), _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

// The lanes of `valid` where v replaces m: v > m or v NaN, or no element yet (not in `have`).
FW_AVX512_INLINE __mmask16 takes(__m512 m, __m512 v, __mmask16 valid, __mmask16 have) {
  const __mmask16 gt = _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  return __mmask16(valid & (gt | __mmask16(~have)));
}

// Lanes e of a 16-float load at column c0 + e with 0 <= c0 + e < W.
inline __mmask16 cols_in(int64_t c0, int64_t W) {
  const int64_t lo = std::max<int64_t>(0, -c0), hi = std::min<int64_t>(16, W - c0);
  if (hi <= lo) return 0;
  return __mmask16(((uint32_t(1) << hi) - 1) & ~((uint32_t(1) << lo) - 1));
}

inline __mmask16 first_lanes(int64_t n) { return __mmask16((uint32_t(1) << n) - 1); }

// Stores the lanes `m` of v (int32) as int64 at dst[0..16).
FW_AVX512_INLINE void store_idx(int64_t* dst, __mmask16 m, __m512i v) {
  _mm512_mask_storeu_epi64(dst, __mmask8(m), _mm512_cvtepi32_epi64(_mm512_castsi512_si256(v)));
  _mm512_mask_storeu_epi64(dst + 8, __mmask8(m >> 8), _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(v, 1)));
}

// Where window column j of each lane comes from.
template <int K>
struct Taps {
  __m512i perm[K];     // permute indices into the row's (s0, s1) (wide j = 2: (s2, s3))
  __m512i col[K];      // with indices: tap j's column (+ 2W in pair mode's upper lanes)
  __mmask16 valid[K];  // with indices: the output lanes whose tap j is inside the plane
};

// One input row's loads for the current lanes. Wide: s0, s1 = columns [c0, c0 + 32) of row
// `lo`, s2, s3 = [c0 + 2, c0 + 34) (3x3). Pair: s0 = row `lo`, s1 = row `hi` (two input rows
// further down), columns [c0, c0 + 16). Columns outside the plane and absent rows read -inf.
struct RowSrc {
  __m512 s0, s1, s2, s3;
};

template <int K, bool Pair>
FW_AVX512_INLINE RowSrc load_row(const float* lo, const float* hi, int64_t c0, const __mmask16* lm) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  RowSrc s{ninf, ninf, ninf, ninf};
  if (Pair) {
    if (lo) s.s0 = _mm512_mask_loadu_ps(ninf, lm[0], lo + c0);
    if (hi) s.s1 = _mm512_mask_loadu_ps(ninf, lm[0], hi + c0);
  } else {
    s.s0 = _mm512_mask_loadu_ps(ninf, lm[0], lo + c0);
    s.s1 = _mm512_mask_loadu_ps(ninf, lm[1], lo + c0 + 16);
    if (K == 3) {
      s.s2 = _mm512_mask_loadu_ps(ninf, lm[2], lo + c0 + 2);
      s.s3 = _mm512_mask_loadu_ps(ninf, lm[3], lo + c0 + 18);
    }
  }
  return s;
}

template <int K, bool Pair>
FW_AVX512_INLINE __m512 tap(const RowSrc& s, const Taps<K>& t, int j) {
  return Pair || j < 2 ? _mm512_permutex2var_ps(s.s0, t.perm[j], s.s1) : _mm512_permutex2var_ps(s.s2, t.perm[j], s.s3);
}

// The row's window maxima on plain vmaxps (exact unless a tap is NaN: then `nan` gets lanes).
template <int K, bool Pair>
FW_AVX512_INLINE __m512 row_max_plain(const RowSrc& s, const Taps<K>& t, __mmask16& nan) {
  const __m512 v0 = tap<K, Pair>(s, t, 0), v1 = tap<K, Pair>(s, t, 1);
  nan |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q);
  __m512 h = _mm512_max_ps(v1, v0);
  if (K == 3) {
    const __m512 v2 = tap<K, Pair>(s, t, 2);
    nan |= _mm512_cmp_ps_mask(v2, v2, _CMP_UNORD_Q);
    h = _mm512_max_ps(v2, h);
  }
  return h;
}

// The row's window maxima with torch's NaN-propagating update.
template <int K, bool Pair>
FW_AVX512_INLINE __m512 row_max(const RowSrc& s, const Taps<K>& t) {
  __m512 h = upd(tap<K, Pair>(s, t, 0), tap<K, Pair>(s, t, 1));
  if (K == 3) h = upd(h, tap<K, Pair>(s, t, 2));
  return h;
}

// The row's window maxima and their indices (rowbase + column) over the in-bounds taps of
// the lanes `rows`; `have` gets the lanes with at least one such tap.
template <int K, bool Pair>
FW_AVX512_INLINE __m512 row_argmax(const RowSrc& s, const Taps<K>& t, __mmask16 rows, __m512i rowbase, __m512i& idx,
                                   __mmask16& have) {
  __m512 h = tap<K, Pair>(s, t, 0);
  __m512i hi = t.col[0];
  __mmask16 hv = __mmask16(t.valid[0] & rows);
  for (int j = 1; j < K; ++j) {
    const __m512 v = tap<K, Pair>(s, t, j);
    const __mmask16 vj = __mmask16(t.valid[j] & rows), u = takes(h, v, vj, hv);
    h = _mm512_mask_mov_ps(h, u, v);
    hi = _mm512_mask_mov_epi32(hi, u, t.col[j]);
    hv = __mmask16(hv | vj);
  }
  idx = _mm512_add_epi32(hi, rowbase);
  have = hv;
  return h;
}

// Planes [p0, p1) of x (plane p at (p / C) * sn + (p % C) * sc, row stride rs, unit columns)
// into the contiguous y (and idx): window K x K, stride 2, padding ph, pw <= 1.
struct S2Pool {
  const float* x;
  int64_t sn, sc, C, rs, H, W;
  float* y;
  int64_t* idx;
  int64_t Ho, Wo, ph, pw;
};

// Pair mode, one step in general (padding rows, NaN, indices): output rows q (lanes [0, Wo): plane xlo, row ohlo) and q + 1 (lanes
// [Wo, 2 * Wo): plane xhi, row ohhi; the next plane's first row after a plane's last; xhi null
// past the range), stored together at y + q * Wo.
template <int K, bool Idx>
FW_AVX512_INLINE void pair_step(const S2Pool& a, const Taps<K>& t, __mmask16 lo_half, __mmask16 hi_half, __mmask16 lm,
                                const float* xlo, int64_t ohlo, const float* xhi, int64_t ohhi, int64_t q) {
  const int64_t H = a.H, rs = a.rs, rlo = 2 * ohlo - a.ph, rhi = 2 * ohhi - a.ph;
  const __mmask16 out = xhi ? __mmask16(lo_half | hi_half) : lo_half;
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512i mi = _mm512_setzero_si512();
  __mmask16 have = 0;
  for (int i = 0; i < K; ++i) {
    const int64_t rl = rlo + i, rh = rhi + i;
    const bool lo_ok = rl >= 0 && rl < H, hi_ok = xhi && rh >= 0 && rh < H;
    if (!lo_ok && !hi_ok) continue;
    const RowSrc s = load_row<K, true>(lo_ok ? xlo + rl * rs : nullptr, hi_ok ? xhi + rh * rs : nullptr, -a.pw, &lm);
    if (Idx) {
      const __mmask16 rows = __mmask16((lo_ok ? lo_half : 0) | (hi_ok ? hi_half : 0));
      const __m512i base = _mm512_mask_mov_epi32(_mm512_set1_epi32(int32_t(rl * a.W)), hi_half,
                                                 _mm512_set1_epi32(int32_t(rh * a.W)));
      __m512i hi;
      __mmask16 hv;
      const __m512 h = row_argmax<K, true>(s, t, rows, base, hi, hv);
      const __mmask16 u = takes(m, h, hv, have);
      m = _mm512_mask_mov_ps(m, u, h);
      mi = _mm512_mask_mov_epi32(mi, u, hi);
      have = __mmask16(have | hv);
    } else {
      m = upd(m, row_max<K, true>(s, t));
    }
  }
  _mm512_mask_storeu_ps(a.y + q * a.Wo, out, m);
  if (Idx) store_idx(a.idx + q * a.Wo, out, mi);
}

template <int K, bool Idx>
__attribute__((target("avx512f"))) void max_pool_s2_avx512(const S2Pool& a, int64_t p0, int64_t p1) {
  const int64_t H = a.H, W = a.W, Ho = a.Ho, Wo = a.Wo, rs = a.rs, ph = a.ph, pw = a.pw;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i lane2 = _mm512_add_epi32(lane, lane), vW = _mm512_set1_epi32(int32_t(W)), zero = _mm512_setzero_si512();
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t n = p0 / a.C, c = p0 % a.C;
  Taps<K> t;
  if (2 * Wo + K <= 18) {
    // Pair mode: lanes [0, Wo) are output row q, lanes [Wo, 2*Wo) row q + 1 of the range's
    // rows q = p * Ho + oh (a plane's last row pairs with the next plane's first); both
    // halves read columns [-pw, 16 - pw) of their input rows.
    const __mmask16 lo_half = first_lanes(Wo), hi_half = __mmask16(first_lanes(2 * Wo) & ~lo_half);
    const __m512i ow = _mm512_mask_sub_epi32(lane, hi_half, lane, _mm512_set1_epi32(int32_t(Wo)));
    const __m512i perm0 = _mm512_add_epi32(_mm512_add_epi32(ow, ow), _mm512_maskz_set1_epi32(hi_half, 16));
    const __m512i col0 = _mm512_add_epi32(_mm512_add_epi32(ow, ow), _mm512_set1_epi32(int32_t(-pw)));
    for (int j = 0; j < K; ++j) {
      t.col[j] = _mm512_add_epi32(col0, _mm512_set1_epi32(j));
      t.perm[j] = _mm512_add_epi32(perm0, _mm512_set1_epi32(j));
      t.valid[j] = __mmask16(_mm512_cmpge_epi32_mask(t.col[j], zero) & _mm512_cmplt_epi32_mask(t.col[j], vW) &
                             (lo_half | hi_half));
    }
    const __mmask16 lm = cols_in(-pw, W);
    const float* xc = a.x + n * a.sn + c * a.sc;  // the cursor: plane and output row of row q
    int64_t oh = 0;
    auto advance = [&] {
      if (++oh < Ho) return;
      oh = 0;
      if (++c == a.C) c = 0, ++n;
      xc = a.x + n * a.sn + c * a.sc;
    };
    // The output rows whose window rows are all inside the plane.
    const int64_t oh_in0 = (ph + 1) / 2, oh_in1 = H - K + ph < 0 ? 0 : (H - K + ph) / 2 + 1;
    const int64_t q_end = p1 * Ho;
    float* y = a.y + p0 * Ho * Wo;
    for (int64_t q = p0 * Ho; q < q_end; q += 2, y += 2 * Wo) {
      const float* xlo = xc;
      const int64_t ohlo = oh;
      advance();
      const float* xhi = xc;
      const int64_t ohhi = oh;
      advance();
      if (!Idx && q + 1 < q_end && ohlo >= oh_in0 && ohlo < oh_in1 && ohhi >= oh_in0 && ohhi < oh_in1) {
        // The steady state: plain vmaxps unless a NaN.
        const float* rlo = xlo + (2 * ohlo - ph) * rs - pw;
        const float* rhi = xhi + (2 * ohhi - ph) * rs - pw;
        __mmask16 nan = 0;
        __m512 m = ninf;
        for (int i = 0; i < K; ++i, rlo += rs, rhi += rs) {
          const RowSrc s{_mm512_mask_loadu_ps(ninf, lm, rlo), _mm512_mask_loadu_ps(ninf, lm, rhi), ninf, ninf};
          const __m512 h = row_max_plain<K, true>(s, t, nan);
          m = i == 0 ? h : _mm512_max_ps(h, m);
        }
        if (!nan) {
          _mm512_mask_storeu_ps(y, __mmask16(lo_half | hi_half), m);
          continue;
        }
      }
      pair_step<K, Idx>(a, t, lo_half, hi_half, lm, xlo, ohlo, q + 1 < q_end ? xhi : nullptr, ohhi, q);
    }
    return;
  }
  // Wide mode: lanes l are output columns ow0 + l of one row; with c0 = 2 * ow0 - pw, tap j
  // of lane l is load column 2 * l + j (j = 2: 2 * l of the loads at c0 + 2).
  for (int j = 0; j < K; ++j) t.perm[j] = _mm512_add_epi32(lane2, _mm512_set1_epi32(j & 1));
  for (int64_t p = p0; p < p1; ++p) {
    const float* x = a.x + n * a.sn + c * a.sc;
    if (++c == a.C) c = 0, ++n;
    for (int64_t ow0 = 0; ow0 < Wo; ow0 += 16) {
      const __mmask16 out = first_lanes(std::min<int64_t>(16, Wo - ow0));
      const int64_t c0 = 2 * ow0 - pw;
      const __mmask16 lm[4] = {cols_in(c0, W), cols_in(c0 + 16, W), cols_in(c0 + 2, W), cols_in(c0 + 18, W)};
      if (Idx)
        for (int j = 0; j < K; ++j) {
          t.col[j] = _mm512_add_epi32(lane2, _mm512_set1_epi32(int32_t(c0 + j)));
          t.valid[j] = __mmask16(_mm512_cmpge_epi32_mask(t.col[j], zero) & _mm512_cmplt_epi32_mask(t.col[j], vW) & out);
        }
      float* y = a.y + p * Ho * Wo + ow0;
      int64_t* idx = Idx ? a.idx + p * Ho * Wo + ow0 : nullptr;
      // 3x3: a window's last row is the next window's first; its maxima are carried over.
      __m512 carry = ninf;
      __m512i carry_i = zero;
      __mmask16 carry_nan = 0;
      for (int64_t oh = 0; oh < Ho; ++oh, y += Wo, idx += Idx ? Wo : 0) {
        const int64_t r0 = 2 * oh - ph;
        int first_pass = 0;
        if (!Idx && r0 >= 0 && r0 + K <= H && (K == 2 || oh > 0)) {
          // The steady state: every window row inside the plane (3x3: the first carried over).
          const float* xr = x + (r0 + 1) * rs;
          __mmask16 nan = 0;
          const __m512 h1 = row_max_plain<K, false>(load_row<K, false>(xr, nullptr, c0, lm), t, nan);
          __m512 m;
          if (K == 3) {
            __mmask16 n2 = 0;
            const __m512 h2 = row_max_plain<K, false>(load_row<K, false>(xr + rs, nullptr, c0, lm), t, n2);
            m = _mm512_max_ps(h2, _mm512_max_ps(h1, carry));
            nan = __mmask16(nan | n2 | carry_nan);
            carry = h2;
            carry_nan = n2;
          } else {
            m = _mm512_max_ps(h1, row_max_plain<K, false>(load_row<K, false>(xr - rs, nullptr, c0, lm), t, nan));
          }
          if (!nan) {
            _mm512_mask_storeu_ps(y, out, m);
            continue;
          }
          first_pass = 1;  // a NaN: the NaN-propagating pass below
        }
        __m512 m = ninf;
        __m512i mi = zero;
        bool have = false;
        __mmask16 nan = 0;
        for (int pass = first_pass; pass < 2; ++pass) {  // pass 1: redo with NaN propagation
          for (int i = 0; i < K; ++i) {
            const int64_t r = r0 + i;
            if (r < 0 || r >= H) continue;
            const bool reuse = K == 3 && i == 0 && oh > 0 && pass == 0;
            if (Idx) {
              __m512 h = carry;
              __m512i hi = carry_i;
              if (!reuse) {
                __mmask16 hv;
                h = row_argmax<K, false>(load_row<K, false>(x + r * rs, nullptr, c0, lm), t, out,
                                     _mm512_set1_epi32(int32_t(r * W)), hi, hv);
              }
              if (K == 3 && i == 2) carry = h, carry_i = hi;
              const __mmask16 u = have ? takes(m, h, out, out) : out;
              m = _mm512_mask_mov_ps(m, u, h);
              mi = _mm512_mask_mov_epi32(mi, u, hi);
              have = true;
            } else if (pass == 0) {
              __m512 h = carry;
              __mmask16 hn = carry_nan;
              if (!reuse) {
                hn = 0;
                h = row_max_plain<K, false>(load_row<K, false>(x + r * rs, nullptr, c0, lm), t, hn);
              }
              if (K == 3 && i == 2) carry = h, carry_nan = hn;
              m = _mm512_max_ps(h, m);
              nan = __mmask16(nan | hn);
            } else {
              m = upd(m, row_max<K, false>(load_row<K, false>(x + r * rs, nullptr, c0, lm), t));
            }
          }
          if (Idx || !nan || pass == 1) break;
          m = ninf;
        }
        _mm512_mask_storeu_ps(y, out, m);
        if (Idx) store_idx(idx, out, mi);
      }
    }
  }
}

// The AVX-512 loop for this window, or null.
using S2Fn = void (*)(const S2Pool&, int64_t, int64_t);
S2Fn pick_s2_avx512(const Window& w, bool with_idx, int64_t H, int64_t W) {
  if (!cpu_has_avx512f() || w.kh != w.kw || (w.kh != 2 && w.kh != 3) || w.sh != 2 || w.sw != 2 || w.dh != 1 ||
      w.dw != 1 || w.ph > 1 || w.pw > 1 || (with_idx && (H + 2) * W >= (int64_t(1) << 31)))
    return nullptr;
  if (w.kh == 2) return with_idx ? &max_pool_s2_avx512<2, true> : &max_pool_s2_avx512<2, false>;
  return with_idx ? &max_pool_s2_avx512<3, true> : &max_pool_s2_avx512<3, false>;
}
#endif  // FW_POOL_AVX512

// ---- nchw16c (channel-blocked) pooling ------------------------------------------------
//
// In graph mode the runtime appends one Int attribute "layout" after an op's own
// attributes (absent: plain NCHW): bit 1 = input 0 is nchw16c, bit 2 = the outputs are.
// nchw16c of a logical (N, C, H, W) tensor, C % 16 == 0, stores element (n, c, h, w) at
// ((n * (C / 16) + c / 16) * H * W + h * W + w) * 16 + c % 16: each pixel of a channel
// block is one 16-float vector, so a window reduction is one vector operation per tap for
// 16 channels, with no horizontal work (see layout.cpp for the reorders). The views keep
// the logical shape and contiguous strides.

constexpr int64_t kCB = kNchwBlock;  // channels per block

void check_blocked(const char* op, const TensorView& v, const char* what) {
  FW_CHECK(v.ndim == 4 && v.is_contiguous() && v.shape[1] % kCB == 0, op, ": the nchw16c ", what,
           " must be a contiguous 4-d (N, C, H, W) tensor with C a multiple of 16, got ", v.ndim, "-d with ",
           v.ndim > 1 ? v.shape[1] : 0, " channels");
}

// max_pool2d over nchw16c input and output: rows (n, channel block, oh) of Wo vectors.
// jlo[ow], jhi[ow]: the window columns of output column ow inside [0, W).
struct BlkMaxPool {
  const void* x;
  void* y;
  int64_t H, W, Ho, Wo;
  Window w;
  const int64_t* jlo;
  const int64_t* jhi;
  int64_t c_lo, c_hi;  // the output columns whose K x K window (square, no dilation) is inside
};

// Window rows [i_lo, i_hi) of output row oh inside [0, H); top: the input row of window row 0.
inline void valid_rows(const Window& w, int64_t H, int64_t oh, int64_t& top, int64_t& i_lo, int64_t& i_hi) {
  top = oh * w.sh - w.ph;
  i_lo = top < 0 ? (-top + w.dh - 1) / w.dh : 0;
  i_hi = H - 1 - top < 0 ? 0 : std::min(w.kh, (H - 1 - top) / w.dh + 1);
}

// Portable rows [r0, r1): torch's update "v > m || isnan(v)" per lane, taps in ATen's
// row-major order from -inf (padding taps are skipped), as the NCHW kernels.
template <class T>
FW_TARGET_CLONES void max_pool_blk_rows(const BlkMaxPool& a, int64_t r0, int64_t r1) {
  const T* x = static_cast<const T*>(a.x);
  T* y = static_cast<T*>(a.y);
  const Window& w = a.w;
  for (int64_t r = r0; r < r1; ++r) {
    const T* xb = x + (r / a.Ho) * a.H * a.W * kCB;
    T* yr = y + r * a.Wo * kCB;
    int64_t top, i_lo, i_hi;
    valid_rows(w, a.H, r % a.Ho, top, i_lo, i_hi);
    for (int64_t ow = 0; ow < a.Wo; ++ow) {
      T m[kCB];
      for (int64_t l = 0; l < kCB; ++l) m[l] = -std::numeric_limits<T>::infinity();
      const int64_t left = ow * w.sw - w.pw;
      for (int64_t i = i_lo; i < i_hi; ++i) {
        const T* row = xb + (top + i * w.dh) * a.W * kCB;
        for (int64_t j = a.jlo[ow]; j < a.jhi[ow]; ++j) {
          const T* v = row + (left + j * w.dw) * kCB;
          for (int64_t l = 0; l < kCB; ++l) {
            const T e = v[l];
            m[l] = (e > m[l]) | (e != e) ? e : m[l];
          }
        }
      }
      for (int64_t l = 0; l < kCB; ++l) yr[ow * kCB + l] = m[l];
    }
  }
}

#if FW_POOL_AVX512
// f32 rows on AVX-512. Each output folds its window on plain vmaxps (its second operand, the
// earlier element, wins ties, so the first maximum is kept as in the portable loop) while a
// mask records NaN taps; an output that saw one is refolded with torch's NaN-propagating
// update (upd), so the values (which NaN wins, the sign of a zero maximum) equal the portable
// loop's. K = 2 or 3: square windows without dilation, whose interior outputs (every tap
// inside the plane) take an unrolled fold; K = 0: any window, runtime loops throughout.
FW_AVX512_INLINE __m512 blk_window_exact(const float* base, int64_t rs, int64_t cs, int64_t i0, int64_t i1,
                                         int64_t j0, int64_t j1) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = i0; i < i1; ++i) {
    const float* p = base + i * rs;
    for (int64_t j = j0; j < j1; ++j, p += cs) m = upd(m, _mm512_loadu_ps(p));
  }
  return m;
}

template <int K>
FW_AVX512_INLINE __m512 blk_window_kxk(const float* p, int64_t rs, __mmask16& nan) {
  __m512 m = _mm512_setzero_ps();
  for (int i = 0; i < K; ++i, p += rs) {
    const __m512 v0 = _mm512_loadu_ps(p), v1 = _mm512_loadu_ps(p + kCB);
    nan = __mmask16(nan | _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q));
    __m512 h = _mm512_max_ps(v1, v0);
    if (K == 3) {
      const __m512 v2 = _mm512_loadu_ps(p + 2 * kCB);
      nan = __mmask16(nan | _mm512_cmp_ps_mask(v2, v2, _CMP_UNORD_Q));
      h = _mm512_max_ps(v2, h);
    }
    m = i == 0 ? h : _mm512_max_ps(h, m);
  }
  return m;
}

template <int K>
__attribute__((target("avx512f"))) void max_pool_blk_avx512(const BlkMaxPool& a, int64_t r0, int64_t r1) {
  const float* x = static_cast<const float*>(a.x);
  float* y = static_cast<float*>(a.y);
  const Window w = a.w;
  const int64_t H = a.H, Ho = a.Ho, Wo = a.Wo, rs = a.W * kCB, cs = w.dw * kCB, os = w.sw * kCB;
  const int64_t c_lo = K ? a.c_lo : Wo, c_hi = K ? a.c_hi : Wo;
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t r = r0; r < r1; ++r) {
    const float* xb = x + (r / Ho) * H * rs;
    float* yr = y + r * Wo * kCB;
    int64_t top, i_lo, i_hi;
    valid_rows(w, H, r % Ho, top, i_lo, i_hi);
    const float* xrow = xb + top * rs;  // window row 0 (may lie in the padding: offset only)
    int64_t ow = 0;
    if (K && i_lo == 0 && i_hi == K) {  // interior columns: every tap inside
      for (; ow < c_lo; ++ow) {
        const int64_t j0 = a.jlo[ow], j1 = a.jhi[ow];
        _mm512_storeu_ps(yr + ow * kCB, blk_window_exact(xrow + (ow * w.sw - w.pw + j0) * kCB, rs, cs, 0, K, j0, j1));
      }
      const float* p = xrow + (c_lo * w.sw - w.pw) * kCB;
      for (; ow < c_hi; ++ow, p += os) {
        __mmask16 nan = 0;
        __m512 m = blk_window_kxk<K>(p, rs, nan);
        if (nan) m = blk_window_exact(p, rs, kCB, 0, K, 0, K);
        _mm512_storeu_ps(yr + ow * kCB, m);
      }
    }
    for (; ow < Wo; ++ow) {  // any window, clipped to the plane
      const int64_t j0 = a.jlo[ow], j1 = a.jhi[ow];
      const float* base = xrow + (ow * w.sw - w.pw + j0 * w.dw) * kCB;
      __m512 m = ninf;
      __mmask16 nan = 0;
      for (int64_t i = i_lo; i < i_hi; ++i) {
        const float* p = base + i * w.dh * rs;
        for (int64_t j = j0; j < j1; ++j, p += cs) {
          const __m512 v = _mm512_loadu_ps(p);
          nan = __mmask16(nan | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q));
          m = _mm512_max_ps(v, m);
        }
      }
      if (nan) m = blk_window_exact(base, w.dh * rs, cs, i_lo, i_hi, j0, j1);
      _mm512_storeu_ps(yr + ow * kCB, m);
    }
  }
}
#endif

// max_pool2d with layout attr #6 == 3: nchw16c input and output, values only.
template <class T>
void max_pool2d_blocked(const KernelArgs& k, const Window& w, int64_t layout) {
  FW_CHECK(layout == 3, "max_pool2d: unsupported layout attribute ", layout,
           " (0: NCHW, 3: nchw16c input and output)");
  FW_CHECK(k.attrs->i(5) == 0, "max_pool2d: the nchw16c layout computes no indices (with_indices must be false)");
  const TensorView& x = k.input(0);
  TensorView& y = k.output(0);
  check_blocked("max_pool2d", x, "input");
  check_blocked("max_pool2d", y, "output");
  FW_CHECK(x.shape[0] == y.shape[0] && x.shape[1] == y.shape[1], "max_pool2d: batch/channels of input (",
           x.shape[0], ", ", x.shape[1], ") and output (", y.shape[0], ", ", y.shape[1], ") differ");
  const int64_t H = x.shape[2], W = x.shape[3], Ho = y.shape[2], Wo = y.shape[3];
  check_pool_output("max_pool2d", w, k.attrs->i(4) != 0, H, W, Ho, Wo);  // no window past the padded plane
  if (y.numel() == 0) return;
  std::vector<int64_t> jlo(static_cast<size_t>(Wo)), jhi(static_cast<size_t>(Wo));
  for (int64_t ow = 0; ow < Wo; ++ow) {
    const int64_t left = ow * w.sw - w.pw;
    const int64_t lo = left < 0 ? (-left + w.dw - 1) / w.dw : 0;
    const int64_t hi = W - 1 - left < 0 ? 0 : std::min(w.kw, (W - 1 - left) / w.dw + 1);
    jlo[size_t(ow)] = lo;
    jhi[size_t(ow)] = std::max(lo, hi);
  }
  // Square 2x2 / 3x3 windows without dilation have unrolled interiors (see max_pool_blk_avx512).
  const int64_t K = w.kh == w.kw && w.dh == 1 && w.dw == 1 && (w.kh == 2 || w.kh == 3) ? w.kh : 0;
  const int64_t c_lo = std::min(Wo, (w.pw + w.sw - 1) / w.sw);
  const int64_t c_hi = W - K + w.pw < 0 ? c_lo : std::max(c_lo, std::min(Wo, (W - K + w.pw) / w.sw + 1));
  const BlkMaxPool a{x.data, y.data, H, W, Ho, Wo, w, jlo.data(), jhi.data(), c_lo, c_hi};
  const int64_t rows = y.shape[0] * (y.shape[1] / kCB) * Ho;
  // ~16K outputs (a few us) per thread at least: waking the pool costs ~2 us.
  const int64_t grain = std::max<int64_t>(1, 16384 / (Wo * kCB));
#if FW_POOL_AVX512
  if (std::is_same<T, float>::value && cpu_has_avx512f()) {
    const auto fn = K == 2 ? &max_pool_blk_avx512<2> : K == 3 ? &max_pool_blk_avx512<3> : &max_pool_blk_avx512<0>;
    parallel_for(rows, grain, [&](int64_t r0, int64_t r1) { fn(a, r0, r1); });
    return;
  }
#endif
  parallel_for(rows, grain, [&](int64_t r0, int64_t r1) { max_pool_blk_rows<T>(a, r0, r1); });
}


// max_pool2d(x; kernel=#0, stride=#1, padding=#2, dilation=#3, ceil_mode=#4,
// with_indices=#5) -> (y, indices). Without indices (attr #5 false) output #1 is empty and
// not written. Older graphs have no attr #5: indices are then computed. The graph runtime
// may append layout=#6 (see max_pool2d_blocked).
template <class T>
void max_pool2d_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  TensorView &y = k.output(0), &idx = k.output(1);
  Window w = read_window(*k.attrs, 0, true, "max_pool2d");
  if (const int64_t layout = layout_attr(*k.attrs, 6)) {
    max_pool2d_blocked<T>(k, w, layout);
    return;
  }
  const bool with_idx = k.attrs->size() <= 5 || k.attrs->i(5) != 0;
  Planes in(x, "max_pool2d"), out(y, "max_pool2d");
  check_pair("max_pool2d", in, out);
  FW_CHECK(y.is_contiguous(), "max_pool2d: output must be contiguous");
  FW_CHECK(!with_idx || (idx.is_contiguous() && idx.numel() == y.numel() && idx.dtype == DType::i64),
           "max_pool2d: indices output must be a contiguous int64 tensor shaped like the output");
  const int64_t Ho = out.H, Wo = out.W, H = in.H, W = in.W;
  check_pool_output("max_pool2d", w, k.attrs->i(4) != 0, H, W, Ho, Wo);  // no window past the padded plane
  if (y.numel() == 0) return;
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  int64_t* ip = with_idx ? idx.ptr<int64_t>() : nullptr;
  const bool unit_cols = in.sw == 1 || W == 1;
  // A contiguous copy of a plane for inputs with a non-unit column stride.
  const bool pair = unit_cols && w.kh == 2 && w.kw == 2 && w.sh == 2 && w.sw == 2 &&
                    w.ph == 0 && w.pw == 0 && w.dh == 1 && w.dw == 1 && 2 * Ho <= H && 2 * Wo <= W;
  const bool separable = !with_idx && !pair && separable_ok(w);
  const int64_t j_lo = w.pw - (Wo - 1) * w.sw > 0 ? (w.pw - (Wo - 1) * w.sw + w.dw - 1) / w.dw : 0;
  const int64_t j_hi = std::max(j_lo, std::min(w.kw, (W - 1 + w.pw) / w.dw + 1));
  std::vector<int64_t> lo(size_t(j_hi - j_lo)), hi(size_t(j_hi - j_lo));
  for (int64_t j = j_lo; j < j_hi; ++j)
    valid_columns(Wo, W, w.sw, j * w.dw - w.pw, lo[size_t(j - j_lo)], hi[size_t(j - j_lo)]);
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, H * W));
#if FW_POOL_AVX512
  if constexpr (std::is_same<T, float>::value) {
    if (const S2Fn fast = pick_s2_avx512(w, with_idx, H, W)) {
      const S2Pool args{xp, in.sn, in.sc, std::max<int64_t>(in.C, 1), in.sh, H, W, yp, ip, Ho, Wo, w.ph, w.pw};
      if (unit_cols) {
        parallel_for(in.count(), grain, [&](int64_t p0, int64_t p1) { fast(args, p0, p1); });
        return;
      }
      parallel_for(in.count(), grain, [&](int64_t p0, int64_t p1) {
        std::vector<float> tmp(size_t(H * W));
        for (int64_t p = p0; p < p1; ++p) {  // gather each plane, then pool it as plane 0
          const float* xpl = xp + in.offset(p);
          for (int64_t h = 0; h < H; ++h)
            for (int64_t c = 0; c < W; ++c) tmp[h * W + c] = xpl[h * in.sh + c * in.sw];
          S2Pool one = args;
          one.x = tmp.data();
          one.rs = W;
          one.y = yp + p * Ho * Wo;
          one.idx = with_idx ? ip + p * Ho * Wo : nullptr;
          fast(one, 0, 1);
        }
      });
      return;
    }
  }
#endif
  parallel_for(in.count(), grain, [&](int64_t p0, int64_t p1) {
    std::vector<T> tmp, hbuf;
    for (int64_t p = p0; p < p1; ++p) {
      const T* xpl = xp + in.offset(p);
      int64_t rs = in.sh;
      if (!unit_cols) {  // gather the plane once; the loops then read unit columns
        tmp.resize(size_t(H * W));
        for (int64_t h = 0; h < H; ++h)
          for (int64_t c = 0; c < W; ++c) tmp[h * W + c] = xpl[h * in.sh + c * in.sw];
        xpl = tmp.data();
        rs = W;
      }
      T* ypl = yp + p * Ho * Wo;
      int64_t* ipl = with_idx ? ip + p * Ho * Wo : nullptr;
      if (pair && with_idx) {
        for (int64_t oh = 0; oh < Ho; ++oh)
          max_2x2_row_idx<T>(xpl + 2 * oh * rs, xpl + (2 * oh + 1) * rs, ypl + oh * Wo, ipl + oh * Wo, Wo, 2 * oh * W,
                             W);
      } else if (pair) {
        for (int64_t oh = 0; oh < Ho; ++oh)
          max_2x2_row<T>(xpl + 2 * oh * rs, xpl + (2 * oh + 1) * rs, ypl + oh * Wo, Wo);
      } else if (separable) {
        hbuf.resize(size_t(H * Wo));
        max_pool_separable<T>(w, xpl, rs, H, W, ypl, Ho, Wo, hbuf.data());
      } else if (w.sw == 1) {
        with_idx ? max_pool_plane<T, 1, true>(w, lo.data(), hi.data(), j_lo, j_hi, xpl, rs, H, W, ypl, ipl, Ho, Wo)
                 : max_pool_plane<T, 1, false>(w, lo.data(), hi.data(), j_lo, j_hi, xpl, rs, H, W, ypl, ipl, Ho, Wo);
      } else if (w.sw == 2) {
        with_idx ? max_pool_plane<T, 2, true>(w, lo.data(), hi.data(), j_lo, j_hi, xpl, rs, H, W, ypl, ipl, Ho, Wo)
                 : max_pool_plane<T, 2, false>(w, lo.data(), hi.data(), j_lo, j_hi, xpl, rs, H, W, ypl, ipl, Ho, Wo);
      } else {
        with_idx ? max_pool_plane<T, 0, true>(w, lo.data(), hi.data(), j_lo, j_hi, xpl, rs, H, W, ypl, ipl, Ho, Wo)
                 : max_pool_plane<T, 0, false>(w, lo.data(), hi.data(), j_lo, j_hi, xpl, rs, H, W, ypl, ipl, Ho, Wo);
      }
    }
  });
}

// max_pool2d_backward(grad_output, indices; input_size=#0) -> grad_input (scatter-add).
template <class T>
void max_pool2d_backward_k(const KernelArgs& k) {
  const TensorView &go = k.input(0), &idx = k.input(1);
  TensorView& gi = k.output(0);
  Planes in(gi, "max_pool2d_backward"), out(go, "max_pool2d_backward");
  check_pair("max_pool2d_backward", in, out);
  FW_CHECK(go.numel() == 0 || (go.is_contiguous() && idx.is_contiguous() && gi.is_contiguous()), "max_pool2d_backward: operands must be contiguous");
  FW_CHECK(idx.numel() == go.numel(),
           "max_pool2d_backward: indices must be shaped like grad_output");
  FW_CHECK(idx.dtype == DType::i64, "max_pool2d_backward: indices must be int64");
  const T* gp = go.ptr<T>();
  const int64_t* ip = idx.ptr<int64_t>();
  T* gip = gi.ptr<T>();
  const int64_t HW = in.H * in.W, HoWo = out.H * out.W;
  std::atomic<bool> bad{false};
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* dst = gip + p * HW;
      std::fill(dst, dst + HW, T(0));
      for (int64_t o = p * HoWo; o < (p + 1) * HoWo; ++o) {
        int64_t i = ip[o];
        if (i < 0 || i >= HW) {
          bad.store(true, std::memory_order_relaxed);
          continue;
        }
        dst[i] += gp[o];
      }
    }
  });
  FW_CHECK(!bad.load(), "max_pool2d_backward: an index is outside the ", in.H, "x", in.W, " input plane");
}

// ---- avg_pool2d ----------------------------------------------------------------------

struct AvgWindow {
  int64_t h0, h1, w0, w1;  // clipped to the input
  double divisor;
  bool empty;
};

inline AvgWindow avg_window(const Window& w, int64_t H, int64_t W, int64_t oh, int64_t ow,
                            bool include_pad, int64_t divisor_override) {
  AvgWindow a;
  a.h0 = oh * w.sh - w.ph;
  a.w0 = ow * w.sw - w.pw;
  a.h1 = std::min(a.h0 + w.kh, H + w.ph);
  a.w1 = std::min(a.w0 + w.kw, W + w.pw);
  const int64_t pool_size = (a.h1 - a.h0) * (a.w1 - a.w0);
  a.h0 = std::max<int64_t>(a.h0, 0);
  a.w0 = std::max<int64_t>(a.w0, 0);
  a.h1 = std::min(a.h1, H);
  a.w1 = std::min(a.w1, W);
  a.empty = a.h0 >= a.h1 || a.w0 >= a.w1;
  if (divisor_override > 0) a.divisor = double(divisor_override);
  else if (include_pad) a.divisor = double(pool_size);
  else a.divisor = double((a.h1 - a.h0) * (a.w1 - a.w0));
  return a;
}

int64_t read_divisor(const Attrs& a, size_t i) {
  if (a.is_none(i)) return 0;
  int64_t d = a.i(i);
  FW_CHECK(d != 0, "avg_pool2d: divisor must be not zero");
  return d;
}

// avg_pool2d(x; kernel=#0, stride=#1, padding=#2, ceil_mode=#3, count_include_pad=#4,
// divisor_override=#5 or None)
template <class T>
void avg_pool2d_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  TensorView& y = k.output(0);
  Window w = read_window(*k.attrs, 0, false, "avg_pool2d");
  const bool include_pad = k.attrs->i(4) != 0;
  const int64_t div = read_divisor(*k.attrs, 5);
  Planes in(x, "avg_pool2d"), out(y, "avg_pool2d");
  check_pair("avg_pool2d", in, out);
  check_pool_output("avg_pool2d", w, k.attrs->i(3) != 0, in.H, in.W, out.H, out.W);
  FW_CHECK(y.is_contiguous(), "avg_pool2d: output must be contiguous");
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xpl = xp + in.offset(p);
      T* ypl = yp + p * out.H * out.W;
      for (int64_t oh = 0; oh < out.H; ++oh) {
        for (int64_t ow = 0; ow < out.W; ++ow) {
          AvgWindow a = avg_window(w, in.H, in.W, oh, ow, include_pad, div);
          T s = T(0);
          if (!a.empty)
            for (int64_t ih = a.h0; ih < a.h1; ++ih)
              for (int64_t iw = a.w0; iw < a.w1; ++iw) s += xpl[ih * in.sh + iw * in.sw];
          ypl[oh * out.W + ow] = a.empty ? T(0) : T(s / T(a.divisor));
        }
      }
    }
  });
}

// avg_pool2d_backward(grad_output; input_size=#0, kernel=#1, stride=#2, padding=#3,
// ceil_mode=#4, count_include_pad=#5, divisor_override=#6) -> grad_input
template <class T>
void avg_pool2d_backward_k(const KernelArgs& k) {
  const TensorView& go = k.input(0);
  TensorView& gi = k.output(0);
  Window w = read_window(*k.attrs, 1, false, "avg_pool2d_backward");
  const bool include_pad = k.attrs->i(5) != 0;
  const int64_t div = read_divisor(*k.attrs, 6);
  Planes in(gi, "avg_pool2d_backward"), out(go, "avg_pool2d_backward");
  check_pair("avg_pool2d_backward", in, out);
  check_pool_output("avg_pool2d_backward", w, k.attrs->i(4) != 0, in.H, in.W, out.H, out.W);
  FW_CHECK(gi.is_contiguous(), "avg_pool2d_backward: grad_input must be contiguous");
  const T* gp = go.ptr<T>();
  T* gip = gi.ptr<T>();
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* gpl = gp + out.offset(p);
      T* dst = gip + p * in.H * in.W;
      std::fill(dst, dst + in.H * in.W, T(0));
      for (int64_t oh = 0; oh < out.H; ++oh) {
        for (int64_t ow = 0; ow < out.W; ++ow) {
          AvgWindow a = avg_window(w, in.H, in.W, oh, ow, include_pad, div);
          if (a.empty) continue;
          const T v = gpl[oh * out.sh + ow * out.sw] / T(a.divisor);
          for (int64_t ih = a.h0; ih < a.h1; ++ih)
            for (int64_t iw = a.w0; iw < a.w1; ++iw) dst[ih * in.W + iw] += v;
        }
      }
    }
  });
}

// ---- adaptive_avg_pool2d -------------------------------------------------------------

inline int64_t start_index(int64_t o, int64_t out, int64_t in) { return (o * in) / out; }
inline int64_t end_index(int64_t o, int64_t out, int64_t in) { return ((o + 1) * in + out - 1) / out; }

// The windows of one plane add up to at most (H + Ho) x (W + Wo) elements: linear in the
// plane sizes unless one dim grows while the other shrinks by large factors (a crafted
// 5 x 62971 -> 53250 x 2 needs 3e9 per plane: a hang, found by the fuzzer). Such shapes get
// an error instead; anything within ~2^28 element visits beyond 64x the tensors runs.
void check_adaptive_work(const char* op, int64_t planes, int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
  const double visits = double(planes) * double(H + Ho) * double(W + Wo);
  const double sizes = double(planes) * (double(H) * double(W) + double(Ho) * double(Wo));
  FW_CHECK(visits <= 64.0 * sizes + double(int64_t(1) << 28), op, ": input ", H, "x", W, " -> output ", Ho, "x", Wo,
           " grows one dim while it shrinks the other by factors whose overlapping windows would take ", visits,
           " element visits; not supported");
}

// adaptive_avg_pool2d over an nchw16c input (layout attr #1: 1 = plain NCHW output, 3 =
// nchw16c output). Four channel blocks at a time (four independent sums for the adder
// pipeline); each lane sums its window in the NCHW kernel's order (rows, then columns, from
// 0) and divides by the window size, so the results equal the NCHW kernel's bit for bit.
struct BlkAdaptive {
  const void* x;
  void* y;
  int64_t blocks, CB, H, W, Ho, Wo;
  bool blocked_out;
};

constexpr int kGroup = 4;  // channel blocks summed together

// Stores the 16 channel means v of block p at output (oh, ow).
template <class T>
inline void store_blk_mean(const BlkAdaptive& a, int64_t p, int64_t oh, int64_t ow, const T* v) {
  T* y = static_cast<T*>(a.y);
  const int64_t HoWo = a.Ho * a.Wo;
  if (a.blocked_out) {
    std::copy(v, v + kCB, y + ((p * a.Ho + oh) * a.Wo + ow) * kCB);
    return;
  }
  T* dst = y + p * kCB * HoWo + oh * a.Wo + ow;  // (n * C + cb * 16) == p * 16 for plain NCHW
  for (int64_t l = 0; l < kCB; ++l) dst[l * HoWo] = v[l];
}

template <class T>
void adaptive_blk_groups(const BlkAdaptive& a, int64_t g0, int64_t g1) {
  const T* x = static_cast<const T*>(a.x);
  const int64_t HW = a.H * a.W;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t p0 = g * kGroup, np = std::min<int64_t>(kGroup, a.blocks - p0);
    for (int64_t oh = 0; oh < a.Ho; ++oh) {
      const int64_t h0 = start_index(oh, a.Ho, a.H), h1 = end_index(oh, a.Ho, a.H);
      for (int64_t ow = 0; ow < a.Wo; ++ow) {
        const int64_t w0 = start_index(ow, a.Wo, a.W), w1 = end_index(ow, a.Wo, a.W);
        const T cnt = T((h1 - h0) * (w1 - w0));
        for (int64_t q = 0; q < np; ++q) {
          const T* xb = x + (p0 + q) * HW * kCB;
          T s[kCB] = {};
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) {
              const T* v = xb + (ih * a.W + iw) * kCB;
              for (int64_t l = 0; l < kCB; ++l) s[l] += v[l];
            }
          for (int64_t l = 0; l < kCB; ++l) s[l] = s[l] / cnt;
          store_blk_mean<T>(a, p0 + q, oh, ow, s);
        }
      }
    }
  }
}

#if FW_POOL_AVX512
__attribute__((target("avx512f"))) void adaptive_blk_avx512(const BlkAdaptive& a, int64_t g0, int64_t g1) {
  const float* x = static_cast<const float*>(a.x);
  const int64_t HW = a.H * a.W;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t p0 = g * kGroup, np = std::min<int64_t>(kGroup, a.blocks - p0);
    const float* xb[kGroup];
    for (int q = 0; q < kGroup; ++q) xb[q] = x + (p0 + std::min<int64_t>(q, np - 1)) * HW * kCB;  // repeats: unused
    for (int64_t oh = 0; oh < a.Ho; ++oh) {
      const int64_t h0 = start_index(oh, a.Ho, a.H), h1 = end_index(oh, a.Ho, a.H);
      for (int64_t ow = 0; ow < a.Wo; ++ow) {
        const int64_t w0 = start_index(ow, a.Wo, a.W), w1 = end_index(ow, a.Wo, a.W);
        __m512 s[kGroup];
        for (int q = 0; q < kGroup; ++q) s[q] = _mm512_setzero_ps();
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const int64_t off = (ih * a.W + iw) * kCB;
            for (int q = 0; q < kGroup; ++q) s[q] = _mm512_add_ps(s[q], _mm512_loadu_ps(xb[q] + off));
          }
        const __m512 cnt = _mm512_set1_ps(float((h1 - h0) * (w1 - w0)));
        for (int64_t q = 0; q < np; ++q) {
          const __m512 m = _mm512_div_ps(s[q], cnt);
          if (a.blocked_out || a.Ho * a.Wo == 1) {  // 16 consecutive floats either way
            float* y = static_cast<float*>(a.y);
            const int64_t p = p0 + q;
            _mm512_storeu_ps(a.blocked_out ? y + ((p * a.Ho + oh) * a.Wo + ow) * kCB : y + p * kCB, m);
          } else {
            alignas(64) float v[kCB];
            _mm512_store_ps(v, m);
            store_blk_mean<float>(a, p0 + q, oh, ow, v);
          }
        }
      }
    }
  }
}
#endif

template <class T>
void adaptive_avg_pool2d_blocked(const KernelArgs& k, int64_t layout) {
  FW_CHECK(layout == 1 || layout == 3, "adaptive_avg_pool2d: unsupported layout attribute ", layout,
           " (0: NCHW, 1: nchw16c input, 3: nchw16c input and output)");
  const TensorView& x = k.input(0);
  TensorView& y = k.output(0);
  check_blocked("adaptive_avg_pool2d", x, "input");
  if (layout == 3) check_blocked("adaptive_avg_pool2d", y, "output");
  FW_CHECK(y.ndim == 4 && y.is_contiguous(), "adaptive_avg_pool2d: output must be a contiguous 4-d tensor");
  FW_CHECK(x.shape[0] == y.shape[0] && x.shape[1] == y.shape[1], "adaptive_avg_pool2d: batch/channels of input (",
           x.shape[0], ", ", x.shape[1], ") and output (", y.shape[0], ", ", y.shape[1], ") differ");
  if (y.numel() == 0) return;
  FW_CHECK(x.shape[2] > 0 && x.shape[3] > 0, "adaptive_avg_pool2d: empty input plane");
  check_adaptive_work("adaptive_avg_pool2d", x.shape[0] * x.shape[1], x.shape[2], x.shape[3], y.shape[2], y.shape[3]);
  const BlkAdaptive a{x.data, y.data, x.shape[0] * (x.shape[1] / kCB), x.shape[1] / kCB,
                      x.shape[2], x.shape[3], y.shape[2], y.shape[3], layout == 3};
  const int64_t groups = (a.blocks + kGroup - 1) / kGroup;
  const int64_t work = kGroup * kCB * std::max(a.H * a.W, a.Ho * a.Wo);  // elements summed per group
  const int64_t grain = std::max<int64_t>(1, 32768 / work);
#if FW_POOL_AVX512
  if (std::is_same<T, float>::value && cpu_has_avx512f()) {
    parallel_for(groups, grain, [&](int64_t g0, int64_t g1) { adaptive_blk_avx512(a, g0, g1); });
    return;
  }
#endif
  parallel_for(groups, grain, [&](int64_t g0, int64_t g1) { adaptive_blk_groups<T>(a, g0, g1); });
}

// adaptive_avg_pool2d(x; output_size=#0); the output view carries the size;
// layout=#1 (graph runtime only): see adaptive_avg_pool2d_blocked.
template <class T>
void adaptive_avg_pool2d_k(const KernelArgs& k) {
  if (const int64_t layout = layout_attr(*k.attrs, 1)) {
    adaptive_avg_pool2d_blocked<T>(k, layout);
    return;
  }
  const TensorView& x = k.input(0);
  TensorView& y = k.output(0);
  Planes in(x, "adaptive_avg_pool2d"), out(y, "adaptive_avg_pool2d");
  check_pair("adaptive_avg_pool2d", in, out);
  FW_CHECK(y.is_contiguous(), "adaptive_avg_pool2d: output must be contiguous");
  FW_CHECK(y.numel() == 0 || (in.H > 0 && in.W > 0), "adaptive_avg_pool2d: empty input plane");
  if (y.numel() > 0) check_adaptive_work("adaptive_avg_pool2d", in.count(), in.H, in.W, out.H, out.W);
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xpl = xp + in.offset(p);
      for (int64_t oh = 0; oh < out.H; ++oh) {
        const int64_t h0 = start_index(oh, out.H, in.H), h1 = end_index(oh, out.H, in.H);
        for (int64_t ow = 0; ow < out.W; ++ow) {
          const int64_t w0 = start_index(ow, out.W, in.W), w1 = end_index(ow, out.W, in.W);
          T s = T(0);
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) s += xpl[ih * in.sh + iw * in.sw];
          yp[(p * out.H + oh) * out.W + ow] = s / T((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

// adaptive_avg_pool2d_backward(grad_output; input_size=#0) -> grad_input
template <class T>
void adaptive_avg_pool2d_backward_k(const KernelArgs& k) {
  const TensorView& go = k.input(0);
  TensorView& gi = k.output(0);
  Planes in(gi, "adaptive_avg_pool2d_backward"), out(go, "adaptive_avg_pool2d_backward");
  check_pair("adaptive_avg_pool2d_backward", in, out);
  FW_CHECK(gi.is_contiguous(), "adaptive_avg_pool2d_backward: grad_input must be contiguous");
  check_adaptive_work("adaptive_avg_pool2d_backward", in.count(), in.H, in.W, out.H, out.W);
  const T* gp = go.ptr<T>();
  T* gip = gi.ptr<T>();
  parallel_for(in.count(), 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* gpl = gp + out.offset(p);
      T* dst = gip + p * in.H * in.W;
      std::fill(dst, dst + in.H * in.W, T(0));
      for (int64_t oh = 0; oh < out.H; ++oh) {
        const int64_t h0 = start_index(oh, out.H, in.H), h1 = end_index(oh, out.H, in.H);
        for (int64_t ow = 0; ow < out.W; ++ow) {
          const int64_t w0 = start_index(ow, out.W, in.W), w1 = end_index(ow, out.W, in.W);
          const T v = gpl[oh * out.sh + ow * out.sw] / T((h1 - h0) * (w1 - w0));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) dst[ih * in.W + iw] += v;
        }
      }
    }
  });
}

}  // namespace

FW_REGISTER_KERNELS(pool) {
  register_kernel("max_pool2d", DType::f32, &max_pool2d_k<float>);
  register_kernel("max_pool2d", DType::f64, &max_pool2d_k<double>);
  register_kernel("max_pool2d_backward", DType::f32, &max_pool2d_backward_k<float>);
  register_kernel("max_pool2d_backward", DType::f64, &max_pool2d_backward_k<double>);
  register_kernel("avg_pool2d", DType::f32, &avg_pool2d_k<float>);
  register_kernel("avg_pool2d", DType::f64, &avg_pool2d_k<double>);
  register_kernel("avg_pool2d_backward", DType::f32, &avg_pool2d_backward_k<float>);
  register_kernel("avg_pool2d_backward", DType::f64, &avg_pool2d_backward_k<double>);
  register_kernel("adaptive_avg_pool2d", DType::f32, &adaptive_avg_pool2d_k<float>);
  register_kernel("adaptive_avg_pool2d", DType::f64, &adaptive_avg_pool2d_k<double>);
  register_kernel("adaptive_avg_pool2d_backward", DType::f32, &adaptive_avg_pool2d_backward_k<float>);
  register_kernel("adaptive_avg_pool2d_backward", DType::f64, &adaptive_avg_pool2d_backward_k<double>);
}

}  // namespace fw
