// embedding.cpp: embedding lookup, its backward (scatter-add of rows), and one_hot.
//
// Indices are int64 and checked against the table size: a bad index raises IndexError
// (fw::IndexError), never reads out of bounds.
//   embedding(indices, weight[V, D]) -> out[..., D]
//   embedding_backward(grad[..., D], indices; num_weights=#0, padding_idx=#1 (None: none),
//       scale_grad_by_freq=#2) -> grad_weight[V, D]   (the padding row gets no gradient)
//   one_hot(indices; num_classes=#0) -> int64[..., num_classes]
//   embedding_renorm(weight[V, D], indices; max_norm=#0, norm_type=#1) -> weight'[V, D]
//     rows named by indices whose p-norm exceeds max_norm are scaled to max_norm (torch's
//     embedding_renorm_; run in place by the Python side, so out may alias weight)
#include <cmath>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "kernels/nn_common.h"
#include "kernels/registry.h"

namespace fw {
namespace {

void check_index_dtype(const TensorView& idx, const char* op) {
  FW_CHECK(idx.dtype == DType::i64, op, ": indices must be int64, got ", dtype_name(idx.dtype));
}

template <class T>
void embedding_k(const KernelArgs& k) {
  nn::check_contig(k, "embedding");
  const TensorView& idx = k.input(0);
  const TensorView& w = k.input(1);
  check_index_dtype(idx, "embedding");
  FW_CHECK(w.ndim == 2, "embedding: 'weight' must be 2-D, got ", w.ndim, "-D");
  const int64_t V = w.shape[0], D = w.shape[1], n = idx.numel();
  const int64_t* ip = idx.ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    FW_CHECK_INDEX(ip[i] >= 0 && ip[i] < V, "index out of range in self (embedding: index ", ip[i],
                   " with num_embeddings ", V, ")");
  nn::check_numel(k.output(0), n * D, "embedding", "output");
  const T* wp = w.ptr<T>();
  T* o = k.output(0).ptr<T>();
  parallel_for(n, std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1)), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::memcpy(o + i * D, wp + ip[i] * D, size_t(D) * sizeof(T));
  });
}

template <class T>
void embedding_backward_k(const KernelArgs& k) {
  nn::check_contig(k, "embedding_backward");
  const TensorView& g = k.input(0);
  const TensorView& idx = k.input(1);
  check_index_dtype(idx, "embedding_backward");
  const int64_t V = k.attrs->i(0);
  const int64_t pad = k.attrs->is_none(1) ? -1 : k.attrs->i(1);
  const bool by_freq = k.attrs->i(2) != 0;
  TensorView& out = k.output(0);
  FW_CHECK(out.ndim == 2 && out.shape[0] == V, "embedding_backward: bad output shape");
  const int64_t D = out.shape[1], n = idx.numel();
  FW_CHECK(g.numel() == n * D, "embedding_backward: grad has ", g.numel(), " elements, expected ", n * D);
  const int64_t* ip = idx.ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    FW_CHECK_INDEX(ip[i] >= 0 && ip[i] < V, "index out of range in self (embedding_backward: index ", ip[i],
                   " with num_embeddings ", V, ")");
  std::vector<int64_t> count;
  if (by_freq) {
    count.assign(size_t(V), 0);
    for (int64_t i = 0; i < n; ++i) ++count[size_t(ip[i])];
  }
  const T* gp = g.ptr<T>();
  T* o = out.ptr<T>();
  std::memset(static_cast<void*>(o), 0, size_t(V * D) * sizeof(T));
  // Parallel over column blocks: every thread walks all indices for its columns (no races,
  // and the summation order per element is fixed).
  const int64_t block = 64;
  parallel_for((D + block - 1) / block, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)),
               [&](int64_t bs, int64_t be) {
                 for (int64_t blk = bs; blk < be; ++blk) {
                   const int64_t c0 = blk * block, c1 = std::min(D, c0 + block);
                   for (int64_t i = 0; i < n; ++i) {
                     const int64_t r = ip[i];
                     if (r == pad) continue;
                     const T s = by_freq ? T(1) / T(count[size_t(r)]) : T(1);
                     const T* gr = gp + i * D;
                     T* orow = o + r * D;
                     for (int64_t c = c0; c < c1; ++c) orow[c] += gr[c] * s;
                   }
                 }
               });
}

template <class T>
void embedding_renorm_k(const KernelArgs& k) {
  nn::check_contig(k, "embedding_renorm");
  const TensorView& w = k.input(0);
  const TensorView& idx = k.input(1);
  check_index_dtype(idx, "embedding_renorm");
  FW_CHECK(w.ndim == 2, "embedding_renorm: 'weight' must be 2-D, got ", w.ndim, "-D");
  const int64_t V = w.shape[0], D = w.shape[1], n = idx.numel();
  const double max_norm = k.attrs->f(0), p = k.attrs->f(1);
  const int64_t* ip = idx.ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    FW_CHECK_INDEX(ip[i] >= 0 && ip[i] < V, "index out of range in self (embedding_renorm: index ", ip[i],
                   " with num_embeddings ", V, ")");
  nn::check_numel(k.output(0), V * D, "embedding_renorm", "output");
  const T* wp = w.ptr<T>();
  T* o = k.output(0).ptr<T>();
  if (o != wp) std::memcpy(static_cast<void*>(o), wp, size_t(V * D) * sizeof(T));
  std::vector<char> done(size_t(V), 0);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = ip[i];
    if (done[size_t(r)]) continue;
    done[size_t(r)] = 1;
    T* row = o + r * D;
    double norm = 0;
    if (std::isinf(p)) {
      for (int64_t j = 0; j < D; ++j) norm = std::max(norm, std::abs(double(row[j])));
    } else {
      for (int64_t j = 0; j < D; ++j) norm += std::pow(std::abs(double(row[j])), p);
      norm = std::pow(norm, 1.0 / p);
    }
    if (norm > max_norm) {
      const T scale = T(max_norm / (norm + 1e-7));
      for (int64_t j = 0; j < D; ++j) row[j] *= scale;
    }
  }
}

void one_hot_k(const KernelArgs& k) {
  nn::check_contig(k, "one_hot");
  const TensorView& idx = k.input(0);
  check_index_dtype(idx, "one_hot");
  const int64_t C = k.attrs->i(0), n = idx.numel();
  const int64_t* ip = idx.ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    FW_CHECK(ip[i] >= 0, "one_hot: Class values must be non-negative (got ", ip[i], ")");
    FW_CHECK(ip[i] < C, "one_hot: Class values must be smaller than num_classes (got ", ip[i],
             " with num_classes ", C, ")");
  }
  int64_t total = 0;
  FW_CHECK(C >= 0 && !__builtin_mul_overflow(n, C, &total), "one_hot: num_classes ", C, " is too large");
  nn::check_numel(k.output(0), total, "one_hot", "output");
  int64_t* o = k.output(0).ptr<int64_t>();
  std::memset(static_cast<void*>(o), 0, size_t(total) * sizeof(int64_t));
  for (int64_t i = 0; i < n; ++i) o[i * C + ip[i]] = 1;
}

}  // namespace

FW_REGISTER_KERNELS(embedding) {
  using nn::contiguous_inputs;
  register_kernel("embedding", DType::f32, &contiguous_inputs<&embedding_k<float>>);
  register_kernel("embedding", DType::f64, &contiguous_inputs<&embedding_k<double>>);
  register_kernel("embedding_backward", DType::f32, &contiguous_inputs<&embedding_backward_k<float>>);
  register_kernel("embedding_backward", DType::f64, &contiguous_inputs<&embedding_backward_k<double>>);
  register_kernel("one_hot", DType::i64, &contiguous_inputs<&one_hot_k>);
  register_kernel("embedding_renorm", DType::f32, &contiguous_inputs<&embedding_renorm_k<float>>);
  register_kernel("embedding_renorm", DType::f64, &contiguous_inputs<&embedding_renorm_k<double>>);
}

}  // namespace fw
