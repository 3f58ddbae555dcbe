// layout.h: the channel-blocked activation layout (nchw16c), chosen once per loaded model.
//
// Layout nchw16c of a float32 (N, C, H, W) tensor, C % 16 == 0: element (n, c, h, w) lives at
// ((n*C/16 + c/16)*H*W + h*W + w)*16 + c%16 -- the same bytes as NCHW, reordered so that 16
// channels of one pixel are one AVX-512 vector (onnxruntime's NCHWc). A conv then stores each
// output pixel's channels as whole vectors (no transposes, no idle lanes on 7x7 and 14x14
// maps) and reads a blocked input with one broadcast per pixel and channel.
//
// At load, on AVX-512 CPUs, after prepack (runtime/prepack.h): convolutions the blocked
// kernels take (f32, groups 1, constant weight packed at load, Cout % 16 == 0, dilation 1,
// stride <= 2, padding < kernel) write blocked outputs when their input is blocked or some
// consumer reads blocked inputs; max_pool2d (no indices) and adaptive_avg_pool2d read blocked
// inputs where they get them (the pool writes blocked, the average plain NCHW). Every other
// consumer, and every graph output, gets the value back in NCHW through one inserted
// reorder_nchw16c node per value; a blocked conv's residual that is plain is reordered to
// blocked. Kernels learn the layout from one Int attribute the pass appends after the op's
// own attributes (bit 1: input 0 blocked, bit 2: outputs and residual blocked); eager calls
// never carry it. Values keep their logical NCHW shapes, so the planner needs nothing new.
#pragma once

#include "runtime/graph.h"

namespace fw {

// Whether node n is a convolution the blocked kernels can run (see above), given that its
// weight gets packed. prepack_weights packs these even below kPackedConvMinK.
bool blockable_conv(const GraphDef& g, const NodeDef& n);

// Rewrites g as described above (appends layout attributes, inserts reorder nodes, renumbers
// the producers). A no-op on CPUs without AVX-512 or without the reorder kernel.
void assign_layouts(GraphDef& g);

}  // namespace fw
