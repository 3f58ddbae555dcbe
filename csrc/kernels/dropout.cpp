// dropout.cpp: dropout with a counter-based mask (nn_common.h): element i is kept when
// uniform01(seed, i) >= p, so the mask depends only on (seed, i), not on the thread count.
//
//   dropout(x; p=#0, seed=#1) -> (out, mask)   out = x * mask / (1 - p), mask bool
// The mask is an output so backward (grad * mask / (1 - p)) reuses it. p == 1 zeroes all.
#include "core/parallel.h"
#include "kernels/nn_common.h"
#include "kernels/registry.h"

namespace fw {
namespace {

template <class T>
void dropout_k(const KernelArgs& k) {
  nn::check_contig(k, "dropout");
  const TensorView& x = k.input(0);
  const double p = k.attrs->f(0);
  FW_CHECK(p >= 0 && p <= 1, "dropout: probability has to be between 0 and 1, but got ", p);
  const uint64_t seed = uint64_t(k.attrs->i(1));
  FW_CHECK(k.output(1).dtype == DType::b8, "dropout: mask output must be bool");
  nn::check_numel(k.output(0), x.numel(), "dropout", "output");
  nn::check_numel(k.output(1), x.numel(), "dropout", "mask");
  const T scale = p < 1 ? T(1.0 / (1.0 - p)) : T(0);
  const T* xp = x.ptr<T>();
  T* o = k.output(0).ptr<T>();
  bool* m = k.output(1).ptr<bool>();
  parallel_for(x.numel(), 32768, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const bool keep = nn::keep_bit(seed, uint64_t(i), p);
      m[i] = keep;
      o[i] = keep ? xp[i] * scale : T(0);
    }
  });
}

}  // namespace

FW_REGISTER_KERNELS(dropout) {
  register_kernel("dropout", DType::f32, &nn::contiguous_inputs<&dropout_k<float>>);
  register_kernel("dropout", DType::f64, &nn::contiguous_inputs<&dropout_k<double>>);
}

}  // namespace fw
