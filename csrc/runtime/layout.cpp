// layout.cpp: see layout.h.
#include "runtime/layout.h"

#include <map>
#include <utility>

#include "core/error.h"
#include "kernels/nchw.h"
#include "runtime/prepack.h"

namespace fw {
namespace {

constexpr int64_t kBlock = kNchwBlock;

// The number of attributes each layout-aware kernel takes before the appended layout one.
int op_attrs(const std::string& kernel) {
  if (kernel == "conv2d") return 4;
  if (kernel == "conv2d_act") return 5;
  if (kernel == "conv2d_act_maxpool") return 10;
  if (kernel == "max_pool2d") return 6;
  if (kernel == "adaptive_avg_pool2d") return 1;
  return -1;
}

bool static_ints(const NodeDef& n, size_t k, size_t len, std::vector<int64_t>* out) {
  if (n.static_attrs.size() <= k) return false;
  const AttrValue& a = n.static_attrs.values[k];
  if (a.kind != AttrValue::Ints || a.ints.size() != len) return false;
  *out = a.ints;
  return true;
}

bool const_dim(const ValueDef& v, size_t d, int64_t* value) {
  return d < v.dims.size() && program_is_const(v.dims[d], value);
}

// A node the layout pass may hand blocked values: its kernel, f32, static attributes in the
// op's number (a crafted file's extra attributes disqualify it).
bool layout_node(const NodeDef& n) {
  const int attrs = op_attrs(n.kernel);
  return attrs >= 0 && n.dtype == DType::f32 && !n.symbolic_attrs && int(n.static_attrs.size()) == attrs &&
         !n.inputs.empty() && n.inputs[0] >= 0 && !n.outputs.empty();
}

enum class Kind { Other, Conv, Pool, Avg };

Kind kind_of(const GraphDef& g, const NodeDef& n) {
  if (!layout_node(n)) return Kind::Other;
  if (is_conv_kernel(n.kernel)) {
    // Blocked convs read the weight packed at load: prepack appended it after the optional inputs.
    const size_t packed_at = size_t(packed_input_index(n.kernel));
    return blockable_conv(g, n) && n.inputs.size() == packed_at + 1 && n.inputs[packed_at] >= 0 ? Kind::Conv
                                                                                                 : Kind::Other;
  }
  const ValueDef& x = g.values[size_t(n.inputs[0])];
  if (x.dtype != DType::f32 || x.dims.size() != 4) return Kind::Other;
  if (n.kernel == "max_pool2d") {
    const AttrValue& with_indices = n.static_attrs.values[5];
    return with_indices.kind == AttrValue::Int && with_indices.i == 0 ? Kind::Pool : Kind::Other;
  }
  return Kind::Avg;
}

// Whether node n reads input slot `slot` in the blocked layout when it is given one.
bool reads_blocked(Kind kind, size_t slot) {
  switch (kind) {
    case Kind::Conv: return slot == 0 || slot == 3;  // x, or the residual
    case Kind::Pool:
    case Kind::Avg: return slot == 0;
    case Kind::Other: return false;
  }
  return false;
}

}  // namespace

bool blockable_conv(const GraphDef& g, const NodeDef& n) {
  if (!cpu_has_avx512f() || !layout_node(n) || !is_conv_kernel(n.kernel)) return false;
  if (n.inputs.size() < 2 || n.inputs[1] < 0) return false;
  const ValueDef &x = g.values[size_t(n.inputs[0])], &w = g.values[size_t(n.inputs[1])];
  if (x.dtype != DType::f32 || x.dims.size() != 4 || w.kind != ValueDef::Const || w.dtype != DType::f32 ||
      w.dims.size() != 4)
    return false;
  int64_t d[4];
  for (size_t i = 0; i < 4; ++i)
    if (!const_dim(w, i, &d[i]) || d[i] <= 0) return false;
  std::vector<int64_t> stride, pad, dil;
  if (!static_ints(n, 0, 2, &stride) || !static_ints(n, 1, 4, &pad) || !static_ints(n, 2, 2, &dil)) return false;
  const AttrValue& groups = n.static_attrs.values[3];
  if (groups.kind != AttrValue::Int || groups.i != 1 || d[0] % kBlock != 0) return false;
  if (dil[0] != 1 || dil[1] != 1) return false;
  for (int64_t s : stride)
    if (s < 1 || s > 2) return false;
  // The phase planes then hold at most ~4x the im2col columns (conv.cpp, phase_split_fits).
  if (pad[0] >= d[2] || pad[2] >= d[2] || pad[1] >= d[3] || pad[3] >= d[3]) return false;
  return true;
}

void assign_layouts(GraphDef& g) {
  if (!cpu_has_avx512f()) return;
  const KernelFn reorder = find_kernel("reorder_nchw16c", DType::f32);
  if (!reorder) return;
  const size_t nv = g.values.size();
  std::vector<Kind> kinds;
  std::vector<std::vector<std::pair<size_t, size_t>>> uses(nv);  // value -> (node, input slot)
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    kinds.push_back(kind_of(g, g.nodes[i]));
    for (size_t s = 0; s < g.nodes[i].inputs.size(); ++s)
      if (g.nodes[i].inputs[s] >= 0) uses[size_t(g.nodes[i].inputs[s])].push_back({i, s});
  }
  // A conv blocks its output when its input is blocked (a plain output would need the input
  // reordered first) or some consumer reads it blocked.
  auto wanted = [&](int value) {
    for (auto [node, slot] : uses[size_t(value)])
      if (reads_blocked(kinds[node], slot)) return true;
    return false;
  };
  std::vector<char> blocked(nv, 0);
  std::map<int, int> plain_of, blocked_of;  // value -> its reordered copy
  std::vector<NodeDef> nodes;
  nodes.reserve(g.nodes.size() + 4);
  // Appends one static Int attribute (the layout, or a reorder's direction).
  auto append_int_attr = [](NodeDef& n, int64_t value) {
    AttrSpec a;
    a.value = AttrValue::from_int(value);
    n.attrs.push_back(a);
    n.static_attrs.values.push_back(a.value);
  };
  auto reordered = [&](int value, bool to_blocked) {
    std::map<int, int>& cache = to_blocked ? blocked_of : plain_of;
    auto it = cache.find(value);
    if (it != cache.end()) return it->second;
    ValueDef v = g.values[size_t(value)];
    v.name += to_blocked ? ".nchw16c" : ".nchw";
    v.kind = ValueDef::NodeOutput;
    const int id = int(g.values.size());
    g.values.push_back(std::move(v));
    blocked.push_back(to_blocked);
    NodeDef r;
    r.op = r.kernel = "reorder_nchw16c";
    r.source = "layout";
    r.dtype = DType::f32;
    r.fn = reorder;
    r.inputs = {value};
    r.outputs = {id};
    append_int_attr(r, to_blocked ? 1 : 0);
    nodes.push_back(std::move(r));
    cache.emplace(value, id);
    return id;
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    NodeDef n = std::move(g.nodes[i]);
    const bool in_blocked = !n.inputs.empty() && n.inputs[0] >= 0 && blocked[size_t(n.inputs[0])];
    const Kind kind = kinds[i];
    if (kind == Kind::Conv && (in_blocked || wanted(n.outputs[0]))) {
      if (n.kernel != "conv2d" && n.inputs[3] >= 0 && !blocked[size_t(n.inputs[3])])
        n.inputs[3] = reordered(n.inputs[3], true);
      append_int_attr(n, in_blocked ? 3 : 2);
      blocked[size_t(n.outputs[0])] = 1;
    } else if (kind == Kind::Pool && in_blocked) {
      append_int_attr(n, 3);
      blocked[size_t(n.outputs[0])] = 1;
    } else if (kind == Kind::Avg && in_blocked) {
      append_int_attr(n, 1);
    } else if (in_blocked && n.kernel == "reshape" && n.dtype == DType::f32 && n.inputs.size() == 1) {
      // A flatten of a blocked value: the reorder writes its output (no second copy).
      n.op = n.kernel = "reorder_nchw16c";
      n.fn = reorder;
      n.symbolic_attrs = false;
      n.attrs.clear();
      n.static_attrs.values.clear();
      append_int_attr(n, 0);
    } else {
      for (int& v : n.inputs)
        if (v >= 0 && blocked[size_t(v)]) v = reordered(v, false);
    }
    nodes.push_back(std::move(n));
  }
  for (int& v : g.outputs)
    if (blocked[size_t(v)]) v = reordered(v, false);
  g.nodes = std::move(nodes);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int v : g.nodes[i].outputs) g.values[size_t(v)].producer = int(i);
}

}  // namespace fw
