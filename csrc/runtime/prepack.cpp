// prepack.cpp: see prepack.h.
#include "runtime/prepack.h"

#include <cstdlib>
#include <map>
#include <new>

#include "core/allocator.h"
#include "kernels/blas.h"
#include "runtime/layout.h"

namespace fw {
namespace {

// Whether node n's weight is packed: a constant f32/f64 weight of a linear (N, K), or a
// constant f32 weight of a groups == 1 convolution (Cout, C, kh, kw), seen as N = Cout rows
// of K = C*kh*kw (kernels/conv.cpp uses it for f32 on AVX-512 CPUs; conv_dims = C, kh, kw,
// else zeros).
bool is_packable(const GraphDef& g, const NodeDef& n, int64_t* N, int64_t* K, int64_t (&conv_dims)[3]) {
  const int at = packed_input_index(n.kernel);
  if (at < 0 || n.inputs.size() < 2 || int(n.inputs.size()) > at || n.inputs[1] < 0) return false;
  const bool conv = is_conv_kernel(n.kernel);
  if (n.dtype != DType::f32 && (conv || n.dtype != DType::f64)) return false;
  const ValueDef& w = g.values[size_t(n.inputs[1])];
  if (w.kind != ValueDef::Const || w.dtype != n.dtype || w.dims.size() != (conv ? 4u : 2u)) return false;
  if (conv && (n.symbolic_attrs || n.static_attrs.size() < 4 || n.static_attrs.is_none(3) ||
               n.static_attrs.values[3].kind != AttrValue::Int || n.static_attrs.i(3) != 1))
    return false;
  int64_t d[4] = {1, 1, 1, 1};
  for (size_t i = 0; i < w.dims.size(); ++i)
    if (!program_is_const(w.dims[i], &d[i]) || d[i] <= 0) return false;
  *N = d[0];
  *K = d[1];
  for (int i = 0; i < 3; ++i) conv_dims[i] = conv ? d[i + 1] : 0;
  for (size_t i = 2; i < w.dims.size(); ++i) {
    if (*K > (int64_t(1) << 40) / d[i]) return false;  // a crafted file's huge dims
    *K *= d[i];
  }
  // Below kPackedConvMinK only the channel-blocked kernels read it (runtime/layout.h).
  if (conv && *K < kPackedConvMinK && !blockable_conv(g, n)) return false;
  // NOTE: the padding to whole panels must not blow up memory (a crafted file's 1 x huge
  // weight would need 16x its bytes): pack only when the copy is at most twice the weight.
  return packed_weight_numel(*N, *K) / *K <= 2 * *N;
}

}  // namespace

int packed_input_index(const std::string& kernel) {
  if (kernel == "linear" || kernel == "linear_act" || kernel == "conv2d") return 3;
  if (kernel == "conv2d_act" || kernel == "conv2d_act_maxpool") return 4;  // after the residual
  return -1;
}

bool is_conv_kernel(const std::string& kernel) {
  return kernel == "conv2d" || kernel == "conv2d_act" || kernel == "conv2d_act_maxpool";
}

std::vector<PackedConst> prepack_weights(GraphDef& g, const std::vector<void*>& const_ptr, uint64_t max_bytes) {
  struct Job {
    int weight;
    int64_t N, K;
    int64_t conv[3];  // C, kh, kw of a conv weight (pack_conv_weight), else zeros
    DType dtype;
    uint64_t offset;  // in the one block that holds every packed weight
  };
  std::vector<Job> jobs;
  std::vector<PackedConst> packed;
  std::map<int, int> packed_of;  // weight value -> packed value
  uint64_t total = 0;
  for (NodeDef& n : g.nodes) {
    int64_t N = 0, K = 0, conv[3];
    if (!is_packable(g, n, &N, &K, conv)) continue;
    const uint64_t bytes = uint64_t(packed_weight_numel(N, K)) * dtype_size(n.dtype);
    if (bytes > max_bytes) continue;  // keep it as stored
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
      g.values.push_back(std::move(v));
      it = packed_of.emplace(w, pc.value).first;
      packed.push_back(std::move(pc));
      jobs.push_back({w, N, K, {conv[0], conv[1], conv[2]}, n.dtype, total});
      total += (bytes + 63) / 64 * 64;
    }
    while (int(n.inputs.size()) < packed_input_index(n.kernel)) {  // absent optional inputs
      n.inputs.push_back(-1);
      ++n.runtime_inputs;
    }
    n.inputs.push_back(it->second);
    ++n.runtime_inputs;
  }
  if (jobs.empty()) return packed;
  // One block for all of them (huge pages: ResNet-18's 40 MB took 11.7k page faults as
  // separate blocks).
  void* block = nullptr;
  try {
    block = aligned_bytes(total);
  } catch (const std::bad_alloc&) {
    fail("out of memory packing ", jobs.size(), " weights (", total, " bytes)");
  }
  std::shared_ptr<void> owner(block, [](void* q) { std::free(q); });
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Job& j = jobs[i];
    char* dst = static_cast<char*>(block) + j.offset;
    if (j.conv[0] > 0)
      pack_conv_weight(static_cast<const float*>(const_ptr[size_t(j.weight)]), j.N, j.conv[0], j.conv[1], j.conv[2],
                       reinterpret_cast<float*>(dst));
    else if (j.dtype == DType::f32)
      pack_linear_weight<float>(static_cast<const float*>(const_ptr[size_t(j.weight)]), j.N, j.K, j.K, 1,
                                reinterpret_cast<float*>(dst));
    else
      pack_linear_weight<double>(static_cast<const double*>(const_ptr[size_t(j.weight)]), j.N, j.K, j.K, 1,
                                 reinterpret_cast<double*>(dst));
    packed[i].storage = std::shared_ptr<void>(owner, dst);
  }
  return packed;
}

}  // namespace fw
