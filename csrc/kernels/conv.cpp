// conv.cpp: 2-D convolution over NCHW tensors and its two backward computations (grad of
// the input via GEMM + col2im, grad of the weight via GEMM over im2col). conv_transpose2d
// is the input-backward computation plus a bias.
//
// Forward paths (conv2d_forward, shared with conv2d_act in fused.cpp through conv.h):
//   - float32, groups 1, AVX-512 CPU: a register-tiled direct convolution (8 output channels
//     x 48 pixels per tile, weights broadcast in place, no repacking; or, with a weight the
//     graph runtime pre-packed, 12 pixels x 32 channels on small maps). It reads the
//     zero-padded input split into stride phases (one plane at stride 1) with one offset
//     per tap, so no im2col; in bands of output rows, so scratch stays bounded (L2-sized
//     when one thread runs a sample). Bias, a residual and relu are applied as each tile is
//     stored. In the graph runtime's channel-blocked layout (nchw16c, runtime/layout.h) the
//     12 x 32 tiles store each pixel's 16 channels as one vector, reading a blocked or plain
//     input. Tiles over a packed weight skip the taps that read the padding (tap_rows, the
//     column tiles). Samples run in parallel at batch > 1, tiles at batch 1. Geometries whose
//     phase planes would be mostly padding (huge dilations on tiny maps) read im2col
//     columns instead.
//   - otherwise (float64, groups > 1, no AVX-512): im2col + OpenBLAS GEMM per sample, with
//     the bias pre-filled and the residual added after.
//
// Layout: x (N, C, H, W), weight (Cout, C/groups, kh, kw), out (N, Cout, Ho, Wo), all
// contiguous (the Python side passes .contiguous()). Per sample and group the forward is
//   out[Cout_g, Ho*Wo] = weight_g[Cout_g, C_g*kh*kw] @ col[C_g*kh*kw, Ho*Wo]
// with the weights as the A operand; a 1x1 stride-1 unpadded conv uses x itself as col.
// Padding attrs are 4 ints (top, left, bottom, right), so padding="same" may be uneven.
#include <algorithm>
#include <cstring>
#include <optional>

#include <type_traits>
#include <utility>
#include <vector>

#include "core/allocator.h"
#include "core/parallel.h"
#include "kernels/blas.h"
#include "kernels/conv.h"
#include "kernels/nchw.h"
#include "kernels/packed_tile.h"
#include "kernels/registry.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// NOTE: GCC 12 warns about _mm512_undefined_ps inside its own _mm512_max_ps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#define FW_CONV_AVX512 1
#else
#define FW_CONV_AVX512 0
#endif

namespace fw {
namespace {

struct ConvGeom {
  int64_t N, C, H, W;     // input
  int64_t Cout, Ho, Wo;   // output
  int64_t kh, kw;
  int64_t sh, sw, pt, pl, pb, pr, dh, dw;
  int64_t groups;
  int64_t Cg() const { return C / groups; }
  int64_t Coutg() const { return Cout / groups; }
  int64_t K() const { return Cg() * kh * kw; }   // GEMM inner dim
  int64_t HW() const { return H * W; }
  int64_t HoWo() const { return Ho * Wo; }
  bool direct() const {  // 1x1, stride 1, no padding: x is already the im2col matrix
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && pb == 0 && pr == 0;
  }
};

int64_t conv_out_size(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d) {
  return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

// The geometry of the convolution x (*) w -> y, checked: x and y play the conv's input and
// output (the backward ops and conv_transpose2d pass their operands in those roles). With
// `pooled` y is a pooling of the conv's output (conv2d_act_maxpool): the conv's Ho x Wo
// follow from x, w and the attributes, and only y's batch and channels must match.
ConvGeom make_geom(const char* op, const TensorView& x, const TensorView& w, const TensorView& y,
                   const std::vector<int64_t>& stride, const std::vector<int64_t>& pad,
                   const std::vector<int64_t>& dil, int64_t groups, bool pooled = false) {
  FW_CHECK(x.ndim == 4 && w.ndim == 4 && y.ndim == 4, op, ": expected 4-d input, weight and output");
  FW_CHECK(stride.size() == 2 && pad.size() == 4 && dil.size() == 2, op,
           ": stride/dilation need 2 ints and padding 4 ints");
  // NOTE: an empty view may carry any strides (numpy broadcasts of size 0 have stride 0).
  auto dense = [](const TensorView& v) { return v.numel() == 0 || v.is_contiguous(); };
  FW_CHECK(dense(x) && dense(w) && dense(y), op, ": operands must be contiguous");
  ConvGeom g;
  g.N = x.shape[0];
  g.C = x.shape[1];
  g.H = x.shape[2];
  g.W = x.shape[3];
  g.Cout = w.shape[0];
  g.kh = w.shape[2];
  g.kw = w.shape[3];
  g.sh = stride[0];
  g.sw = stride[1];
  g.pt = pad[0];
  g.pl = pad[1];
  g.pb = pad[2];
  g.pr = pad[3];
  g.dh = dil[0];
  g.dw = dil[1];
  g.groups = groups;
  FW_CHECK(g.sh > 0 && g.sw > 0 && g.dh > 0 && g.dw > 0, op, ": stride and dilation must be positive");
  FW_CHECK(g.pt >= 0 && g.pl >= 0 && g.pb >= 0 && g.pr >= 0, op, ": padding must be non-negative");
  constexpr int64_t kMaxAttr = int64_t(1) << 24;  // keeps the index arithmetic below far from overflow
  for (int64_t v : {g.sh, g.sw, g.dh, g.dw, g.pt, g.pl, g.pb, g.pr})
    FW_CHECK(v <= kMaxAttr, op, ": stride, padding and dilation must be at most ", kMaxAttr, ", got ", v);
  FW_CHECK(groups > 0 && g.C % groups == 0 && g.Cout % groups == 0, op, ": groups=", groups,
           " must divide in_channels ", g.C, " and out_channels ", g.Cout);
  FW_CHECK(w.shape[1] * groups == g.C, op, ": weight ", w.shape[1], "x", groups,
           " groups does not match ", g.C, " input channels");
  FW_CHECK(y.shape[0] == g.N && y.shape[1] == g.Cout, op, ": output batch/channels mismatch");
  FW_CHECK(g.H + g.pt + g.pb >= g.dh * (g.kh - 1) + 1 && g.W + g.pl + g.pr >= g.dw * (g.kw - 1) + 1, op,
           ": kernel ", g.kh, "x", g.kw, " larger than padded input");
  g.Ho = pooled ? conv_out_size(g.H, g.kh, g.sh, g.pt, g.pb, g.dh) : y.shape[2];
  g.Wo = pooled ? conv_out_size(g.W, g.kw, g.sw, g.pl, g.pr, g.dw) : y.shape[3];
  FW_CHECK(g.Ho == conv_out_size(g.H, g.kh, g.sh, g.pt, g.pb, g.dh) &&
               g.Wo == conv_out_size(g.W, g.kw, g.sw, g.pl, g.pr, g.dw),
           op, ": output ", g.Ho, "x", g.Wo, " does not match input ", g.H, "x", g.W);
  return g;
}

// The output columns [lo, hi) whose input column ow*s - p + j*d lies inside [0, W).
inline void valid_range(int64_t Wo, int64_t W, int64_t s, int64_t p, int64_t off, int64_t& lo,
                        int64_t& hi) {
  int64_t a = p - off;  // first ow with ow*s >= a
  lo = a <= 0 ? 0 : std::min(Wo, (a + s - 1) / s);
  int64_t b = W - 1 + p - off;  // last ow with ow*s <= b
  hi = b < 0 ? 0 : std::min(Wo, b / s + 1);
  hi = std::max(hi, lo);
}

// col[(c*kh + i)*kw + j, (oh - oh0)*Wo + ow] = x[c, oh*sh - pt + i*dh, ow*sw - pl + j*dw]
// (0 outside) for output rows oh in [oh0, oh1). x: one sample's group (Cg, H, W); the rows
// of col are split over the thread pool.
template <class T>
void im2col(const ConvGeom& g, const T* x, T* col, int64_t oh0, int64_t oh1) {
  const int64_t rows = g.K(), len = (oh1 - oh0) * g.Wo, khw = g.kh * g.kw;
  parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(len, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t c = r / khw, i = (r / g.kw) % g.kh, j = r % g.kw;
      int64_t lo, hi;
      valid_range(g.Wo, g.W, g.sw, g.pl, j * g.dw, lo, hi);
      T* dst = col + r * len;
      for (int64_t oh = oh0; oh < oh1; ++oh, dst += g.Wo) {
        const int64_t ih = oh * g.sh - g.pt + i * g.dh;
        if (ih < 0 || ih >= g.H) {
          std::fill(dst, dst + g.Wo, T(0));
          continue;
        }
        const T* src = x + (c * g.H + ih) * g.W - g.pl + j * g.dw;
        std::fill(dst, dst + lo, T(0));
        if (g.sw == 1) {
          std::memcpy(dst + lo, src + lo, size_t(hi - lo) * sizeof(T));
        } else {
          for (int64_t ow = lo; ow < hi; ++ow) dst[ow] = src[ow * g.sw];
        }
        std::fill(dst + hi, dst + g.Wo, T(0));
      }
    }
  });
}

// x[c, ih, iw] += col[...] for output rows [oh0, oh1): the adjoint of im2col. Channels are
// split over the pool (each writes only its own channel, so there are no races).
template <class T>
void col2im(const ConvGeom& g, const T* col, T* x, int64_t oh0, int64_t oh1) {
  const int64_t len = (oh1 - oh0) * g.Wo;
  parallel_for(g.Cg(), 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          int64_t lo, hi;
          valid_range(g.Wo, g.W, g.sw, g.pl, j * g.dw, lo, hi);
          const T* src = col + ((c * g.kh + i) * g.kw + j) * len;
          for (int64_t oh = oh0; oh < oh1; ++oh, src += g.Wo) {
            const int64_t ih = oh * g.sh - g.pt + i * g.dh;
            if (ih < 0 || ih >= g.H) continue;
            T* dst = x + (c * g.H + ih) * g.W - g.pl + j * g.dw;
            if (g.sw == 1) {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow] += src[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) dst[ow * g.sw] += src[ow];
            }
          }
        }
      }
    }
  });
}

// Output rows per im2col tile: the column buffer stays near 1M elements (cache-friendly,
// and bounded: a whole 1024x1024 image would need K * 1M elements of scratch).
int64_t tile_rows(const ConvGeom& g) {
  const int64_t per_row = std::max<int64_t>(1, g.K() * g.Wo);
  return std::max<int64_t>(1, std::min<int64_t>(g.Ho, (int64_t(1) << 20) / per_row));
}

template <class T>
T* col_scratch(const ConvGeom& g) {
  if (g.direct()) return nullptr;
  return static_cast<T*>(thread_scratch(size_t(g.K() * tile_rows(g) * g.Wo) * sizeof(T)));
}

// Fills each of `channels` rows of length `len` with bias[c] (or 0 without a bias).
template <class T>
void fill_rows(T* out, int64_t channels, int64_t len, const TensorView* bias) {
  for (int64_t c = 0; c < channels; ++c) {
    T v = T(0);
    if (bias) v = bias->ptr<T>()[c * (bias->ndim ? bias->strides[0] : 0)];
    std::fill(out + c * len, out + (c + 1) * len, v);
  }
}

const TensorView* optional_bias(const KernelArgs& k, int idx, int64_t channels, const char* op) {
  if (!k.has_input(idx)) return nullptr;
  const TensorView& b = k.input(idx);
  FW_CHECK(b.ndim == 1 && b.shape[0] == channels, op, ": bias must have shape [", channels, "]");
  return &b;
}

// ---- f32 fast path: a register-tiled direct convolution (AVX-512) ----------------------
//
// out[co, p] = act(bias[co] + sum_k w[co, k] * B[boff[k] + p]) with k = (c, i, j) and p an
// output pixel. For stride 1 B is the input, zero-padded to (C, Hp, Wp), and the pixels
// run over an "extended" Ho x Wp grid: the input element of tap (c, i, j) for pixel
// p = oh*Wp + ow is then B[c*Hp*Wp + i*dh*Wp + j*dw + p], one offset per tap, so no im2col
// copy is needed (the Wp - Wo extra columns per row are computed and dropped). Other
// strides split the padded input into phase planes so that the same holds (PhaseSplit
// below); wide rows take tiles within one output row instead (conv_tiles_rows, nothing
// dropped). Tiles of 8 output channels x 48 pixels accumulate in 24 zmm registers over the
// whole K loop (8 x 48 measured 2-17% faster than 6 x 64 here, and 64-channel layers need
// no partial tiles); bias and relu are applied as the tile is stored. The weights are read in
// place (broadcast), never repacked.
#if FW_CONV_AVX512
constexpr int kMR = 8;   // output channels per tile
constexpr int kNV = 3;   // 16-float vectors of pixels per tile

// The store of a register tile acc[m][v] to out + m*ms + v*vs, with the residual R (laid
// out like out) added and a relu after (a NaN stays NaN). TAIL: the last vector of each m
// keeps only the lanes of `last` (loads and stores masked). The pixel-vector tiles below
// (m: output channel, v: 16 pixels) and the channel-blocked tiles (m: pixel, v: 16-channel
// panel) both store through it.
template <int MR, int NV, bool TAIL>
__attribute__((target("avx512f"), always_inline)) inline void tile_store(const __m512 (&acc)[MR][NV], const float* R,
                                                                       bool relu, float* __restrict out, int64_t ms,
                                                                       int64_t vs, __mmask16 last) {
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
  for (int m = 0; m < MR; ++m) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const bool tail = TAIL && v == NV - 1;
      const int64_t o = m * ms + v * vs;
      __m512 r = acc[m][v];
      if (R) r = _mm512_add_ps(r, tail ? _mm512_maskz_loadu_ps(last, R + o) : _mm512_loadu_ps(R + o));
      if (relu) r = _mm512_max_ps(zero, r);
      if (tail)
        _mm512_mask_storeu_ps(out + o, last, r);
      else
        _mm512_storeu_ps(out + o, r);
    }
  }
}

template <int MR, int NV>
__attribute__((target("avx512f"))) void conv_tile(int64_t K, const float* __restrict A, int64_t lda,
                                                  const float* __restrict B, const int64_t* __restrict boff,
                                                  const float* bias, const float* R, bool relu, float* __restrict C,
                                                  int64_t ldc, __mmask16 last) {
  __m512 acc[MR][NV];
#pragma GCC unroll 12
  for (int m = 0; m < MR; ++m) {
    const __m512 b0 = bias ? _mm512_set1_ps(bias[m]) : _mm512_setzero_ps();
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[m][v] = b0;
  }
  for (int64_t k = 0; k < K; ++k) {
    const float* b = B + boff[k];
    __m512 bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v)
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, b + 16 * v) : _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 8
    for (int m = 0; m < MR; ++m) {
      const __m512 a = _mm512_set1_ps(A[m * lda + k]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[m][v] = _mm512_fmadd_ps(a, bv[v], acc[m][v]);
    }
  }
  tile_store<MR, NV, true>(acc, R, relu, C, ldc, 16, last);
}

using TileFn = void (*)(int64_t, const float*, int64_t, const float*, const int64_t*, const float*, const float*,
                        bool, float*, int64_t, __mmask16);

template <int MR, int... NV>
constexpr TileFn tile_for(int nv, std::integer_sequence<int, NV...>) {
  TileFn fn = nullptr;
  ((fn = nv == NV + 1 ? &conv_tile<MR, NV + 1> : fn), ...);
  return fn;
}

template <int... MR>
TileFn pick_tile_in(int mr, int nv, std::integer_sequence<int, MR...>) {
  TileFn fn = nullptr;
  ((fn = mr == MR + 1 ? tile_for<MR + 1>(nv, std::make_integer_sequence<int, kNV>{}) : fn), ...);
  return fn;
}

// The tile for mr (1..kMR) channels x nv (1..kNV) vectors.
TileFn pick_tile(int mr, int nv) { return pick_tile_in(mr, nv, std::make_integer_sequence<int, kMR>{}); }

// C[M, N] (row stride ldc) = act(bias + A[M, K] @ B + R) over all 8 x 48 tiles (R: null or
// laid out like C), split over the pool unless called inside a parallel region.
void conv_tiles(int64_t M, int64_t N, int64_t K, const float* A, const float* B, const int64_t* boff,
                const float* bias, const float* R, bool relu, float* C, int64_t ldc) {
  const int64_t mb = (M + kMR - 1) / kMR, nb = (N + 16 * kNV - 1) / (16 * kNV);
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t m0 = (t % mb) * kMR, n0 = (t / mb) * 16 * kNV;
      const int64_t mr = std::min<int64_t>(kMR, M - m0), nr = std::min<int64_t>(16 * kNV, N - n0);
      const int nv = int((nr + 15) / 16);
      const int tail = int(nr - 16 * (nv - 1));
      const __mmask16 last = __mmask16(tail == 16 ? 0xFFFF : (1u << tail) - 1);
      pick_tile(int(mr), nv)(K, A + m0 * K, K, B + n0, boff, bias ? bias + m0 : nullptr,
                             R ? R + m0 * ldc + n0 : nullptr, relu, C + m0 * ldc + n0, ldc, last);
    }
  };
  // Enough work per task to pay for waking a worker: ~64k multiply-adds.
  const int64_t per_tile = kMR * 16 * kNV * K;
  parallel_for(mb * nb, std::max<int64_t>(1, 65536 / std::max<int64_t>(per_tile, 1)), run);
}

// The same over output rows [0, rows) read from B at pixel oh*Wq + ow and stored at
// C[co*ldc + oh*Wo + ow] (R alike): tiles of 6 channels x up to 64 pixels of one row, so no
// extended-grid columns are computed and nothing is compacted afterwards. For wide rows
// (conv_fast_phased picks it) where whole vectors per row idle no more lanes than the
// extended grid's dropped columns would.
void conv_tiles_rows(int64_t M, int64_t rows, int64_t Wo, int64_t Wq, int64_t K, const float* A, const float* B,
                     const int64_t* boff, const float* bias, const float* R, bool relu, float* C, int64_t ldc) {
  const int64_t mb = (M + kMR - 1) / kMR, cpr = (Wo + 16 * kNV - 1) / (16 * kNV);  // chunks per row
  auto run = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t m0 = (t % mb) * kMR, rc = t / mb, oh = rc / cpr, n0 = (rc % cpr) * 16 * kNV;
      const int64_t mr = std::min<int64_t>(kMR, M - m0), nr = std::min<int64_t>(16 * kNV, Wo - n0);
      const int nv = int((nr + 15) / 16);
      const int tail = int(nr - 16 * (nv - 1));
      const __mmask16 last = __mmask16(tail == 16 ? 0xFFFF : (1u << tail) - 1);
      const int64_t o = m0 * ldc + oh * Wo + n0;
      pick_tile(int(mr), nv)(K, A + m0 * K, K, B + oh * Wq + n0, boff, bias ? bias + m0 : nullptr, R ? R + o : nullptr,
                             relu, C + o, ldc, last);
    }
  };
  const int64_t per_tile = kMR * 16 * kNV * K;
  parallel_for(mb * rows * cpr, std::max<int64_t>(1, 65536 / std::max<int64_t>(per_tile, 1)), run);
}

// ---- f32 with a weight pre-packed at load: output channels along the vectors ----------
//
// The graph runtime packs a groups == 1 conv weight into panels of 16 output channels, k-major
// (blas.h, pack_conv_weight: the weight seen as Cout x K, taps in (i, j, c) order). Then a
// tile is MR (<= 12) output pixels of one output row x 32 output channels: 24 zmm
// accumulators over the K loop, each x element broadcast (x[pixel + koff[k]] in the band's
// phase planes, as for the pixel-vector tiles) and each panel row loaded once. Output
// channels are multiples of 16 in most networks, so no vector lanes idle, and no
// extended-grid columns are computed: on 7x7 and 14x14 maps the pixel-vector tiles above keep
// 78% and 88% of their lanes busy. The tile is stored transposed (NCHW) with bias, residual
// and relu applied.
constexpr int kPixTile = 12;

// The packed weight's rows run in tap order (k = (i*kw + j)*C + c, pack_conv_weight), so the
// taps of output row oh that read real input rows, not the top or bottom padding, are one
// run [k0, k1) of it: tiles skip the rest (onnxruntime's MLAS does too), which on a 14x14
// map saves a 3x3 conv 4.8% of its multiply-adds and on 7x7 9.5%.
// The taps [lo, hi) of a kernel dim (taps at first + t*dil for t < taps) that land in [0, n).
void real_taps(int64_t first, int64_t taps, int64_t dil, int64_t n, int64_t& lo, int64_t& hi) {
  lo = 0, hi = taps;
  while (lo < hi && first + lo * dil < 0) ++lo;
  while (hi > lo && first + (hi - 1) * dil >= n) --hi;
}

// Returns kr with row oh0 + r's run at kr[2r], kr[2r + 1], for r < rows.
std::vector<int64_t> tap_rows(const ConvGeom& g, int64_t oh0, int64_t rows) {
  std::vector<int64_t> kr(static_cast<size_t>(2 * rows));
  for (int64_t r = 0; r < rows; ++r) {
    int64_t lo, hi;  // kernel rows; the input row of kernel row 0 is (oh0 + r) * sh - pt
    real_taps((oh0 + r) * g.sh - g.pt, g.kh, g.dh, g.H, lo, hi);
    kr[size_t(2 * r)] = lo * g.kw * g.C;
    kr[size_t(2 * r + 1)] = hi * g.kw * g.C;
  }
  return kr;
}

// ROWS: store the tile as MR rows of output channels (out + m*ldo, for a transposing pass
// after; R and relu are left to it) instead of transposed into NCHW.
template <int MR, int NP, bool ROWS>
__attribute__((target("avx512f"))) void conv_packed_tile(int64_t K, int64_t k0, int64_t k1, const float* __restrict x,
                                                         const int64_t* __restrict koff, const float* __restrict P,
                                                         const float* bias, const float* R, bool relu,
                                                         float* __restrict out, int64_t ldo, int64_t cols) {
  __m512 acc[MR][NP];
  packed_tile_init<MR, NP>(bias, acc);
  packed_tile_fma<MR, NP, true>(K, k0, k1, x, 1, koff, P, acc);
  if constexpr (ROWS) {
    packed_tile_store_rows<MR, NP>(acc, out, ldo, cols, false);
    return;
  }
  alignas(64) float buf[MR][16 * NP];
#pragma GCC unroll 12
  for (int m = 0; m < MR; ++m)
#pragma GCC unroll 2
    for (int v = 0; v < NP; ++v) _mm512_store_ps(&buf[m][16 * v], acc[m][v]);
  for (int64_t co = 0; co < cols; ++co) {
    float* o = out + co * ldo;
    const float* r = R ? R + co * ldo : nullptr;
    for (int m = 0; m < MR; ++m) {
      float v = buf[m][co] + (r ? r[m] : 0.f);
      o[m] = relu && v < 0.f ? 0.f : v;  // a NaN stays NaN
    }
  }
}

using PackedTileFn = void (*)(int64_t, int64_t, int64_t, const float*, const int64_t*, const float*, const float*,
                              const float*, bool, float*, int64_t, int64_t);

template <int NP, bool ROWS, int... MR>
constexpr PackedTileFn pick_conv_packed_tile(int mr, std::integer_sequence<int, MR...>) {
  PackedTileFn fn = nullptr;
  ((fn = mr == MR + 1 ? &conv_packed_tile<MR + 1, NP, ROWS> : fn), ...);
  return fn;
}

// out[c, p] (channel stride ldo) = act(tmp[p, c] + R[c, p]) for p < P, c < C: the rows the
// ROWS tiles stored (row stride ldt), transposed 16 x 16 at a time in registers, so every
// store and residual read covers whole vectors of one channel row.
__attribute__((target("avx512f"))) void store_rows_transposed(const float* __restrict tmp, int64_t ldt, int64_t P,
                                                              int64_t C, const float* R, bool relu,
                                                              float* __restrict out, int64_t ldo) {
  const __m512 zero = _mm512_setzero_ps();
  int64_t p0 = 0;
  for (; p0 + 16 <= P; p0 += 16) {
    int64_t c0 = 0;
    for (; c0 + 16 <= C; c0 += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(tmp + (p0 + i) * ldt + c0);
      transpose16x16(r);
      for (int j = 0; j < 16; ++j) {  // r[j]: channel c0 + j, pixels p0..p0+15
        __m512 v = r[j];
        if (R) v = _mm512_add_ps(v, _mm512_loadu_ps(R + (c0 + j) * ldo + p0));
        if (relu) v = _mm512_max_ps(zero, v);  // a NaN stays NaN
        _mm512_storeu_ps(out + (c0 + j) * ldo + p0, v);
      }
    }
    for (; c0 < C; ++c0)
      for (int64_t p = p0; p < p0 + 16; ++p) {
        const float v = tmp[p * ldt + c0] + (R ? R[c0 * ldo + p] : 0.f);
        out[c0 * ldo + p] = relu && v < 0.f ? 0.f : v;
      }
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = p0; p < P; ++p) {
      const float v = tmp[p * ldt + c] + (R ? R[c * ldo + p] : 0.f);
      out[c * ldo + p] = relu && v < 0.f ? 0.f : v;
    }
}

// Pixels per column tile (below).
constexpr int kColTile = 7;

// The packed tiles of `rows` output rows (Wo pixels each) x Cout channels, split over the
// pool unless called inside a parallel region: tile(c0, oh, ow0, mr) covers channels
// [c0, c0 + 32), row oh and pixels [ow0, ow0 + mr) of columns [cl, cr), each row's cut into
// near-equal segments of at most kPixTile pixels (14 -> 7 + 7); col(c0, oh, ow, mr) covers
// rows [oh, oh + mr) of a column ow outside [cl, cr) (the columns whose taps read left or
// right padding), in near-equal runs of at most kColTile rows. Tasks run pair-major: a
// thread's weights stay in its cache.
template <class Tile, class Col>
void for_each_packed_tile(const ConvGeom& g, int64_t rows, int64_t cl, int64_t cr, const Tile& tile, const Col& col) {
  const int64_t Wo = g.Wo, pairs = (g.Cout + 31) / 32, Wi = cr - cl;
  const int64_t segs = (Wi + kPixTile - 1) / kPixTile, runs = (rows + kColTile - 1) / kColTile;
  const int64_t row_tasks = rows * segs, per_pair = row_tasks + (Wo - Wi) * runs;
  const int64_t per_task = kPixTile * 32 * g.K();
  std::vector<int64_t> cut(static_cast<size_t>(segs + 1));  // segment sg: pixels cl + [cut[sg], cut[sg + 1])
  for (int64_t sg = 1; sg <= segs; ++sg) cut[size_t(sg)] = Wi * sg / segs;  // (no segments: no interior)
  // NOTE: the row tiles' indices advance by counting, not by dividing t: at K 9 (a first
  // conv) a tile is ~200 cycles and the divisions cost a sixth of that.
  // A thread's share is at least ~512K multiply-adds (~5 us): waking the pool costs ~2 us
  // here, and the small CNN's first conv at batch 1 (290K) took 8.8 us split, 6.9 us not.
  parallel_for(pairs * per_pair, std::max<int64_t>(1, (int64_t(1) << 19) / std::max<int64_t>(per_task, 1)),
               [&](int64_t t0, int64_t t1) {
                 int64_t pair = t0 / per_pair, i = t0 % per_pair;
                 int64_t oh = i < row_tasks ? i / segs : 0, sg = i < row_tasks ? i % segs : 0;
                 for (int64_t t = t0; t < t1;) {
                   if (i < row_tasks) {  // a run of row tiles
                     const int64_t n = std::min(t1 - t, row_tasks - i);
                     for (int64_t e = 0; e < n; ++e) {
                       tile(pair * 32, oh, cl + cut[size_t(sg)], int(cut[size_t(sg) + 1] - cut[size_t(sg)]));
                       if (++sg == segs) sg = 0, ++oh;
                     }
                     t += n, i += n;
                   } else {  // column c of the border columns (left ones first), run ru
                     const int64_t c = (i - row_tasks) / runs, ru = (i - row_tasks) % runs;
                     const int64_t r0 = rows * ru / runs, r1 = rows * (ru + 1) / runs;
                     col(pair * 32, r0, c < cl ? c : c - cl + cr, int(r1 - r0));
                     ++t, ++i;
                   }
                   if (i == per_pair) i = 0, oh = 0, sg = 0, ++pair;
                 }
               });
}

// Output rows [oh0, oh0 + rows) of one sample, rows [0, rows) of a band: out (channel stride
// HoWo, row stride Wo; the band's first row) = act(bias + w (*) band + R), the band B read
// at pixel oh*Wp + ow plus koff[k] for tap k (Wp: the phase-row width; the taps of
// tap_rows only), tiles as for_each_packed_tile. bias: padded to whole panels, or null.
//
// With `tmp` (rows * Wo * Cpad floats, Cpad = Cout rounded up to 16), the tiles store rows
// of channels there and one transposing pass writes the output: at batch > 1 (each sample
// on one thread) the direct transposed stores touch 32 channel rows per tile in partial
// cache lines, which measured 1.6x slower than the pixel-vector tiles once outputs outgrow
// the caches; through tmp every store is whole vectors.
void conv_rows_packed(const ConvGeom& g, int64_t oh0, int64_t rows, int64_t Wp, const float* B, const int64_t* koff,
                      const float* packed, const float* bias, const float* R, bool relu, float* out, float* tmp) {
  const int64_t K = g.K(), HoWo = g.HoWo(), Wo = g.Wo, Cpad = (g.Cout + 15) / 16 * 16;
  const std::vector<int64_t> kr = tap_rows(g, oh0, rows);
  for_each_packed_tile(g, rows, 0, g.Wo, [&](int64_t c0, int64_t oh, int64_t ow0, int mr) {
    const int64_t cols = std::min<int64_t>(32, g.Cout - c0);
    const auto mrs = std::make_integer_sequence<int, kPixTile>{};
    const float* xb = B + oh * Wp + ow0;
    const float* bb = bias ? bias + c0 : nullptr;
    const int64_t k0 = kr[size_t(2 * oh)], k1 = kr[size_t(2 * oh + 1)];
    if (tmp) {
      const PackedTileFn fn = cols > 16 ? pick_conv_packed_tile<2, true>(mr, mrs) : pick_conv_packed_tile<1, true>(mr, mrs);
      fn(K, k0, k1, xb, koff, packed + c0 * K, bb, nullptr, false, tmp + (oh * Wo + ow0) * Cpad + c0, Cpad, cols);
      return;
    }
    const PackedTileFn fn = cols > 16 ? pick_conv_packed_tile<2, false>(mr, mrs) : pick_conv_packed_tile<1, false>(mr, mrs);
    const int64_t o = c0 * HoWo + oh * Wo + ow0;
    fn(K, k0, k1, xb, koff, packed + c0 * K, bb, R ? R + o : nullptr, relu, out + o, HoWo, cols);
  }, [](int64_t, int64_t, int64_t, int) {});
  if (tmp) store_rows_transposed(tmp, Cpad, rows * Wo, g.Cout, R, relu, out, HoWo);
}

// ---- the channel-blocked layout (nchw16c) --------------------------------------------
//
// The graph runtime may keep activations between convolutions and pools blocked: element
// (n, c, h, w) of an (N, C, H, W) tensor, C % 16 == 0, at ((n*C/16 + c/16)*H*W + h*W + w)*16 +
// c%16 (runtime/layout.h). A conv writing that layout stores each 16-channel panel of a
// packed tile's pixel as one whole vector: no transposing, no extended-grid columns to drop,
// no lanes idle on small maps (onnxruntime's NCHWc). Its input may be blocked too (pixel
// stride 16 in the band; XS) or plain NCHW (a network's first conv).
template <int MR, int NP, int XS>
__attribute__((target("avx512f"))) void conv_blocked_tile(int64_t K, int64_t k0, int64_t k1, const float* __restrict x,
                                                          const int64_t* __restrict koff, const float* __restrict P,
                                                          const float* bias, const float* R, bool relu,
                                                          float* __restrict out, int64_t ldp) {
  __m512 acc[MR][NP];
  packed_tile_init<MR, NP>(bias, acc);
  packed_tile_fma<MR, NP, true, XS>(K, k0, k1, x, 1, koff, P, acc);
  tile_store<MR, NP, false>(acc, R, relu, out, 16, ldp, 0);
}

using BlockedTileFn = void (*)(int64_t, int64_t, int64_t, const float*, const int64_t*, const float*, const float*,
                               const float*, bool, float*, int64_t);

template <int NP, int XS, int... MR>
constexpr BlockedTileFn pick_blocked_tile(int mr, std::integer_sequence<int, MR...>) {
  BlockedTileFn fn = nullptr;
  ((fn = mr == MR + 1 ? &conv_blocked_tile<MR + 1, NP, XS> : fn), ...);
  return fn;
}

// A column tile: MR pixels of one output column, consecutive rows (x pixel stride xps floats,
// out pixel stride ops), over the taps k = first + s*step + t for s < runs, t < len: the
// kernel rows [ilo, ihi) every row of the run reads and, in each, the kernel columns
// [jlo, jhi) that read real input columns of this output column.
template <int MR, int NP>
__attribute__((target("avx512f"))) void conv_blocked_col_tile(int64_t K, int64_t first, int64_t len, int64_t step,
                                                              int64_t runs, const float* __restrict x, int64_t xps,
                                                              const int64_t* __restrict koff,
                                                              const float* __restrict P, const float* bias,
                                                              const float* R, bool relu, float* __restrict out,
                                                              int64_t ops, int64_t ldp) {
  __m512 acc[MR][NP];
  packed_tile_init<MR, NP>(bias, acc);
  for (int64_t s = 0, k0 = first; s < runs; ++s, k0 += step)
    packed_tile_fma<MR, NP, true, 0>(K, k0, k0 + len, x, xps, koff, P, acc);
  tile_store<MR, NP, false>(acc, R, relu, out, ops, ldp, 0);
}

using BlockedColTileFn = void (*)(int64_t, int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const int64_t*,
                                  const float*, const float*, const float*, bool, float*, int64_t, int64_t);

template <int NP, int... MR>
constexpr BlockedColTileFn pick_blocked_col_tile(int mr, std::integer_sequence<int, MR...>) {
  BlockedColTileFn fn = nullptr;
  ((fn = mr == MR + 1 ? &conv_blocked_col_tile<MR + 1, NP> : fn), ...);
  return fn;
}

// The kernel columns [jlo, jhi) that output column ow reads real input columns with.
void tap_cols(const ConvGeom& g, int64_t ow, int64_t& jlo, int64_t& jhi) {
  real_taps(ow * g.sw - g.pl, g.kw, g.dw, g.W, jlo, jhi);
}

// Output rows [oh0, oh0 + rows) of one sample into the blocked out (and R), read from the band
// B (pixel oh*Wp + ow, times xs = 1 or 16) plus koff[k] for tap k; tiles as
// for_each_packed_tile. With a blocked input (xs 16, C >= 16) the columns whose taps read left
// or right padding take column tiles that skip those taps as the row tiles skip the top and
// bottom rows' (tap_rows): on a 14x14 map another 4.8% of a 3x3 conv's multiply-adds. (A
// first conv, K 9, is bound by its stores: its rows keep whole-row tiles.)
void conv_rows_blocked(const ConvGeom& g, int64_t oh0, int64_t rows, int64_t Wp, int xs, const float* B,
                       const int64_t* koff, const float* packed, const float* bias, const float* R, bool relu,
                       float* out) {
  const int64_t K = g.K(), HoWo = g.HoWo(), Wo = g.Wo, CW = g.kw * g.C;  // CW: taps per kernel row
  const std::vector<int64_t> kr = tap_rows(g, oh0, rows);
  BlockedTileFn fns[2][kPixTile + 1];  // [two panels][pixels]
  BlockedColTileFn cfns[2][kColTile + 1];
  const auto mrs = std::make_integer_sequence<int, kPixTile>{};
  const auto crs = std::make_integer_sequence<int, kColTile>{};
  for (int mr = 1; mr <= kPixTile; ++mr) {
    fns[1][mr] = xs == 16 ? pick_blocked_tile<2, 16>(mr, mrs) : pick_blocked_tile<2, 1>(mr, mrs);
    fns[0][mr] = xs == 16 ? pick_blocked_tile<1, 16>(mr, mrs) : pick_blocked_tile<1, 1>(mr, mrs);
  }
  for (int mr = 1; mr <= kColTile; ++mr) {
    cfns[1][mr] = pick_blocked_col_tile<2>(mr, crs);
    cfns[0][mr] = pick_blocked_col_tile<1>(mr, crs);
  }
  int64_t cl = 0, cr = Wo, jlo, jhi;  // the columns [cl, cr) that read no padding
  if (xs == 16) {
    while (cl < Wo && (tap_cols(g, cl, jlo, jhi), jlo > 0 || jhi < g.kw)) ++cl;
    while (cr > cl && (tap_cols(g, cr - 1, jlo, jhi), jlo > 0 || jhi < g.kw)) --cr;
  }
  for_each_packed_tile(g, rows, cl, cr, [&](int64_t c0, int64_t oh, int64_t ow0, int mr) {
    const BlockedTileFn fn = fns[c0 + 16 < g.Cout][mr];
    const int64_t o = c0 * HoWo + ((oh0 + oh) * Wo + ow0) * 16;  // panel c0/16, pixel, lane
    fn(K, kr[size_t(2 * oh)], kr[size_t(2 * oh + 1)], B + (oh * Wp + ow0) * xs, koff, packed + c0 * K,
       bias ? bias + c0 : nullptr, R ? R + o : nullptr, relu, out + o, HoWo * 16);
  }, [&](int64_t c0, int64_t oh, int64_t ow, int mr) {
    int64_t cj0, cj1;
    tap_cols(g, ow, cj0, cj1);
    // kernel rows: those of the run's last row (the most left by the top padding) to those of its first
    const int64_t ilo = kr[size_t(2 * (oh + mr - 1))] / CW, ihi = kr[size_t(2 * oh + 1)] / CW;
    const int64_t runs = cj1 > cj0 ? std::max<int64_t>(ihi - ilo, 0) : 0;
    const int64_t o = c0 * HoWo + ((oh0 + oh) * Wo + ow) * 16;
    cfns[c0 + 16 < g.Cout][mr](K, ilo * CW + cj0 * g.C, (cj1 - cj0) * g.C, CW, runs, B + (oh * Wp + ow) * xs, Wp * xs,
                               koff, packed + c0 * K, bias ? bias + c0 : nullptr, R ? R + o : nullptr, relu, out + o,
                               Wo * 16, HoWo * 16);
  });
}
#endif

#if FW_CONV_AVX512
// Whether the f32 fast path runs this convolution (groups > 1 keep the im2col + BLAS path).
bool fast_conv_ok(const ConvGeom& g) { return cpu_has_avx512f() && g.groups == 1 && g.K() > 0 && g.HoWo() > 0; }

// The weight the runtime pre-packed (input `index`, prepack.h), when the packed tiles run
// this convolution: K large enough that the multiply-adds, not the tile's set-up and
// transposed stores, bound it (kPackedConvMinK; the small CNN's second layer, K 288 on
// 14x14 at batch 1: 47 vs 49 us at 2 threads, 72 vs 81 us at 1), and a map small enough that the
// pixel-vector tiles would idle lanes: their extended grid of Ho x Ws pixels (Ws: the
// phase-row stride, PhaseSplit) in whole vectors keeps 98% busy on 56x56 and 96% on
// 28x28 (as fast or faster there, measured) but 88% on 14x14 and 77% on 7x7 (ResNet-18's
// 3x3 convs there, batch 1, 2 threads: packed 1.16x and 1.33x faster; its stride-2 3x3
// convs to 14x14 and 7x7, 1 thread: 1.07-1.15x and 1.19-1.28x). At batch > 1 the tiles
// store through a transposing pass (conv_rows_packed). With `blocked` (the nchw16c layout,
// whose tiles are the packed ones) the weight is used whatever the shape.
const float* packed_conv_weight(const KernelArgs& k, int index, const ConvGeom& g, int64_t Ws, const char* op,
                                bool blocked) {
  if (index < 0 || !k.has_input(index)) return nullptr;
  const TensorView& p = k.in[index];
  FW_CHECK(p.dtype == DType::f32 && p.is_contiguous() && p.numel() == packed_weight_numel(g.Cout, g.K()), op,
           ": packed weight: expected ", packed_weight_numel(g.Cout, g.K()), " contiguous f32 elements, got ",
           p.numel());
  if (blocked) return p.ptr<float>();
  if (g.K() < kPackedConvMinK) return nullptr;
  const int64_t ext = (g.Ho * Ws + 15) / 16 * 16;
  if (g.HoWo() * 100 >= ext * 90) return nullptr;  // >= 90% of the lanes busy: pixel-vector tiles
  return p.ptr<float>();
}

// out[co, oh, ow] = act(src[co, oh, ow] + r[co, oh, ow]) for ow < Wo: one band of the
// extended grid (src rows of Wp, channel stride rows * Wp) into the output (channel stride
// plane). One call per band: a call per row costs more than its short loop.
FW_TARGET_CLONES void compact_band(float* __restrict out, const float* __restrict src, const float* __restrict r,
                                   bool relu, int64_t channels, int64_t rows, int64_t Wo, int64_t Wp, int64_t plane) {
  for (int64_t co = 0; co < channels; ++co) {
    for (int64_t oh = 0; oh < rows; ++oh) {
      float* d = out + co * plane + oh * Wo;
      const float* s = src + (co * rows + oh) * Wp;
      const float* rr = r ? r + co * plane + oh * Wo : nullptr;
      // NOTE: one pass per case: re-reading d right after storing it stalls on the
      // store-to-load forwarding of unaligned rows.
      if (rr && relu) {
        for (int64_t i = 0; i < Wo; ++i) {
          const float v = s[i] + rr[i];
          d[i] = v > 0.f || v != v ? v : 0.f;  // a NaN stays NaN
        }
      } else if (relu) {
        for (int64_t i = 0; i < Wo; ++i) d[i] = s[i] > 0.f || s[i] != s[i] ? s[i] : 0.f;
      } else if (rr) {
        for (int64_t i = 0; i < Wo; ++i) d[i] = s[i] + rr[i];
      } else {
        for (int64_t i = 0; i < Wo; ++i) d[i] = s[i];
      }
    }
  }
}

// The phase split of the zero-padded input xpad (C, Hp, Wp) for strides sh x sw: phase
// (a, b)[c, q, u] = xpad[c, q*sh + a, u*sw + b]. Tap (i, j) reads phase ((i*dh) % sh,
// (j*dw) % sw) at row oh + (i*dh) / sh and column ow + (j*dw) / sw for output pixel (oh, ow),
// so over an extended Ho x Wq grid (pixel oh*Wq + ow, Wq = Wo + the last tap's column
// offset) every tap is one offset again. Only the phases some tap uses are stored: the row
// phases times the column phases (a 1x1 stride-2 conv uses phase (0, 0) alone). Stride 1
// is the one-phase case: Wq is the padded width Wp.
//
// Rows share their padding: phase rows are stored Ws <= Wq apart, where the columns a row
// would read past Ws are right-padding zeros that the next row's left-padding zeros supply
// (stride 1, padding 1: rows of W + 1, not W + 2; a 14x14 map computes 15 columns per
// output row instead of 16). Ws = max(Wo, every used phase's last data column + 1, Wq -
// the fewest left-padding columns of a used phase).
struct PhaseSplit {
  int64_t Wq = 0;                        // columns a phase row spans (data and padding)
  int64_t Ws = 0;                        // stored phase-row stride = the extended grid's row
  int64_t halo = 0;                      // phase rows a band reads beyond its output rows
  int64_t tail = 0;                      // the last tap's column offset (Wq - Wo)
  std::vector<int64_t> rows, cols;       // the used row phases a and column phases b
  std::vector<int64_t> tap_row, tap_col;  // tap i / j -> index into rows / cols
  int64_t count() const { return int64_t(rows.size() * cols.size()); }
};

// The used phases of one dimension: taps t = 0..k-1 at offset t*d, stride s.
void phases_of(int64_t k, int64_t d, int64_t s, std::vector<int64_t>& used, std::vector<int64_t>& tap) {
  tap.assign(size_t(k), 0);
  for (int64_t t = 0; t < k; ++t) {
    const int64_t a = t * d % s;
    auto it = std::find(used.begin(), used.end(), a);
    if (it == used.end()) it = used.insert(used.end(), a);
    tap[size_t(t)] = int64_t(it - used.begin());
  }
}

PhaseSplit phase_split(const ConvGeom& g) {
  PhaseSplit ps;
  ps.halo = (g.kh - 1) * g.dh / g.sh;
  ps.tail = (g.kw - 1) * g.dw / g.sw;
  ps.Wq = g.Wo + ps.tail;
  phases_of(g.kh, g.dh, g.sh, ps.rows, ps.tap_row);
  phases_of(g.kw, g.dw, g.sw, ps.cols, ps.tap_col);
  ps.Ws = g.Wo;
  for (int64_t b : ps.cols) {
    int64_t lo, hi;
    valid_range(ps.Wq, g.W, g.sw, g.pl, b, lo, hi);
    ps.Ws = std::max(ps.Ws, std::max(hi, ps.Wq - lo));
  }
  ps.Ws = std::min(ps.Ws, ps.Wq);
  return ps;
}

// Whether the phase planes of one output row (the least a band holds) stay within a few
// times the im2col columns of that row: true for any real network, false for geometries
// (huge dilation or padding on a tiny map) whose planes would be mostly unused padding.
bool phase_split_fits(const ConvGeom& g, const PhaseSplit& ps) {
  const double planes = double(g.C) * double(ps.count()) * double(ps.halo + 1) * double(ps.Ws) + double(ps.tail);
  return planes <= 4.0 * double(g.K()) * double(g.Wo) + double(1 << 16);
}

// Output rows [oh0, oh1) per band: each band reads the phase planes of the input rows it
// needs (C x phases x (rows + halo) x Wq, zero-padded, plus `tail` zeros so the last row's
// dropped columns read valid memory; the input itself for a stride-1 1x1 unpadded conv)
// with one offset per tap. Bands bound the scratch (~1M floats; L2-sized when this thread
// runs the sample alone) for any image size. Rows of the extended Ho x Wq grid are
// compacted into the output when Wq > Wo (with the residual and relu applied there).
//
// layout (blocked convs only, with `packed`): bit 1 = x_n is nchw16c (the band then holds
// 16-float pixels: plane k of channel block cb at cb*P + phase, pixel stride 16), bit 2 =
// out_n and r_n are nchw16c (conv_rows_blocked stores them).
void conv_fast_phased(const ConvGeom& g, const PhaseSplit& ps, const float* x_n, const float* w, const float* bias,
                      const float* r_n, bool relu, float* out_n, int64_t* boff, const float* packed, int layout) {
  const int64_t K = g.K(), HoWo = g.HoWo(), Wq = ps.Ws, halo = ps.halo, P = ps.count();  // Wq: row stride
  const int64_t nb = int64_t(ps.cols.size());
  const bool in_blk = layout & 1, out_blk = layout & 2;
  const int64_t xs = in_blk ? 16 : 1;  // floats per pixel of x_n and the band
  const bool copy = g.sh != 1 || g.sw != 1 || g.pt + g.pb + g.pl + g.pr > 0 || ps.tail > 0;
  // Rows of >= 48 pixels whose whole vectors pad no more than the extended grid's Wq - Wo
  // columns (a 7x7 stride-2 stem: 112 of 115) run row tiles: nothing to compact. So do
  // convs with a small K (a 1-channel 3x3 input layer: K 9), which the output's stores bound
  // and a compaction pass would copy the whole output once more.
  const bool row_tiles = !packed && ((g.Wo >= 48 && (g.Wo + 15) / 16 * 16 <= Wq) || (K <= 32 && g.Wo >= 16));
  const bool compact = !packed && !row_tiles && Wq != g.Wo;
  const bool serial = in_parallel_region() || get_num_threads() == 1;
  const int64_t budget = serial ? (int64_t(1) << 18) : (int64_t(1) << 20);
  const int64_t planes = copy ? g.C * P : 0;  // phase planes per band
  // Packed tiles at batch > 1 store rows of channels for a transposing pass (conv_rows_packed).
  const int64_t rows_tmp = packed && !out_blk && g.N > 1 ? (g.Cout + 15) / 16 * 16 * g.Wo : 0;  // floats per output row
  const int64_t per_row = (planes + (compact ? g.Cout : 0)) * Wq + rows_tmp;
  const int64_t rows =
      std::max<int64_t>(1, std::min<int64_t>(g.Ho, (budget - planes * halo * Wq) / std::max<int64_t>(per_row, 1)));
  const int64_t pad_elems = copy ? planes * (rows + halo) * Wq + ps.tail * xs : 0;
  float* scratch = static_cast<float*>(
      thread_scratch(size_t(pad_elems + (compact ? g.Cout * rows * Wq : 0) + rows_tmp * rows) * sizeof(float)));
  std::vector<int64_t> row_off(size_t(g.kh)), col_off(size_t(g.kw));
  for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += rows) {
    const int64_t oh1 = std::min(g.Ho, oh0 + rows), nr = oh1 - oh0, N = nr * Wq;
    const float* B;
    int64_t plane;  // elements between phase planes of B (phase planes of a channel are adjacent)
    if (copy) {  // phase rows [oh0, oh0 + nr + halo) of every channel and used phase
      const int64_t hb = nr + halo;
      plane = hb * Wq;
      float* xp = scratch;
      const int64_t xplane = plane * xs;  // floats per plane
      parallel_for(planes / xs, std::max<int64_t>(1, 16384 / xplane), [&](int64_t p0, int64_t p1) {
        for (int64_t cp = p0; cp < p1; ++cp) {  // plane cp: channel (block) c, phase (a, b)
          const int64_t c = cp / P, ph = cp % P;
          const int64_t a = ps.rows[size_t(ph / nb)], b = ps.cols[size_t(ph % nb)];
          int64_t lo, hi;  // the phase columns u whose input column u*sw + b - pl lies in [0, W)
          valid_range(ps.Wq, g.W, g.sw, g.pl, b, lo, hi);  // hi <= Ws (phase_split)
          const float* xc = x_n + (c * g.H * g.W - g.pl + b) * xs;
          float* dst = xp + cp * xplane;
          for (int64_t r = 0; r < hb; ++r, dst += Wq * xs) {
            const int64_t ih = (oh0 + r) * g.sh + a - g.pt;
            if (ih < 0 || ih >= g.H) {
              std::fill(dst, dst + Wq * xs, 0.f);
              continue;
            }
            const float* src = xc + ih * g.W * xs;
            std::fill(dst, dst + lo * xs, 0.f);
            if (g.sw == 1) {
              std::memcpy(dst + lo * xs, src + lo * xs, size_t(hi - lo) * xs * sizeof(float));
            } else if (xs == 1) {
              for (int64_t u = lo; u < hi; ++u) dst[u] = src[u * g.sw];
            } else {
              for (int64_t u = lo; u < hi; ++u) std::memcpy(dst + u * 16, src + u * g.sw * 16, 16 * sizeof(float));
            }
            std::fill(dst + hi * xs, dst + Wq * xs, 0.f);
          }
        }
      });
      std::fill(xp + planes * plane, xp + planes * plane + ps.tail * xs, 0.f);
      B = xp;
    } else {  // stride 1, 1x1 unpadded: the input rows themselves, one phase per channel
      B = x_n + oh0 * g.W * xs;
      plane = g.H * g.W;
    }
    // tap (c, i, j) -> plane (c, phase(i, j)) + row offset (i*dh)/sh + column offset (j*dw)/sw
    for (int64_t i = 0; i < g.kh; ++i)
      row_off[size_t(i)] = ps.tap_row[size_t(i)] * nb * plane + (i * g.dh / g.sh) * Wq;
    for (int64_t j = 0; j < g.kw; ++j) col_off[size_t(j)] = ps.tap_col[size_t(j)] * plane + j * g.dw / g.sw;
    // tap (c, i, j) is k = (c*kh + i)*kw + j as the weight is stored, or the packed weight's
    // (i*kw + j)*C + c
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t i = 0; i < g.kh; ++i)
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t k = packed ? (i * g.kw + j) * g.C + c : (c * g.kh + i) * g.kw + j;
          boff[size_t(k)] = in_blk ? ((c / 16) * P * plane + row_off[size_t(i)] + col_off[size_t(j)]) * 16 + c % 16
                                   : c * P * plane + row_off[size_t(i)] + col_off[size_t(j)];
        }
    if (out_blk) {
      conv_rows_blocked(g, oh0, nr, Wq, int(xs), B, boff, packed, bias, r_n, relu, out_n);
      continue;
    }
    const float* r_band = r_n ? r_n + oh0 * g.Wo : nullptr;
    if (packed) {
      conv_rows_packed(g, oh0, nr, Wq, B, boff, packed, bias, r_band, relu, out_n + oh0 * g.Wo,
                       rows_tmp ? scratch + pad_elems : nullptr);
      continue;
    }
    if (row_tiles) {
      conv_tiles_rows(g.Cout, nr, g.Wo, Wq, K, w, B, boff, bias, r_band, relu, out_n + oh0 * g.Wo, HoWo);
      continue;
    }
    if (!compact) {
      conv_tiles(g.Cout, N, K, w, B, boff, bias, r_band, relu, out_n + oh0 * g.Wo, HoWo);
      continue;
    }
    float* dst = scratch + pad_elems;
    conv_tiles(g.Cout, N, K, w, B, boff, bias, nullptr, false, dst, N);
    compact_band(out_n + oh0 * g.Wo, dst, r_band, relu, g.Cout, nr, g.Wo, Wq, HoWo);
  }
}

// One sample: out_n (Cout, Ho, Wo) = act(bias + w (*) x_n + r_n), r_n null or shaped like
// out_n. Scratch from this thread. `packed` only for geometries the packed tiles take.
void conv_fast_sample(const ConvGeom& g, const PhaseSplit& ps, const float* x_n, const float* w, const float* bias,
                      const float* r_n, bool relu, float* out_n, const float* packed, int layout) {
  const int64_t K = g.K(), HoWo = g.HoWo();
  std::vector<int64_t> boff(static_cast<size_t>(K));
  if (phase_split_fits(g, ps)) {
    conv_fast_phased(g, ps, x_n, w, bias, r_n, relu, out_n, boff.data(), packed, layout);
    return;
  }
  // Degenerate geometries: im2col columns, some output rows at a time (L2-sized tiles when
  // one thread runs the sample, ~1M elements when the sample is split over the pool).
  const bool serial = in_parallel_region() || get_num_threads() == 1;
  const int64_t budget = serial ? (int64_t(1) << 16) : (int64_t(1) << 20);
  const int64_t th = std::max<int64_t>(1, std::min<int64_t>(g.Ho, budget / std::max<int64_t>(1, K * g.Wo)));
  float* col = static_cast<float*>(thread_scratch(size_t(K * th * g.Wo) * sizeof(float)));
  for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += th) {
    const int64_t oh1 = std::min(g.Ho, oh0 + th), len = (oh1 - oh0) * g.Wo;
    im2col<float>(g, x_n, col, oh0, oh1);
    for (int64_t k = 0; k < K; ++k) boff[size_t(k)] = k * len;
    conv_tiles(g.Cout, len, K, w, col, boff.data(), bias, r_n ? r_n + oh0 * g.Wo : nullptr, relu,
               out_n + oh0 * g.Wo, HoWo);
  }
}
#endif

// One sample of the forward: out_n (Cout, Ho*Wo) = bias + sum over groups of W_g @ col_g,
// one tile of output rows at a time.
template <class T>
void conv_forward_sample(const ConvGeom& g, const T* x_n, const T* w, const TensorView* bias, T* out_n) {
  const int64_t K = g.K(), HoWo = g.HoWo(), Coutg = g.Coutg();
  if (bias) fill_rows<T>(out_n, g.Cout, HoWo, bias);
  const T beta = bias ? T(1) : T(0);
  T* col = col_scratch<T>(g);
  const int64_t th = tile_rows(g);
  for (int64_t gr = 0; gr < g.groups; ++gr) {
    const T* xg = x_n + gr * g.Cg() * g.HW();
    const T* wg = w + gr * Coutg * K;
    T* og = out_n + gr * Coutg * HoWo;
    if (g.direct()) {
      gemm_strided<T>(Coutg, HoWo, K, T(1), wg, K, 1, xg, HoWo, 1, beta, og, HoWo);
      continue;
    }
    for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += th) {
      const int64_t oh1 = std::min(g.Ho, oh0 + th), len = (oh1 - oh0) * g.Wo;
      im2col<T>(g, xg, col, oh0, oh1);
      gemm_strided<T>(Coutg, len, K, T(1), wg, K, 1, col, len, 1, beta, og + oh0 * g.Wo, HoWo);
    }
  }
}

// Runs f(n) for every sample: several samples at once (single-threaded BLAS each) when
// there are enough of them, else one at a time with threaded im2col and BLAS.
template <class F>
void for_each_sample(int64_t N, const F& f) {
  if (N > 1 && N >= get_num_threads() && !in_parallel_region()) {
    parallel_for(N, 1, [&](int64_t s, int64_t e) {
      for (int64_t n = s; n < e; ++n) f(n);
    });
  } else {
    for (int64_t n = 0; n < N; ++n) f(n);
  }
}

}  // namespace

// out[n] += r[n] for the generic path's residual (r shaped like out, contiguous).
template <class T>
void add_residual(T* out, const T* r, int64_t count) {
  for (int64_t i = 0; i < count; ++i) out[i] += r[i];
}

// The max pool a conv2d_act_maxpool applies to each sample's conv map: the max_pool2d kernel
// (kernels/pool.cpp, every fast path included) called on one sample at a time.
struct SamplePool {
  KernelFn fn = nullptr;
  Attrs attrs;  // max_pool2d's: kernel, stride, padding, dilation, ceil_mode, with_indices 0 [, layout]
  int64_t pooled_n = 0;  // elements of one sample's pooled output

  // attrs #first..#first+4 of the conv op: the pool's kernel, stride, padding, dilation, ceil_mode.
  SamplePool(const char* op, const Attrs& a, size_t first, const ConvGeom& g, const TensorView& y, bool blocked) {
    const Window w = read_window(a, first, true, op);  // as the max_pool2d kernel checks it
    const bool ceil_mode = a.i(first + 4) != 0;
    const int64_t Hp = pool_out_size(g.Ho, w.kh, w.sh, w.ph, w.dh, ceil_mode);
    const int64_t Wp = pool_out_size(g.Wo, w.kw, w.sw, w.pw, w.dw, ceil_mode);
    FW_CHECK(y.shape[2] == Hp && y.shape[3] == Wp, op, ": output ", y.shape[2], "x", y.shape[3],
             " does not match the ", g.Ho, "x", g.Wo, " conv output pooled (", Hp, "x", Wp, ")");
    fn = find_kernel("max_pool2d", y.dtype);
    FW_CHECK(fn != nullptr, op, ": no max_pool2d kernel for ", dtype_name(y.dtype));
    for (size_t i = 0; i < 5; ++i) attrs.values.push_back(a.at(first + i));
    attrs.values.push_back(AttrValue::from_int(0));  // no indices
    if (blocked) attrs.values.push_back(AttrValue::from_int(3));  // nchw16c in and out
    pooled_n = g.Cout * Hp * Wp;
  }

  // Pools sample n's conv map (Cout, Ho, Wo) into y's sample n.
  void run(const ConvGeom& g, const TensorView& y, int64_t n, const void* map) const {
    TensorView in, out[2];
    in.data = const_cast<void*>(map);
    in.dtype = y.dtype;
    in.ndim = 4;
    const int64_t s[4] = {1, g.Cout, g.Ho, g.Wo};
    for (int d = 3, st = 1; d >= 0; st *= int(s[d]), --d) in.shape[d] = s[d], in.strides[d] = st;
    out[0] = y;
    out[0].shape[0] = 1;
    out[0].data = static_cast<char*>(y.data) + n * pooled_n * int64_t(dtype_size(y.dtype));
    out[1].dtype = DType::i64;
    out[1].ndim = 1;  // the (unused) indices: empty
    KernelArgs a;
    a.in = &in;
    a.n_in = 1;
    a.out = out;
    a.n_out = 2;
    a.attrs = &attrs;
    fn(a);
  }
};

template <class T>
bool conv2d_forward(const KernelArgs& k, const char* op, bool relu, const TensorView* residual, int packed_index,
                    int layout_index, int pool_index) {
  const TensorView &x = k.input(0), &w = k.input(1);
  TensorView& y = k.output(0);
  const bool pooled = pool_index >= 0;
  ConvGeom g =
      make_geom(op, x, w, y, k.attrs->ints(0), k.attrs->ints(1), k.attrs->ints(2), k.attrs->i(3), pooled);
  const TensorView* bias = optional_bias(k, 2, g.Cout, op);
  const T* xp = x.ptr<T>();
  const T* wp = w.ptr<T>();
  T* yp = y.ptr<T>();
  const T* rp = nullptr;
  if (residual) {  // shaped like the conv's output (before a fused pool)
    const int64_t conv_shape[4] = {g.N, g.Cout, g.Ho, g.Wo};
    FW_CHECK(residual->dtype == y.dtype && residual->ndim == 4 &&
                 std::equal(conv_shape, conv_shape + 4, residual->shape) &&
                 (residual->numel() == 0 || residual->is_contiguous()),
             op, ": residual must be a contiguous tensor shaped like the conv output");
    rp = residual->ptr<T>();
  }
  const int64_t out_n = g.Cout * g.HoWo();
  const int64_t layout = layout_index >= 0 ? layout_attr(*k.attrs, size_t(layout_index)) : 0;
  FW_CHECK(layout == 0 || layout == 2 || layout == 3, op, ": layout attribute ", layout,
           " (expected 0 plain, 2 blocked output, 3 blocked input and output)");
  if (layout) {
    FW_CHECK((std::is_same_v<T, float>) && g.groups == 1 && g.Cout % 16 == 0 && (layout == 2 || g.C % 16 == 0), op,
             ": the nchw16c layout needs float32, groups 1 and channels in multiples of 16 (got ",
             g.C, " -> ", g.Cout, ", groups ", g.groups, ")");
    FW_CHECK(k.has_input(packed_index), op, ": the nchw16c layout needs the weight packed at load");
  }
  std::optional<SamplePool> pool;
  if (pooled) pool.emplace(op, *k.attrs, size_t(pool_index), g, y, layout != 0);
  if (y.numel() == 0 || out_n == 0) return relu;  // nothing to compute (and no scratch sized by the input)
  // Sample n's conv output: y's, or (pooled) this thread's map, pooled into y once complete
  // while it is still in cache: the full conv output never reaches memory.
  auto conv_out = [&](int64_t n) {
    return pooled ? static_cast<T*>(thread_scratch(size_t(out_n) * sizeof(T), 1)) : yp + n * out_n;
  };
#if FW_CONV_AVX512
  if constexpr (std::is_same_v<T, float>) {
    if (layout || fast_conv_ok(g)) {
      FW_CHECK(!layout || cpu_has_avx512f(), op, ": the nchw16c layout needs an AVX-512 CPU");
      const PhaseSplit ps = phase_split(g);
      const bool fits = phase_split_fits(g, ps);
      FW_CHECK(fits || !layout, op, ": the nchw16c layout does not support this geometry");
      const float* packed = packed_conv_weight(k, packed_index, g, ps.Ws, op, layout != 0);
      if (!fits) packed = nullptr;  // the im2col columns feed the pixel-vector tiles
      std::vector<float> b;  // contiguous; padded to whole panels for the packed tiles
      if (bias) {
        b.assign(size_t((g.Cout + 15) / 16 * 16), 0.f);
        for (int64_t c = 0; c < g.Cout; ++c) b[size_t(c)] = bias->ptr<float>()[c * bias->strides[0]];
      }
      for_each_sample(g.N, [&](int64_t n) {
        float* o = conv_out(n);
        conv_fast_sample(g, ps, xp + n * g.C * g.HW(), wp, bias ? b.data() : nullptr, rp ? rp + n * out_n : nullptr,
                         relu, o, packed, int(layout));
        if (pool) pool->run(g, y, n, o);
      });
      return relu;
    }
  }
#endif
  FW_CHECK(layout == 0, op, ": the nchw16c layout needs an AVX-512 build");
  for_each_sample(g.N, [&](int64_t n) {
    T* o = conv_out(n);
    conv_forward_sample<T>(g, xp + n * g.C * g.HW(), wp, bias, o);
    if (rp) add_residual<T>(o, rp + n * out_n, out_n);
    if (!pool) return;
    if (relu)  // before the pool (the same values as after it, but kept simple); a NaN stays NaN
      for (int64_t i = 0; i < out_n; ++i) o[i] = o[i] < T(0) ? T(0) : o[i];
    pool->run(g, y, n, o);
  });
  return pooled && relu;
}

template bool conv2d_forward<float>(const KernelArgs&, const char*, bool, const TensorView*, int, int, int);
template bool conv2d_forward<double>(const KernelArgs&, const char*, bool, const TensorView*, int, int, int);

namespace {

// conv2d(x, weight, bias?; stride=#0, padding=#1, dilation=#2, groups=#3)
template <class T>
void conv2d_k(const KernelArgs& k) {  // input 3: the weight pre-packed at load (prepack.h)
  conv2d_forward<T>(k, "conv2d", false, nullptr, 3, 4);
}

// grad_input[n] = col2im(W^T @ grad_out[n]) (+ bias per channel for conv_transpose2d).
// go: (N, Cout, Ho, Wo) plays the conv output; gi: (N, C, H, W) plays the conv input.
template <class T>
void conv_input_backward(const ConvGeom& g, const T* go, const T* w, const TensorView* bias, T* gi) {
  const int64_t K = g.K(), HoWo = g.HoWo(), Coutg = g.Coutg(), Cg = g.Cg();
  for_each_sample(g.N, [&](int64_t n) {
    T* gi_n = gi + n * g.C * g.HW();
    const T* go_n = go + n * g.Cout * HoWo;
    fill_rows<T>(gi_n, g.C, g.HW(), bias);
    T* col = col_scratch<T>(g);
    const int64_t th = tile_rows(g);
    for (int64_t gr = 0; gr < g.groups; ++gr) {
      const T* wg = w + gr * Coutg * K;  // (Coutg, K): A = wg^T is (K, Coutg)
      const T* gog = go_n + gr * Coutg * HoWo;
      T* gig = gi_n + gr * Cg * g.HW();
      if (g.direct()) {
        gemm_strided<T>(K, HoWo, Coutg, T(1), wg, 1, K, gog, HoWo, 1, T(1), gig, HoWo);
        continue;
      }
      for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += th) {
        const int64_t oh1 = std::min(g.Ho, oh0 + th), len = (oh1 - oh0) * g.Wo;
        gemm_strided<T>(K, len, Coutg, T(1), wg, 1, K, gog + oh0 * g.Wo, HoWo, 1, T(0), col, len);
        col2im<T>(g, col, gig, oh0, oh1);
      }
    }
  });
}

// A stride-1, dilation-1, ungrouped conv's input gradient is itself a convolution:
// grad_input = conv2d(grad_out, w', padding = k-1-p per side) with w'[c, co, i, j] =
// w[co, c, kh-1-i, kw-1-j]. Running it through conv2d_forward uses the fast forward path
// (no col2im, and a GEMM inner dim of Cout*kh*kw instead of Cout). Returns false when the
// geometry does not fit (the caller then uses GEMM + col2im).
template <class T>
bool conv_input_backward_as_conv(const ConvGeom& g, const TensorView& go, const TensorView& w, TensorView& gi) {
  if (g.groups != 1 || g.sh != 1 || g.sw != 1 || g.dh != 1 || g.dw != 1) return false;
  if (g.pt > g.kh - 1 || g.pb > g.kh - 1 || g.pl > g.kw - 1 || g.pr > g.kw - 1) return false;
  if (g.N == 0 || g.C == 0 || g.H == 0 || g.W == 0) return false;
  const int64_t khw = g.kh * g.kw;
  std::vector<T> wt(size_t(g.C * g.Cout * khw));
  const T* wp = w.ptr<T>();
  for (int64_t co = 0; co < g.Cout; ++co)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t t = 0; t < khw; ++t) wt[size_t((c * g.Cout + co) * khw + khw - 1 - t)] = wp[(co * g.C + c) * khw + t];
  const int64_t wshape[4] = {g.C, g.Cout, g.kh, g.kw};
  TensorView ins[2] = {go, make_view(wt.data(), w.dtype, 4, wshape)};
  Attrs attrs;
  attrs.values = {AttrValue::from_ints({1, 1}),
                  AttrValue::from_ints({g.kh - 1 - g.pt, g.kw - 1 - g.pl, g.kh - 1 - g.pb, g.kw - 1 - g.pr}),
                  AttrValue::from_ints({1, 1}), AttrValue::from_int(1)};
  KernelArgs ka;
  ka.in = ins;
  ka.n_in = 2;
  ka.out = &gi;
  ka.n_out = 1;
  ka.attrs = &attrs;
  conv2d_forward<T>(ka, "conv2d_backward_input", false, nullptr, -1, -1);
  return true;
}

// conv2d_backward_input(grad_output, weight; input_size=#0, stride=#1, padding=#2,
// dilation=#3, groups=#4) -> grad_input with shape input_size.
template <class T>
void conv2d_backward_input_k(const KernelArgs& k) {
  const TensorView &go = k.input(0), &w = k.input(1);
  TensorView& gi = k.output(0);
  ConvGeom g = make_geom("conv2d_backward_input", gi, w, go, k.attrs->ints(1), k.attrs->ints(2),
                         k.attrs->ints(3), k.attrs->i(4));
  if (conv_input_backward_as_conv<T>(g, go, w, gi)) return;
  conv_input_backward<T>(g, go.ptr<T>(), w.ptr<T>(), nullptr, gi.ptr<T>());
}

// conv_transpose2d(x, weight, bias?; stride=#0, padding=#1 (4 ints), output_padding=#2,
// groups=#3, dilation=#4): the input-backward of the conv whose output has x's shape.
template <class T>
void conv_transpose2d_k(const KernelArgs& k) {
  const TensorView &x = k.input(0), &w = k.input(1);
  TensorView& y = k.output(0);
  ConvGeom g = make_geom("conv_transpose2d", y, w, x, k.attrs->ints(0), k.attrs->ints(1),
                         k.attrs->ints(4), k.attrs->i(3));
  const TensorView* bias = optional_bias(k, 2, g.C, "conv_transpose2d");
  conv_input_backward<T>(g, x.ptr<T>(), w.ptr<T>(), bias, y.ptr<T>());
}

// conv2d_backward_weight(input, grad_output; weight_size=#0, stride=#1, padding=#2,
// dilation=#3, groups=#4) -> grad_weight = sum_n grad_out[n] @ im2col(x[n])^T per group.
template <class T>
void conv2d_backward_weight_k(const KernelArgs& k) {
  const TensorView &x = k.input(0), &go = k.input(1);
  TensorView& gw = k.output(0);
  ConvGeom g = make_geom("conv2d_backward_weight", x, gw, go, k.attrs->ints(1), k.attrs->ints(2),
                         k.attrs->ints(3), k.attrs->i(4));
  const int64_t K = g.K(), HoWo = g.HoWo(), Coutg = g.Coutg();
  const T* xp = x.ptr<T>();
  const T* gop = go.ptr<T>();
  T* gwp = gw.ptr<T>();
  const int64_t wsize = gw.numel();
  // acc += the gradient contributions of samples [n0, n1) (scratch from the calling thread).
  auto accumulate = [&](int64_t n0, int64_t n1, T* acc) {
    T* col = col_scratch<T>(g);
    const int64_t th = tile_rows(g);
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t gr = 0; gr < g.groups; ++gr) {
        const T* xg = xp + n * g.C * g.HW() + gr * g.Cg() * g.HW();
        const T* gog = gop + (n * g.Cout + gr * Coutg) * HoWo;
        T* gwg = acc + gr * Coutg * K;
        if (g.direct()) {  // x_g (K, HoWo) used transposed
          gemm_strided<T>(Coutg, K, HoWo, T(1), gog, HoWo, 1, xg, 1, HoWo, T(1), gwg, K);
          continue;
        }
        for (int64_t oh0 = 0; oh0 < g.Ho; oh0 += th) {
          const int64_t oh1 = std::min(g.Ho, oh0 + th), len = (oh1 - oh0) * g.Wo;
          im2col<T>(g, xg, col, oh0, oh1);
          gemm_strided<T>(Coutg, K, len, T(1), gog + oh0 * g.Wo, HoWo, 1, col, 1, len, T(1), gwg, K);
        }
      }
    }
  };
  std::fill(gwp, gwp + wsize, T(0));
  const int64_t chunks = std::min<int64_t>(get_num_threads(), g.N);
  if (chunks <= 1 || in_parallel_region()) {  // one sample at a time, im2col and GEMM threaded
    accumulate(0, g.N, gwp);
    return;
  }
  // Samples split over the pool, each chunk into its own accumulator (one pool dispatch
  // instead of two per sample), then summed.
  std::vector<T> partial(size_t((chunks - 1) * wsize), T(0));
  parallel_for(chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      accumulate(c * g.N / chunks, (c + 1) * g.N / chunks, c == 0 ? gwp : partial.data() + (c - 1) * wsize);
  });
  for (int64_t c = 1; c < chunks; ++c) {
    const T* src = partial.data() + (c - 1) * wsize;
    for (int64_t i = 0; i < wsize; ++i) gwp[i] += src[i];
  }
}

}  // namespace

FW_REGISTER_KERNELS(conv) {
  register_kernel("conv2d", DType::f32, &conv2d_k<float>);
  register_kernel("conv2d", DType::f64, &conv2d_k<double>);
  register_kernel("conv2d_backward_input", DType::f32, &conv2d_backward_input_k<float>);
  register_kernel("conv2d_backward_input", DType::f64, &conv2d_backward_input_k<double>);
  register_kernel("conv2d_backward_weight", DType::f32, &conv2d_backward_weight_k<float>);
  register_kernel("conv2d_backward_weight", DType::f64, &conv2d_backward_weight_k<double>);
  register_kernel("conv_transpose2d", DType::f32, &conv_transpose2d_k<float>);
  register_kernel("conv_transpose2d", DType::f64, &conv_transpose2d_k<double>);
}

}  // namespace fw
