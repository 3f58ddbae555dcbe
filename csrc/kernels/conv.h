// conv.h: the conv2d forward shared by the conv2d and conv2d_act kernels (kernels/conv.cpp).
#pragma once
#include "kernels/registry.h"

namespace fw {

// conv2d forward on k's operands (x, weight, bias?) and attrs #0..#3 (stride, padding as 4
// ints, dilation, groups) into k.output(0), plus `residual` (null, or a contiguous tensor
// shaped like the output) added to it. With relu true the kernel may apply a relu after the
// residual while storing the output; returns whether it did (else the caller applies it).
// k's input `packed_index` (-1: none) may hold the weight the runtime pre-packed at load
// (runtime/prepack.h). Attribute #layout_index, when the runtime appended it (runtime/layout.h),
// selects the channel-blocked layout (nchw16c): 2 = the output and residual are blocked, 3 = the
// input too; 0 or absent = plain NCHW. Errors name `op`.
//
// With pool_index >= 0 (conv2d_act_maxpool) attributes #pool_index..+4 (kernel, stride,
// padding, dilation, ceil_mode) max-pool the conv output: k.output(0) is the pooled tensor,
// each sample's conv map is pooled as soon as it is complete (the residual and relu apply to
// the conv output, before the pool).
template <class T>
bool conv2d_forward(const KernelArgs& k, const char* op, bool relu, const TensorView* residual, int packed_index,
                    int layout_index, int pool_index = -1);

}  // namespace fw
