// planner.h: the memory plan for one input-shape signature.
//
// Given concrete input shapes, the planner evaluates every value's shape and every symbolic
// attribute (SymInt programs), then places each intermediate value in one arena: values are
// taken largest first and put at the lowest 64-byte-aligned offset that does not overlap any
// value whose lifetime [producer node, last user node] intersects its own. Graph inputs and
// constants are never in the arena; a graph output produced by a node is written straight
// into the caller's output buffer. A Plan is immutable once made and shared by all threads.
//
// Views without copies: a node whose output is its input's elements in order -- kernel
// "reshape" (reshape, view, flatten, squeeze, ...), kernel "copy" with the input's shape and
// dtype (clone), kernel "select" picking a contiguous block (every dim before the selected
// one has size 1), kernel "permute" moving only dims of size 1 past the others (a batch of
// one, say: (1, T, C) -> (T, 1, C)) -- gets no buffer of its own: its output is an alias, placed at a byte
// offset inside its input's buffer (Input, Const, Arena or Output; aliases of aliases resolve
// to the first non-alias value, the root), and the executor skips its kernel. An Arena root
// stays live until the last use of every alias of it. Nothing in the runtime writes a value
// after its producer ran, so sharing is safe. A graph output is never an alias (the kernel
// writes it into the caller's buffer), nor is a node whose shapes or attributes do not fit
// (a crafted file's out-of-range select index): it runs its kernel, which reports the error.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor_view.h"
#include "runtime/graph.h"

namespace fw {

enum class Placement : uint8_t { Input, Const, Arena, Output, Alias };

struct Plan {
  InputShapes input_shapes;
  std::vector<TensorView> views;        // per value: shape/strides/dtype, data unset
  std::vector<Placement> placement;     // per value
  std::vector<uint64_t> offset;         // arena offset (Arena), output index (Output), byte offset in the root (Alias)
  std::vector<int> alias_root;          // per value: the non-alias value an Alias lives in (else -1)
  std::vector<uint8_t> skip_node;       // per node: 1 when its output is an alias (no kernel runs)
  std::vector<uint64_t> nbytes;         // per value
  std::vector<int> first_use, last_use; // node range of Arena values
  std::vector<Attrs> node_attrs;        // per node with symbolic attributes (else empty)
  std::vector<std::pair<int, int>> output_copies;  // (output index, value id) copied after run
  std::vector<std::vector<int64_t>> output_shapes;
  // The kernel arguments of every node, laid out consecutively: node i's input views then
  // its output views start at slot node_slot[i] (data unset; an absent optional input is a
  // null view). slot_value[s] is the value id of slot s (-1 when absent). The executor copies
  // slot_views once per call and fills in the data pointers.
  std::vector<TensorView> slot_views;
  std::vector<int> slot_value;
  std::vector<uint32_t> node_slot;  // one per node, plus the end
  uint64_t arena_bytes = 0;         // peak
  uint64_t intermediate_bytes = 0;  // sum of arena values' sizes (what no reuse would need)

  const Attrs& attrs_of(const GraphDef& g, size_t node) const {
    return g.nodes[node].symbolic_attrs ? node_attrs[node] : g.nodes[node].static_attrs;
  }
};

// Throws fw::Error when the shapes do not fit the graph or a value exceeds max_bytes.
// alias_views = false gives every node output its own buffer (every kernel runs).
Plan make_plan(const GraphDef& g, const InputShapes& input_shapes, uint64_t max_bytes, bool alias_views = true);

// The plan as text: one line per value (input, const, arena+offset, output, alias of %root
// +offset), then the nodes with their kernels (skipped ones marked), then the peak bytes.
std::string format_plan(const GraphDef& g, const Plan& p);

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace fw
