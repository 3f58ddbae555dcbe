// graph.h: the runtime's in-memory graph, as read from a model file (model_file.h).
//
// Values are numbered 0..n-1; each is defined exactly once: as a graph input, a constant
// (raw bytes in the model's data section) or an output of one node. Shapes and symbolic
// attributes are SymInt programs over the graph inputs' dims (symint.h). Nodes are in
// topological order and name their kernel by (key, dispatch dtype) in the one kernel table
// (kernels/registry.h); the loader resolves and validates all of it before anything runs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/attrs.h"
#include "core/dtype.h"
#include "kernels/registry.h"
#include "runtime/symint.h"

namespace fw {

struct ValueDef {
  enum Kind : uint8_t { Input, Const, NodeOutput };
  std::string name;
  DType dtype = DType::f32;
  std::vector<SymProgram> dims;  // one program per dim
  Kind kind = NodeOutput;
  int producer = -1;  // input index, const index or node index
};

// An attribute as stored: a concrete value, or (kind Int / Ints) with SymInt programs.
struct AttrSpec {
  AttrValue value;                   // concrete value (for symbolic ones: the kind only)
  bool symbolic = false;
  std::vector<SymProgram> programs;  // one for Int, one per element for Ints
};

struct NodeDef {
  std::string op;      // registry op name (messages)
  std::string kernel;  // kernel key in the table
  std::string source;  // user file:line, may be empty
  DType dtype = DType::f32;  // dispatch dtype
  KernelFn fn = nullptr;
  std::vector<int> inputs;  // value ids; -1 = absent optional input
  int runtime_inputs = 0;   // trailing inputs the runtime appended at load (prepack.h), not in the file
  std::vector<int> outputs;
  std::vector<AttrSpec> attrs;
  bool symbolic_attrs = false;
  Attrs static_attrs;  // the attributes when none is symbolic
};

struct ConstDef {
  int value = -1;
  uint64_t offset = 0;  // in the data section
  uint64_t nbytes = 0;
};

struct GraphDef {
  std::vector<ValueDef> values;
  std::vector<int> inputs;
  std::vector<int> outputs;
  std::vector<ConstDef> consts;
  std::vector<NodeDef> nodes;
};

// "node 3 'relu' (model.py:12)" for messages.
std::string describe_node(const GraphDef& g, size_t index);

}  // namespace fw
