// planner.cpp: shape evaluation and arena placement; see planner.h.
#include "runtime/planner.h"

#include <algorithm>
#include <iomanip>
#include <sstream>

namespace fw {
namespace {

constexpr uint64_t kAlign = 64;

uint64_t round_up(uint64_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

const char* short_dtype(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f64: return "f64";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
    case DType::b8: return "bool";
  }
  return "?";
}

void check_inputs(const GraphDef& g, const InputShapes& shapes) {
  FW_CHECK(shapes.size() == g.inputs.size(), "the graph takes ", g.inputs.size(), " inputs, got ",
           shapes.size());
  for (size_t i = 0; i < shapes.size(); ++i) {
    const ValueDef& v = g.values[size_t(g.inputs[i])];
    FW_CHECK(shapes[i].size() == v.dims.size(), "input ", i, " '", v.name, "': expected ", v.dims.size(),
             " dims, got shape ", shape_str(shapes[i]));
    for (int64_t d : shapes[i]) FW_CHECK(d >= 0, "input ", i, " '", v.name, "': negative dim in ", shape_str(shapes[i]));
  }
}

// Evaluates every value's shape; inputs must agree with their own (possibly fixed) dims.
void eval_shapes(const GraphDef& g, const InputShapes& shapes, uint64_t max_bytes, Plan& p) {
  size_t nv = g.values.size();
  p.views.assign(nv, TensorView());
  p.nbytes.assign(nv, 0);
  for (size_t id = 0; id < nv; ++id) {
    const ValueDef& v = g.values[id];
    int64_t shape[kMaxDims];
    uint64_t numel = 1, span = dtype_size(v.dtype);  // span: the size were every empty dim 1
    for (size_t d = 0; d < v.dims.size(); ++d) {
      int64_t s = eval_program(v.dims[d], shapes);
      FW_CHECK(s >= 0, "value '", v.name, "' gets negative dim ", s, " for input shapes given");
      shape[d] = s;
      FW_CHECK(!__builtin_mul_overflow(numel, uint64_t(s), &numel), "value '", v.name, "' is too large");
      // An empty tensor's other dims still make strides and loop bounds: bound them too.
      FW_CHECK(!__builtin_mul_overflow(span, uint64_t(std::max<int64_t>(s, 1)), &span) && span <= max_bytes,
               "value '", v.name, "' has dims beyond the memory limit of ", max_bytes, " bytes");
    }
    if (v.kind == ValueDef::Input) {
      const auto& given = shapes[size_t(v.producer)];
      for (size_t d = 0; d < v.dims.size(); ++d)
        FW_CHECK(given[d] == shape[d], "input ", v.producer, " '", v.name, "': dim ", d, " must be ", shape[d],
                 ", got shape ", shape_str(given));
    }
    uint64_t bytes = 0;
    FW_CHECK(!__builtin_mul_overflow(numel, uint64_t(dtype_size(v.dtype)), &bytes) && bytes <= max_bytes,
             "value '", v.name, "' would need more than the memory limit of ", max_bytes, " bytes");
    p.views[id] = make_view(nullptr, v.dtype, int(v.dims.size()), shape);
    p.nbytes[id] = bytes;
  }
}

void eval_attrs(const GraphDef& g, const InputShapes& shapes, Plan& p) {
  p.node_attrs.assign(g.nodes.size(), Attrs());
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const NodeDef& n = g.nodes[i];
    if (!n.symbolic_attrs) continue;
    Attrs& out = p.node_attrs[i];
    for (const AttrSpec& a : n.attrs) {
      if (!a.symbolic) {
        out.values.push_back(a.value);
      } else if (a.value.kind == AttrValue::Int) {
        out.values.push_back(AttrValue::from_int(eval_program(a.programs[0], shapes)));
      } else {
        std::vector<int64_t> v;
        for (const SymProgram& prog : a.programs) v.push_back(eval_program(prog, shapes));
        out.values.push_back(AttrValue::from_ints(std::move(v)));
      }
    }
  }
}

// The byte offset at which select(dim=#0, index=#1) finds its output inside the contiguous
// input x when that block is contiguous (every dim before `dim` has size 1), else -1. A
// crafted file's odd attributes or shapes also give -1: the kernel then runs and reports them.
int64_t select_offset(const Attrs& a, const TensorView& x, const TensorView& y) {
  if (a.size() < 2 || a.values[0].kind != AttrValue::Int || a.values[1].kind != AttrValue::Int) return -1;
  const int64_t dim = a.values[0].i;
  if (dim < 0 || dim >= x.ndim || y.ndim != x.ndim - 1) return -1;
  int64_t idx = a.values[1].i;
  if (idx < 0) idx += x.shape[dim];
  if (idx < 0 || idx >= x.shape[dim]) return -1;
  for (int d = 0, j = 0; d < x.ndim; ++d) {
    if (d < dim && x.shape[d] != 1) return -1;
    if (d != dim && y.shape[j++] != x.shape[d]) return -1;
  }
  // idx * stride < numel: the offset lies inside x (whose byte size the planner bounded).
  return idx * x.strides[dim] * int64_t(dtype_size(x.dtype));
}

// Whether permute(dims=#0) keeps the memory order of the contiguous x: y's dims are x's
// permuted, and the dims of size > 1 keep their order (moving dims of size 1, a batch of one
// say, moves no element). A crafted file's odd attributes or shapes give false.
bool order_kept(const Attrs& a, const TensorView& x, const TensorView& y) {
  if (a.size() < 1 || a.values[0].kind != AttrValue::Ints) return false;
  const std::vector<int64_t>& dims = a.values[0].ints;
  if (int64_t(dims.size()) != x.ndim || y.ndim != x.ndim) return false;
  uint32_t seen = 0;
  int64_t last = -1;
  for (int j = 0; j < y.ndim; ++j) {
    const int64_t src = dims[size_t(j)] < 0 ? dims[size_t(j)] + x.ndim : dims[size_t(j)];
    if (src < 0 || src >= x.ndim || (seen >> src & 1u) || y.shape[j] != x.shape[src]) return false;
    seen |= 1u << src;
    if (x.shape[src] == 1) continue;
    if (src < last) return false;
    last = src;
  }
  return true;
}

bool same_shape(const TensorView& x, const TensorView& y) {
  if (x.ndim != y.ndim) return false;
  for (int d = 0; d < x.ndim; ++d)
    if (x.shape[d] != y.shape[d]) return false;
  return true;
}

// The byte offset of node i's output inside its input's buffer when the output can be an
// alias of it (planner.h), else -1.
int64_t alias_offset(const GraphDef& g, const Plan& p, size_t i) {
  const NodeDef& n = g.nodes[i];
  if (n.inputs.size() != 1 || n.outputs.size() != 1 || n.inputs[0] < 0) return -1;
  const size_t in = size_t(n.inputs[0]), out = size_t(n.outputs[0]);
  if (p.placement[out] != Placement::Arena) return -1;  // a graph output: the kernel fills the caller's buffer
  const TensorView &x = p.views[in], &y = p.views[out];
  if (x.dtype != y.dtype) return -1;
  int64_t off = -1;
  if (n.kernel == "reshape") off = x.numel() == y.numel() ? 0 : -1;
  else if (n.kernel == "copy") off = same_shape(x, y) ? 0 : -1;  // clone (or a no-op to / expand)
  else if (n.kernel == "select") off = select_offset(p.attrs_of(g, i), x, y);
  else if (n.kernel == "permute") off = order_kept(p.attrs_of(g, i), x, y) ? 0 : -1;
  if (off < 0 || uint64_t(off) > p.nbytes[in] || p.nbytes[out] > p.nbytes[in] - uint64_t(off)) return -1;
  return off;
}

// Marks the aliases (planner.h) in node order, so that an alias's input is resolved first.
void mark_aliases(const GraphDef& g, Plan& p) {
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const int64_t off = alias_offset(g, p, i);
    if (off < 0) continue;
    const size_t in = size_t(g.nodes[i].inputs[0]), out = size_t(g.nodes[i].outputs[0]);
    const bool chained = p.placement[in] == Placement::Alias;
    p.placement[out] = Placement::Alias;
    p.alias_root[out] = chained ? p.alias_root[in] : int(in);
    p.offset[out] = (chained ? p.offset[in] : 0) + uint64_t(off);
    p.skip_node[i] = 1;
  }
  for (size_t id = 0; id < g.values.size(); ++id) {
    const int root = p.alias_root[id];
    if (root >= 0 && p.placement[size_t(root)] == Placement::Arena)
      p.last_use[size_t(root)] = std::max(p.last_use[size_t(root)], p.last_use[id]);
  }
}

void place_values(const GraphDef& g, uint64_t max_bytes, bool alias_views, Plan& p) {
  size_t nv = g.values.size();
  p.placement.assign(nv, Placement::Arena);
  p.offset.assign(nv, 0);
  p.alias_root.assign(nv, -1);
  p.skip_node.assign(g.nodes.size(), 0);
  p.first_use.assign(nv, -1);
  p.last_use.assign(nv, -1);
  for (size_t id = 0; id < nv; ++id) {
    const ValueDef& v = g.values[id];
    if (v.kind == ValueDef::Input) p.placement[id] = Placement::Input;
    if (v.kind == ValueDef::Const) p.placement[id] = Placement::Const;
    if (v.kind == ValueDef::NodeOutput) p.first_use[id] = p.last_use[id] = v.producer;
  }
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    int id = g.outputs[k];
    if (p.placement[size_t(id)] == Placement::Arena) {
      p.placement[size_t(id)] = Placement::Output;
      p.offset[size_t(id)] = k;
    } else {
      p.output_copies.emplace_back(int(k), id);
    }
  }
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int id : g.nodes[i].inputs)
      if (id >= 0) p.last_use[size_t(id)] = std::max(p.last_use[size_t(id)], int(i));
  if (alias_views) mark_aliases(g, p);
  std::vector<int> order;
  for (size_t id = 0; id < nv; ++id)
    if (p.placement[id] == Placement::Arena) order.push_back(int(id));
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    return round_up(p.nbytes[size_t(a)]) > round_up(p.nbytes[size_t(b)]);
  });
  struct Placed {
    uint64_t begin, end;
    int first, last;
  };
  std::vector<Placed> placed;
  std::vector<const Placed*> live;
  for (int id : order) {
    uint64_t size = std::max(kAlign, round_up(p.nbytes[size_t(id)]));
    int first = p.first_use[size_t(id)], last = p.last_use[size_t(id)];
    live.clear();
    for (const Placed& q : placed)
      if (q.first <= last && first <= q.last) live.push_back(&q);
    std::sort(live.begin(), live.end(), [](const Placed* a, const Placed* b) { return a->begin < b->begin; });
    uint64_t off = 0;
    for (const Placed* q : live) {
      if (q->begin >= off + size) break;
      off = std::max(off, q->end);
    }
    placed.push_back({off, off + size, first, last});
    p.offset[size_t(id)] = off;
    p.arena_bytes = std::max(p.arena_bytes, off + size);
    p.intermediate_bytes += size;
    FW_CHECK(p.arena_bytes <= max_bytes, "the memory plan needs more than the memory limit of ", max_bytes,
             " bytes");
  }
}

void lay_out_slots(const GraphDef& g, Plan& p) {
  p.slot_views.clear();
  p.slot_value.clear();
  p.node_slot.clear();
  for (const NodeDef& n : g.nodes) {
    p.node_slot.push_back(uint32_t(p.slot_views.size()));
    for (int id : n.inputs) {
      p.slot_views.push_back(id >= 0 ? p.views[size_t(id)] : TensorView());
      p.slot_value.push_back(id);
    }
    for (int id : n.outputs) {
      p.slot_views.push_back(p.views[size_t(id)]);
      p.slot_value.push_back(id);
    }
  }
  p.node_slot.push_back(uint32_t(p.slot_views.size()));
}

}  // namespace

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

Plan make_plan(const GraphDef& g, const InputShapes& input_shapes, uint64_t max_bytes, bool alias_views) {
  check_inputs(g, input_shapes);
  Plan p;
  p.input_shapes = input_shapes;
  eval_shapes(g, input_shapes, max_bytes, p);
  eval_attrs(g, input_shapes, p);
  place_values(g, max_bytes, alias_views, p);
  lay_out_slots(g, p);
  for (int id : g.outputs) {
    const TensorView& v = p.views[size_t(id)];
    p.output_shapes.emplace_back(v.shape, v.shape + v.ndim);
  }
  return p;
}

std::string format_plan(const GraphDef& g, const Plan& p) {
  std::ostringstream os;
  os << "memory plan for input shapes";
  for (const auto& s : p.input_shapes) os << " " << shape_str(s);
  os << "\n";
  auto type_of = [&](size_t id) {
    const TensorView& v = p.views[id];
    std::ostringstream t;
    t << short_dtype(v.dtype) << "[";
    for (int d = 0; d < v.ndim; ++d) t << (d ? "," : "") << v.shape[d];
    t << "]";
    return t.str();
  };
  for (size_t id = 0; id < g.values.size(); ++id) {
    os << "  %" << std::left << std::setw(16) << g.values[id].name << " " << std::setw(22) << type_of(id) << " "
       << std::right << std::setw(10) << p.nbytes[id] << " B  ";
    switch (p.placement[id]) {
      case Placement::Input: os << "input"; break;
      case Placement::Const: os << "const"; break;
      case Placement::Output: os << "output #" << p.offset[id]; break;
      case Placement::Arena:
        os << "arena+" << p.offset[id] << "  live nodes " << p.first_use[id] << ".." << p.last_use[id];
        break;
      case Placement::Alias:
        os << "alias of %" << g.values[size_t(p.alias_root[id])].name << " +" << p.offset[id];
        break;
    }
    os << "\n";
  }
  os << "nodes:\n";
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const NodeDef& n = g.nodes[i];
    os << "  " << std::setw(4) << i << "  " << n.kernel << "<" << short_dtype(n.dtype) << ">(";
    for (size_t k = 0; k < n.inputs.size(); ++k)
      os << (k ? ", " : "") << (n.inputs[k] >= 0 ? "%" + g.values[size_t(n.inputs[k])].name : "None");
    os << ") -> ";
    for (size_t k = 0; k < n.outputs.size(); ++k) os << (k ? ", " : "") << "%" << g.values[size_t(n.outputs[k])].name;
    if (p.skip_node[i]) os << "  (alias: not run)";
    os << "\n";
  }
  os << "peak arena bytes: " << p.arena_bytes << " (sum of intermediates: " << p.intermediate_bytes << ")\n";
  return os.str();
}

}  // namespace fw
