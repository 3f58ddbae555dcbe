// prepack.cpp: see prepack.h.
#include "runtime/prepack.h"

#include <cstdlib>
#include <map>

#include "kernels/blas.h"

namespace fw {
namespace {

bool is_packable_linear(const GraphDef& g, const NodeDef& n, int64_t* N, int64_t* K) {
  if (n.kernel != "linear" && n.kernel != "linear_act") return false;
  if (n.dtype != DType::f32 && n.dtype != DType::f64) return false;
  if (n.inputs.size() < 2 || n.inputs.size() > 3 || n.inputs[1] < 0) return false;
  const ValueDef& w = g.values[size_t(n.inputs[1])];
  if (w.kind != ValueDef::Const || w.dtype != n.dtype || w.dims.size() != 2) return false;
  if (!program_is_const(w.dims[0], N) || !program_is_const(w.dims[1], K) || *N <= 0 || *K <= 0) return false;
  // NOTE: the padding to whole panels must not blow up memory (a crafted file's 1 x huge
  // weight would need 16x its bytes): pack only when the copy is at most twice the weight.
  return packed_weight_numel(*N, *K) / *K <= 2 * *N;
}

template <class T>
std::shared_ptr<void> pack(const void* w, int64_t N, int64_t K) {
  size_t bytes = size_t(packed_weight_numel(N, K)) * sizeof(T);
  void* p = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  FW_CHECK(p != nullptr, "out of memory packing a ", N, "x", K, " weight");
  std::shared_ptr<void> out(p, [](void* q) { std::free(q); });
  pack_linear_weight<T>(static_cast<const T*>(w), N, K, K, 1, static_cast<T*>(p));
  return out;
}

}  // namespace

std::vector<PackedConst> prepack_weights(GraphDef& g, const std::vector<void*>& const_ptr, uint64_t max_bytes) {
  std::vector<PackedConst> packed;
  std::map<int, int> packed_of;  // weight value -> packed value
  for (NodeDef& n : g.nodes) {
    int64_t N = 0, K = 0;
    if (!is_packable_linear(g, n, &N, &K)) continue;
    if (uint64_t(packed_weight_numel(N, K)) * dtype_size(n.dtype) > max_bytes) continue;  // keep it as stored
    int w = n.inputs[1];
    auto it = packed_of.find(w);
    if (it == packed_of.end()) {
      ValueDef v;
      v.name = g.values[size_t(w)].name + ".packed";
      v.dtype = n.dtype;
      v.kind = ValueDef::Const;
      for (int64_t d : {packed_weight_numel(N, K) / (K * kPackedPanel), K, kPackedPanel})
        v.dims.push_back({kSymConst, d});
      PackedConst pc;
      pc.value = int(g.values.size());
      pc.storage = n.dtype == DType::f32 ? pack<float>(const_ptr[size_t(w)], N, K)
                                          : pack<double>(const_ptr[size_t(w)], N, K);
      g.values.push_back(std::move(v));
      it = packed_of.emplace(w, pc.value).first;
      packed.push_back(std::move(pc));
    }
    if (n.inputs.size() == 2) {  // no bias
      n.inputs.push_back(-1);
      ++n.runtime_inputs;
    }
    n.inputs.push_back(it->second);
    ++n.runtime_inputs;
  }
  return packed;
}

}  // namespace fw
