// attention.cpp: fused scaled_dot_product_attention and its backward.
//
// q (..., L, E), k (..., S, E), v (..., S, Ev) have equal batch dims; the optional mask
// (bool: true = attend, or float: added to the scores) broadcasts to (..., L, S) through its
// own strides. The forward reads q, k and v through their strides: a block whose rows are not
// dense (heads split off a (N, L, H, E) projection, say) is gathered into the thread's
// scratch first, so the GEMMs never run on rows far apart (as strided operands they measured
// ~1.8x slower: rows 3 KB apart fall into few cache sets) and no caller copies the whole
// tensor first. Per (batch, head) block, in parallel over blocks:
//   P = softmax(scale * Q K^T + mask)   one GEMM, then a vectorized softmax per row
//   out = dropout(P) V                  one GEMM
// P (before dropout) is the second output: backward needs it, and it is the scratch the
// forward needs anyway. Fully masked rows give P = 0 and out = 0, like torch. Dropout keeps
// element (b, i, j) by the counter-based hash of (seed, b*L*S + i*S + j), so backward
// regenerates the same mask from the seed.
//
//   scaled_dot_product_attention(q, k, v, mask?; is_causal=#0, scale=#1, dropout_p=#2, seed=#3)
//       -> (out, P)
//   scaled_dot_product_attention_backward(gout, q, k, v, P; scale=#0, dropout_p=#1, seed=#2)
//       -> (gq, gk, gv, gscores)   gscores = d loss / d (scale * Q K^T + mask)
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "core/allocator.h"
#include "core/parallel.h"
#include "kernels/blas.h"
#include "kernels/nn_common.h"
#include "kernels/registry.h"
#include "kernels/strided.h"

namespace fw {
namespace {

struct AttnGeom {
  int64_t B = 1, L = 0, S = 0, E = 0, Ev = 0;
};

AttnGeom attn_geom(const TensorView& q, const TensorView& k, const TensorView& v, const char* op) {
  FW_CHECK(q.ndim >= 2 && q.ndim == k.ndim && q.ndim == v.ndim, op,
           ": query, key and value need the same number of dims (>= 2), got ", q.ndim, ", ", k.ndim, ", ",
           v.ndim);
  AttnGeom g;
  for (int d = 0; d < q.ndim - 2; ++d) {
    FW_CHECK(q.shape[d] == k.shape[d] && q.shape[d] == v.shape[d], op, ": batch dim ", d, " differs (",
             q.shape[d], ", ", k.shape[d], ", ", v.shape[d], ")");
    g.B *= q.shape[d];
  }
  g.L = q.size(-2);
  g.E = q.size(-1);
  g.S = k.size(-2);
  g.Ev = v.size(-1);
  FW_CHECK(k.size(-1) == g.E, op, ": key's last dim ", k.size(-1), " != query's ", g.E);
  FW_CHECK(v.size(-2) == g.S, op, ": value has ", v.size(-2), " rows, key has ", g.S);
  return g;
}

// Element offsets of the mask for batch block b (broadcast through zero-size strides).
struct MaskMap {
  const TensorView* m = nullptr;
  int64_t rs = 0, cs = 0;
  std::vector<int64_t> bdims, bstr;  // q's batch dims and the mask's strides for them

  MaskMap(const TensorView* mask, const TensorView& q, const AttnGeom& g) : m(mask) {
    if (!m) return;
    FW_CHECK(m->ndim <= q.ndim, "scaled_dot_product_attention: mask has more dims than query");
    auto stride_for = [&](int qd) -> int64_t {  // mask stride for q's batch dim qd (right-aligned)
      int md = qd - (q.ndim - m->ndim);
      if (md < 0 || m->shape[md] == 1) return 0;
      FW_CHECK(m->shape[md] == q.shape[qd], "scaled_dot_product_attention: mask dim ", md, " of size ",
               m->shape[md], " does not broadcast to batch size ", q.shape[qd]);
      return m->strides[md];
    };
    if (m->ndim >= 1) {
      int md = m->ndim - 1;
      FW_CHECK(m->shape[md] == 1 || m->shape[md] == g.S, "scaled_dot_product_attention: mask's last dim ",
               m->shape[md], " != key length ", g.S);
      cs = m->shape[md] == 1 ? 0 : m->strides[md];
    }
    if (m->ndim >= 2) {
      int md = m->ndim - 2;
      FW_CHECK(m->shape[md] == 1 || m->shape[md] == g.L, "scaled_dot_product_attention: mask's rows ",
               m->shape[md], " != query length ", g.L);
      rs = m->shape[md] == 1 ? 0 : m->strides[md];
    }
    for (int d = 0; d < q.ndim - 2; ++d) {
      bdims.push_back(q.shape[d]);
      bstr.push_back(stride_for(d));
    }
  }
  int64_t base(int64_t b) const {
    int64_t off = 0;
    for (int d = int(bdims.size()) - 1; d >= 0; --d) {
      off += (b % bdims[d]) * bstr[d];
      b /= bdims[d];
    }
    return off;
  }
};

// P row i (length S) <- softmax(row + mask), honoring causal and bool masks.
template <class T>
void masked_softmax_row(T* p, int64_t S, int64_t i, bool causal, const MaskMap& mm, int64_t mbase) {
  if (mm.m) {
    if (mm.m->dtype == DType::b8) {
      const bool* mp = mm.m->ptr<bool>() + mbase + i * mm.rs;
      for (int64_t j = 0; j < S; ++j)
        if (!mp[j * mm.cs]) p[j] = -std::numeric_limits<T>::infinity();
    } else {
      const T* mp = mm.m->ptr<T>() + mbase + i * mm.rs;
      if (mm.cs == 1) {
        for (int64_t j = 0; j < S; ++j) p[j] += mp[j];
      } else {
        for (int64_t j = 0; j < S; ++j) p[j] += mp[j * mm.cs];
      }
    }
  }
  if (causal)
    for (int64_t j = i + 1; j < S; ++j) p[j] = -std::numeric_limits<T>::infinity();
  T m = nn::row_max(p, S);
  if (m == -std::numeric_limits<T>::infinity()) {  // fully masked row: torch gives zeros
    for (int64_t j = 0; j < S; ++j) p[j] = 0;
    return;
  }
  T s = nn::row_exp_sum(p, p, m, S);
  nn::row_scale(p, p, T(1) / s, S);
}

// d[i] = p[i] * keep(i) / (1 - dp) for the block's counter range starting at `ctr`.
template <class T>
void apply_dropout(T* d, const T* p, int64_t n, uint64_t seed, uint64_t ctr, double dp) {
  const T sc = dp < 1 ? T(1.0 / (1.0 - dp)) : T(0);
  for (int64_t i = 0; i < n; ++i) d[i] = nn::keep_bit(seed, ctr + uint64_t(i), dp) ? p[i] * sc : T(0);
}

// The rows x cols matrix of t at element offset off as dense rows: t's own memory when its
// rows are dense, else copied into dst.
template <class T>
const T* dense_block(const TensorView& t, int64_t off, int64_t rows, int64_t cols, T* dst) {
  const int64_t rs = t.strides[t.ndim - 2], cs = t.strides[t.ndim - 1];
  const T* src = t.ptr<T>() + off;
  if ((cs == 1 || cols <= 1) && (rs == cols || rows <= 1)) return src;
  for (int64_t i = 0; i < rows; ++i) {
    const T* r = src + i * rs;
    if (cs == 1) {
      std::memcpy(dst + i * cols, r, size_t(cols) * sizeof(T));
    } else {
      for (int64_t j = 0; j < cols; ++j) dst[i * cols + j] = r[j * cs];
    }
  }
  return dst;
}

template <class T>
void sdpa_k(const KernelArgs& k) {
  const char* op = "scaled_dot_product_attention";
  for (int i = 0; i < 2; ++i) FW_CHECK(k.output(i).is_contiguous(), op, ": outputs must be contiguous");
  const TensorView &q = k.input(0), &kk = k.input(1), &v = k.input(2);
  AttnGeom g = attn_geom(q, kk, v, op);
  const TensorView* mask = k.has_input(3) ? &k.in[3] : nullptr;
  FW_CHECK(!mask || mask->dtype == DType::b8 || mask->dtype == q.dtype, op,
           ": float mask must have the query's dtype");
  MaskMap mm(mask, q, g);
  const bool causal = k.attrs->i(0) != 0;
  const T scale = T(k.attrs->f(1));
  const double dp = k.attrs->f(2);
  const uint64_t seed = uint64_t(k.attrs->i(3));
  nn::check_numel(k.output(0), g.B * g.L * g.Ev, op, "output");
  nn::check_numel(k.output(1), g.B * g.L * g.S, op, "attention weights");
  T* out = k.output(0).ptr<T>();
  T* P = k.output(1).ptr<T>();
  const int64_t L = g.L, S = g.S, E = g.E, Ev = g.Ev;
  if (g.B * L == 0) return;
  parallel_for(g.B, 1, [&](int64_t bs, int64_t be) {
    std::vector<T> drop;
    T* scratch = static_cast<T*>(thread_scratch(size_t(L * E + S * E + S * Ev) * sizeof(T)));
    for (int64_t b = bs; b < be; ++b) {
      T* Pb = P + b * L * S;
      T* ob = out + b * L * Ev;
      if (S == 0) {
        for (int64_t i = 0; i < L * Ev; ++i) ob[i] = 0;
        continue;
      }
      const T* qb = dense_block<T>(q, batch_offset(q, b), L, E, scratch);
      const T* kb = dense_block<T>(kk, batch_offset(kk, b), S, E, scratch + L * E);
      const T* vb = dense_block<T>(v, batch_offset(v, b), S, Ev, scratch + L * E + S * E);
      // Pb = scale * Q K^T   (K^T element (e, s) at s*E + e)
      gemm_strided<T>(L, S, E, scale, qb, E, 1, kb, 1, E, T(0), Pb, S);
      const int64_t mbase = mask ? mm.base(b) : 0;
      for (int64_t i = 0; i < L; ++i) masked_softmax_row(Pb + i * S, S, i, causal, mm, mbase);
      const T* A = Pb;
      if (dp > 0) {
        drop.resize(size_t(L * S));
        apply_dropout(drop.data(), Pb, L * S, seed, uint64_t(b * L * S), dp);
        A = drop.data();
      }
      gemm_strided<T>(L, Ev, S, T(1), A, S, 1, vb, Ev, 1, T(0), ob, Ev);
    }
  });
}

template <class T>
void sdpa_backward_k(const KernelArgs& k) {
  const char* op = "scaled_dot_product_attention_backward";
  nn::check_contig(k, op);
  const TensorView &go = k.input(0), &q = k.input(1), &kk = k.input(2), &v = k.input(3), &Pv = k.input(4);
  AttnGeom g = attn_geom(q, kk, v, op);
  FW_CHECK(Pv.numel() == g.B * g.L * g.S && go.numel() == g.B * g.L * g.Ev, op,
           ": saved shapes do not match");
  nn::check_numel(k.output(0), q.numel(), op, "grad_query");
  nn::check_numel(k.output(1), kk.numel(), op, "grad_key");
  nn::check_numel(k.output(2), v.numel(), op, "grad_value");
  nn::check_numel(k.output(3), g.B * g.L * g.S, op, "grad_scores");
  const T scale = T(k.attrs->f(0));
  const double dp = k.attrs->f(1);
  const uint64_t seed = uint64_t(k.attrs->i(2));
  const T *gop = go.ptr<T>(), *qp = q.ptr<T>(), *kp = kk.ptr<T>(), *vp = v.ptr<T>(), *P = Pv.ptr<T>();
  T *gq = k.output(0).ptr<T>(), *gk = k.output(1).ptr<T>(), *gv = k.output(2).ptr<T>(),
    *gs = k.output(3).ptr<T>();
  const int64_t L = g.L, S = g.S, E = g.E, Ev = g.Ev;
  const T dscale = dp < 1 ? T(1.0 / (1.0 - dp)) : T(0);
  parallel_for(g.B, 1, [&](int64_t bs, int64_t be) {
    std::vector<T> drop;
    for (int64_t b = bs; b < be; ++b) {
      const T* Pb = P + b * L * S;
      const T* gob = gop + b * L * Ev;
      T* gsb = gs + b * L * S;
      const T* A = Pb;
      if (dp > 0) {
        drop.resize(size_t(L * S));
        apply_dropout(drop.data(), Pb, L * S, seed, uint64_t(b * L * S), dp);
        A = drop.data();
      }
      // gV = A^T gO : (S, Ev)
      gemm_strided<T>(S, Ev, L, T(1), A, 1, S, gob, Ev, 1, T(0), gv + b * S * Ev, Ev);
      // gA = gO V^T : (L, S)
      gemm_strided<T>(L, S, Ev, T(1), gob, Ev, 1, vp + b * S * Ev, 1, Ev, T(0), gsb, S);
      if (dp > 0) {
        const uint64_t ctr = uint64_t(b * L * S);
        for (int64_t i = 0; i < L * S; ++i)
          gsb[i] = nn::keep_bit(seed, ctr + uint64_t(i), dp) ? gsb[i] * dscale : T(0);
      }
      // gS = P * (gP - sum(gP * P)) per row
      for (int64_t i = 0; i < L; ++i) {
        T* r = gsb + i * S;
        const T* pr = Pb + i * S;
        const T s = nn::row_dot(r, pr, S);
        for (int64_t j = 0; j < S; ++j) r[j] = pr[j] * (r[j] - s);
      }
      // gQ = scale * gS K : (L, E);  gK = scale * gS^T Q : (S, E)
      gemm_strided<T>(L, E, S, scale, gsb, S, 1, kp + b * S * E, E, 1, T(0), gq + b * L * E, E);
      gemm_strided<T>(S, E, L, scale, gsb, 1, S, qp + b * L * E, E, 1, T(0), gk + b * S * E, E);
    }
  });
}

}  // namespace

FW_REGISTER_KERNELS(attention) {
  using nn::contiguous_inputs;
  // the forward reads every input through its strides (q, k, v per block, the mask broadcast)
  register_kernel("scaled_dot_product_attention", DType::f32, &sdpa_k<float>);
  register_kernel("scaled_dot_product_attention", DType::f64, &sdpa_k<double>);
  register_kernel("scaled_dot_product_attention_backward", DType::f32,
                  &contiguous_inputs<&sdpa_backward_k<float>>);
  register_kernel("scaled_dot_product_attention_backward", DType::f64,
                  &contiguous_inputs<&sdpa_backward_k<double>>);
}

}  // namespace fw
