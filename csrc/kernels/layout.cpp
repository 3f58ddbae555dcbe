// layout.cpp: reorder_nchw16c, the conversion between plain NCHW and the channel-blocked
// "nchw16c" activation layout that the graph runtime inserts at the boundaries of blocked
// regions (convolutions and pools that read/write 16-channel vectors).
//
// nchw16c of a logical (N, C, H, W) tensor, C % 16 == 0: element (n, c, h, w) lives at flat
// index ((n * (C / 16) + c / 16) * H * W + h * W + w) * 16 + c % 16. The views keep the
// logical shape and contiguous strides; only the kernels reading the attribute know that the
// bytes are blocked. So each (n, channel block) is a transpose of a 16 x HW matrix (16
// channel planes) into HW x 16 (16-channel pixel vectors), or back.
//
// f32 on an AVX-512 CPU: 16 pixels x 16 channels per step, a 16x16 register transpose (masked
// loads/stores for the HW % 16 tail). Otherwise (f64, other CPUs, a strided plain input) a
// scalar loop. Work is split over (n, channel block, pixel tile).
#include <algorithm>
#include <type_traits>

#include "core/parallel.h"
#include "kernels/nchw.h"
#include "kernels/registry.h"

#include "kernels/packed_tile.h"  // AVX-512 intrinsics and transpose16x16, when FW_PACKED_TILE_AVX512

#ifdef FW_PACKED_TILE_AVX512
#define FW_LAYOUT_AVX512 1
#else
#define FW_LAYOUT_AVX512 0
#endif

namespace fw {
namespace {

constexpr int64_t kBlock = kNchwBlock;
constexpr int64_t kTilePixels = 256;  // pixels per work item (16 KB of f32 each way)
constexpr int64_t kGatherTail = 8;    // to_blocked: tails of fewer pixels gather each pixel's 16 channels

struct Reorder {
  int64_t N, C, CB, HW, tiles;
  int64_t sn, sc, sp;  // the plain side's strides: batch, channel, pixel (sp == 1 when packed)
};

#if FW_LAYOUT_AVX512
// Pixels [p0, p1) of 16 channel planes (plane j at src + j * sc, unit pixel stride) into
// the pixel vectors dst[p * 16 .. p * 16 + 16).
__attribute__((target("avx512f"))) void to_blocked_avx512(const float* src, int64_t sc, float* dst, int64_t p0,
                                                         int64_t p1) {
  __m512 r[16];
  const __m512i rows = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32(int(sc)));
  for (int64_t p = p0; p < p1; p += 16) {
    const int64_t n = std::min<int64_t>(16, p1 - p);
    if (n < kGatherTail && 15 * sc < (int64_t(1) << 31)) {  // a short tail: one gather per pixel
      for (int64_t q = p; q < p1; ++q) _mm512_storeu_ps(dst + q * kBlock, _mm512_i32gather_ps(rows, src + q, 4));
      break;
    }
    const __mmask16 m = __mmask16((uint32_t(1) << n) - 1);
    for (int j = 0; j < 16; ++j) r[j] = _mm512_maskz_loadu_ps(m, src + j * sc + p);
    transpose16x16(r);
    float* d = dst + p * kBlock;
    for (int q = 0; q < n; ++q) _mm512_storeu_ps(d + q * kBlock, r[q]);
  }
}

// The inverse: pixel vectors src[p * 16 ..] into 16 channel planes (dst + j * sc).
__attribute__((target("avx512f"))) void from_blocked_avx512(const float* src, float* dst, int64_t sc, int64_t p0,
                                                           int64_t p1) {
  __m512 r[16];
  for (int64_t p = p0; p < p1; p += 16) {
    const int64_t n = std::min<int64_t>(16, p1 - p);
    const float* s = src + p * kBlock;
    if (n == 16) {
      for (int q = 0; q < 16; ++q) r[q] = _mm512_loadu_ps(s + q * kBlock);
    } else {
      for (int q = 0; q < 16; ++q) r[q] = q < n ? _mm512_loadu_ps(s + q * kBlock) : _mm512_setzero_ps();
    }
    transpose16x16(r);
    const __mmask16 m = __mmask16((uint32_t(1) << n) - 1);
    for (int j = 0; j < 16; ++j) _mm512_mask_storeu_ps(dst + j * sc + p, m, r[j]);
  }
}
#endif  // FW_LAYOUT_AVX512

// Scalar versions of the two, for any plain pixel stride sp.
template <class T>
void to_blocked_scalar(const T* src, int64_t sc, int64_t sp, T* dst, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t j = 0; j < kBlock; ++j) dst[p * kBlock + j] = src[j * sc + p * sp];
}

template <class T>
void from_blocked_scalar(const T* src, T* dst, int64_t sc, int64_t sp, int64_t p0, int64_t p1) {
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t j = 0; j < kBlock; ++j) dst[j * sc + p * sp] = src[p * kBlock + j];
}

// The plain side's strides: (batch, channel, pixel). A plain input may be any view whose
// H and W dims merge into one pixel dim (sh == W * sw, or H == 1, or W == 1).
bool plain_strides(const TensorView& v, int64_t& sn, int64_t& sc, int64_t& sp) {
  const int64_t H = v.shape[2], W = v.shape[3];
  sn = v.strides[0];
  sc = v.strides[1];
  if (W == 1) sp = v.strides[2];
  else if (H == 1 || v.strides[2] == W * v.strides[3]) sp = v.strides[3];
  else return false;
  return true;
}

// reorder_nchw16c(x; to_blocked=#0) -> y: plain NCHW -> nchw16c (to_blocked) or back.
template <class T>
void reorder_nchw16c_k(const KernelArgs& k) {
  const TensorView& x = k.input(0);
  const bool to_blocked = k.attrs->i(0) != 0;
  // The runtime also reorders a blocked value straight into a flatten's output (runtime/layout.h):
  // a contiguous plain output of another shape with as many elements is seen as (N, C, H, W).
  TensorView y = k.output(0);
  if (!to_blocked && x.ndim == 4 && y.is_contiguous() && y.numel() == x.numel() &&
      (y.ndim != 4 || !std::equal(x.shape, x.shape + 4, y.shape))) {
    y.ndim = 4;
    for (int d = 3; d >= 0; --d) {
      y.shape[d] = x.shape[d];
      y.strides[d] = d == 3 ? 1 : y.strides[d + 1] * y.shape[d + 1];
    }
  }
  FW_CHECK(x.ndim == 4 && y.ndim == 4, "reorder_nchw16c: expected 4-d (N, C, H, W) tensors, got ", x.ndim, "-d");
  for (int d = 0; d < 4; ++d)
    FW_CHECK(x.shape[d] == y.shape[d], "reorder_nchw16c: input and output shapes differ at dim ", d);
  FW_CHECK(x.shape[1] % kBlock == 0, "reorder_nchw16c: channels (", x.shape[1], ") must be a multiple of 16");
  const TensorView& blocked = to_blocked ? y : x;
  const TensorView& plain = to_blocked ? x : y;
  FW_CHECK(blocked.is_contiguous(), "reorder_nchw16c: the nchw16c ", to_blocked ? "output" : "input",
           " must be contiguous");
  Reorder r{x.shape[0], x.shape[1], x.shape[1] / kBlock, x.shape[2] * x.shape[3], 0, 0, 0, 0};
  // A plain side whose H, W strides do not merge (a strided input view) goes row by row.
  const bool merged = plain_strides(plain, r.sn, r.sc, r.sp);
  FW_CHECK(merged || to_blocked, "reorder_nchw16c: the plain output must have mergeable H, W strides");
  if (y.numel() == 0) return;
  const T* xp = x.ptr<T>();
  T* yp = y.ptr<T>();
  const int64_t W = x.shape[3];
  // Work items: (n, channel block, tile of pixels); with unmergeable rows, one row per tile.
  const int64_t tile = merged ? std::min(kTilePixels, r.HW) : W;
  r.tiles = (r.HW + tile - 1) / tile;
  const int64_t items = r.N * r.CB * r.tiles;
  const int64_t grain = std::max<int64_t>(1, 32768 / (kBlock * tile));
#if FW_LAYOUT_AVX512
  const bool vec = std::is_same<T, float>::value && cpu_has_avx512f() && r.sp == 1 && merged;
#else
  const bool vec = false;
#endif
  parallel_for(items, grain, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t blk = i / r.tiles, t = i % r.tiles;
      const int64_t n = blk / r.CB, cb = blk % r.CB;
      const int64_t p0 = t * tile, p1 = std::min(r.HW, p0 + tile);
      const int64_t plain_off = n * r.sn + cb * kBlock * r.sc;
      T* yb = yp;
      const T* xb = xp;
      if (to_blocked) {
        yb = yp + blk * r.HW * kBlock;
        xb = xp + plain_off;
      } else {
        xb = xp + blk * r.HW * kBlock;
        yb = yp + plain_off;
      }
      if (!merged) {  // one input row h = t: pixels [h * W, h * W + W) at column stride sw
        const int64_t sh = x.strides[2], sw = x.strides[3];
        to_blocked_scalar<T>(xb + t * sh - p0 * sw, r.sc, sw, yb, p0, p1);
        continue;
      }
#if FW_LAYOUT_AVX512
      if constexpr (std::is_same<T, float>::value) {
        if (vec) {
          if (to_blocked) to_blocked_avx512(xb, r.sc, yb, p0, p1);
          else from_blocked_avx512(xb, yb, r.sc, p0, p1);
          continue;
        }
      }
#endif
      if (to_blocked) to_blocked_scalar<T>(xb, r.sc, r.sp, yb, p0, p1);
      else from_blocked_scalar<T>(xb, yb, r.sc, r.sp, p0, p1);
    }
  });
}

}  // namespace

FW_REGISTER_KERNELS(layout) {
  register_kernel("reorder_nchw16c", DType::f32, &reorder_nchw16c_k<float>);
  register_kernel("reorder_nchw16c", DType::f64, &reorder_nchw16c_k<double>);
}

}  // namespace fw
