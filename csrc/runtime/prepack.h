// prepack.h: weights re-laid out once per loaded model, for kernels that read them faster so.
//
// Today: the constant weights of linear / linear_act nodes (f32, f64) and of groups == 1
// conv2d / conv2d_act / conv2d_act_maxpool nodes (f32; the weight seen as Cout rows of
// C*kh*kw taps in the order kernel row, kernel column, channel: pack_conv_weight) are packed
// into panels of 16 output columns (kernels/blas.h, pack_linear_weight), which the kernels
// read with register-tiled loops (blas.h, conv.cpp). Each packed weight becomes a new
// constant value of the loaded graph, named "<weight>.packed", that the node gets as an extra
// trailing input (after its optional inputs, absent ones as -1), so the memory plan prints it
// and the planner needs no special case. Nothing is written back to the model file; a weight
// shared by several nodes is packed once.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/graph.h"

namespace fw {

struct PackedConst {
  int value = -1;                 // the new constant value's id
  std::shared_ptr<void> storage;  // its bytes (64-byte aligned)
};

// Rewrites `g` (adds the packed values and node inputs); const_ptr (per value, consts only)
// gives the original weights' bytes. A weight whose packed copy would exceed max_bytes, or
// twice its own size (panel padding), stays as stored. Returns the packed buffers, which
// must outlive the graph.
std::vector<PackedConst> prepack_weights(GraphDef& g, const std::vector<void*>& const_ptr, uint64_t max_bytes);

// The input index a kernel reads a pre-packed weight from (after its optional inputs), or -1
// for kernels that take none.
int packed_input_index(const std::string& kernel);

// Whether a kernel is a 2-d convolution whose weight prepack may pack (conv2d, conv2d_act,
// conv2d_act_maxpool: input 1 the weight, attributes #0..#3 stride, padding, dilation, groups).
bool is_conv_kernel(const std::string& kernel);

}  // namespace fw
