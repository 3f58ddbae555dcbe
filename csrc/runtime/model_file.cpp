// model_file.cpp: the model-file parser; see model_file.h and docs/model-format.md.
#include "runtime/model_file.h"

#include <cstring>
#include <sstream>

namespace fw {
namespace {

constexpr uint32_t kMaxString = 1 << 16;
constexpr uint32_t kMaxProgram = 4096;
constexpr uint32_t kMaxNodeInputs = 64;
constexpr uint32_t kMaxNodeOutputs = 16;
constexpr uint32_t kMaxAttrs = 256;

enum AttrTag : uint8_t { kTagNone = 0, kTagInt = 1, kTagFloat = 2, kTagInts = 3, kTagFloats = 4,
                         kTagStr = 5, kTagSymInt = 6, kTagSymInts = 7 };

// Bounds-checked little-endian reads over the graph section.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}

  size_t remaining() const { return n_ - pos_; }
  size_t pos() const { return pos_; }

  void need(size_t k, const char* what) {
    FW_CHECK(k <= remaining(), "model file: graph section truncated while reading ", what,
             " at byte ", pos_, " (need ", k, ", have ", remaining(), ")");
  }
  template <class T> T raw(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  uint8_t u8(const char* what) { return raw<uint8_t>(what); }
  uint32_t u32(const char* what) { return raw<uint32_t>(what); }
  int32_t i32(const char* what) { return raw<int32_t>(what); }
  uint64_t u64(const char* what) { return raw<uint64_t>(what); }
  int64_t i64(const char* what) { return raw<int64_t>(what); }
  double f64(const char* what) { return raw<double>(what); }

  // A count of items that each take at least `min_bytes`: bounded by what is left.
  uint32_t count(const char* what, size_t min_bytes, uint32_t cap) {
    uint32_t n = u32(what);
    FW_CHECK(n <= cap, "model file: ", what, " = ", n, " exceeds the limit ", cap);
    FW_CHECK(uint64_t(n) * min_bytes <= remaining(), "model file: ", what, " = ", n,
             " does not fit in the remaining ", remaining(), " bytes");
    return n;
  }
  std::string str(const char* what) {
    uint32_t n = count(what, 1, kMaxString);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }
  SymProgram program(const char* what) {
    uint32_t n = count(what, 8, kMaxProgram);
    SymProgram prog(n);
    for (uint32_t i = 0; i < n; ++i) prog[i] = i64(what);
    return prog;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

// CRC-32 (IEEE 802.3, as zlib.crc32) of the header's first 56 bytes and the graph section.
uint32_t crc32_update(uint32_t crc, const uint8_t* p, size_t n) {
  static uint32_t table[256];
  static bool init = [] {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return true;
  }();
  (void)init;
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

template <class T> T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

DType read_dtype(Reader& r, const char* what) {
  uint8_t code = r.u8(what);
  FW_CHECK(dtype_valid(code), "model file: ", what, " has unknown dtype code ", int(code));
  return DType(code);
}

int read_value_id(Reader& r, size_t n_values, const char* what) {
  uint32_t id = r.u32(what);
  FW_CHECK(id < n_values, "model file: ", what, " refers to value ", id, ", graph has ", n_values);
  return int(id);
}

void read_values(Reader& r, GraphDef& g) {
  uint32_t n = r.count("value count", 6, 1u << 24);
  g.values.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    ValueDef& v = g.values[i];
    v.name = r.str("value name");
    v.dtype = read_dtype(r, "value");
    uint8_t ndim = r.u8("value rank");
    FW_CHECK(ndim <= kMaxDims, "model file: value '", v.name, "' has ", int(ndim), " dims (max ", kMaxDims, ")");
    v.dims.resize(ndim);
    for (uint8_t d = 0; d < ndim; ++d) v.dims[d] = r.program("shape program");
    v.producer = -1;
  }
}

void define(GraphDef& g, int id, ValueDef::Kind kind, int producer) {
  ValueDef& v = g.values[size_t(id)];
  FW_CHECK(v.producer < 0, "model file: value '", v.name, "' (#", id, ") is defined twice");
  v.kind = kind;
  v.producer = producer;
}

void read_io(Reader& r, GraphDef& g) {
  size_t nv = g.values.size();
  uint32_t ni = r.count("input count", 4, 1u << 16);
  for (uint32_t i = 0; i < ni; ++i) {
    int id = read_value_id(r, nv, "graph input");
    define(g, id, ValueDef::Input, int(i));
    g.inputs.push_back(id);
  }
  uint32_t no = r.count("output count", 4, 1u << 16);
  for (uint32_t i = 0; i < no; ++i) g.outputs.push_back(read_value_id(r, nv, "graph output"));
}

void read_consts(Reader& r, GraphDef& g) {
  size_t nv = g.values.size();
  uint32_t nc = r.count("constant count", 20, 1u << 24);
  for (uint32_t i = 0; i < nc; ++i) {
    ConstDef c;
    c.value = read_value_id(r, nv, "constant");
    c.offset = r.u64("constant offset");
    c.nbytes = r.u64("constant size");
    define(g, c.value, ValueDef::Const, int(i));
    g.consts.push_back(c);
  }
}

AttrSpec read_attr(Reader& r) {
  AttrSpec a;
  uint8_t tag = r.u8("attribute tag");
  switch (tag) {
    case kTagNone: break;
    case kTagInt: a.value = AttrValue::from_int(r.i64("int attribute")); break;
    case kTagFloat: a.value = AttrValue::from_float(r.f64("float attribute")); break;
    case kTagInts: {
      uint32_t n = r.count("int list length", 8, 1u << 24);
      std::vector<int64_t> v(n);
      for (auto& x : v) x = r.i64("int list");
      a.value = AttrValue::from_ints(std::move(v));
      break;
    }
    case kTagFloats: {
      uint32_t n = r.count("float list length", 8, 1u << 24);
      std::vector<double> v(n);
      for (auto& x : v) x = r.f64("float list");
      a.value = AttrValue::from_floats(std::move(v));
      break;
    }
    case kTagStr: a.value = AttrValue::from_str(r.str("string attribute")); break;
    case kTagSymInt:
      a.value.kind = AttrValue::Int;
      a.symbolic = true;
      a.programs.push_back(r.program("symbolic attribute"));
      break;
    case kTagSymInts: {
      uint32_t n = r.count("symbolic list length", 4, 1u << 16);
      a.value.kind = AttrValue::Ints;
      a.symbolic = true;
      for (uint32_t i = 0; i < n; ++i) a.programs.push_back(r.program("symbolic list"));
      break;
    }
    default: fail("model file: unknown attribute tag ", int(tag), " at byte ", r.pos() - 1);
  }
  return a;
}

void read_nodes(Reader& r, GraphDef& g) {
  size_t nv = g.values.size();
  uint32_t nn = r.count("node count", 16, 1u << 24);
  g.nodes.resize(nn);
  for (uint32_t i = 0; i < nn; ++i) {
    NodeDef& n = g.nodes[i];
    n.op = r.str("op name");
    n.kernel = r.str("kernel key");
    n.source = r.str("source location");
    n.dtype = read_dtype(r, "node dispatch");
    uint32_t nin = r.count("node input count", 4, kMaxNodeInputs);
    for (uint32_t k = 0; k < nin; ++k) {
      int32_t id = r.i32("node input");
      FW_CHECK(id >= -1 && id < int64_t(nv), "model file: node ", i, " '", n.op, "' input #", k,
               " refers to value ", id, ", graph has ", nv);
      if (id >= 0)
        FW_CHECK(g.values[size_t(id)].producer >= 0, "model file: node ", i, " '", n.op, "' uses value '",
                 g.values[size_t(id)].name, "' before it is defined (nodes must be in topological order)");
      n.inputs.push_back(id);
    }
    uint32_t nout = r.count("node output count", 4, kMaxNodeOutputs);
    for (uint32_t k = 0; k < nout; ++k) {
      int id = read_value_id(r, nv, "node output");
      define(g, id, ValueDef::NodeOutput, int(i));
      n.outputs.push_back(id);
    }
    uint32_t na = r.count("attribute count", 1, kMaxAttrs);
    for (uint32_t k = 0; k < na; ++k) {
      n.attrs.push_back(read_attr(r));
      if (n.attrs.back().symbolic) n.symbolic_attrs = true;
    }
  }
}

// Everything that needs the whole graph: definitions, programs, constants, kernels.
void validate_graph(GraphDef& g, uint64_t data_size) {
  std::vector<int> ranks;
  for (int id : g.inputs) ranks.push_back(int(g.values[size_t(id)].dims.size()));
  for (size_t i = 0; i < g.values.size(); ++i) {
    const ValueDef& v = g.values[i];
    FW_CHECK(v.producer >= 0, "model file: value '", v.name, "' (#", i, ") is never defined");
    for (size_t d = 0; d < v.dims.size(); ++d) {
      try {
        validate_program(v.dims[d], ranks);
      } catch (const Error& e) {
        fail("model file: value '", v.name, "' dim ", d, ": ", e.what());
      }
    }
  }
  for (const ConstDef& c : g.consts) {
    const ValueDef& v = g.values[size_t(c.value)];
    uint64_t numel = 1;
    for (const SymProgram& p : v.dims) {
      int64_t d = 0;
      FW_CHECK(program_is_const(p, &d) && d >= 0, "model file: constant '", v.name,
               "' must have a fixed non-negative shape");
      FW_CHECK(!__builtin_mul_overflow(numel, uint64_t(d), &numel), "model file: constant '", v.name,
               "' is too large");
    }
    uint64_t nbytes = 0;
    FW_CHECK(!__builtin_mul_overflow(numel, uint64_t(dtype_size(v.dtype)), &nbytes), "model file: constant '",
             v.name, "' is too large");
    FW_CHECK(nbytes == c.nbytes, "model file: constant '", v.name, "' has ", c.nbytes, " bytes, its shape needs ",
             nbytes);
    FW_CHECK(c.offset % kModelAlign == 0, "model file: constant '", v.name, "' offset ", c.offset,
             " is not 64-byte aligned");
    FW_CHECK(c.offset <= data_size && c.nbytes <= data_size - c.offset, "model file: constant '", v.name,
             "' (offset ", c.offset, ", ", c.nbytes, " bytes) lies outside the data section (", data_size,
             " bytes)");
  }
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    NodeDef& n = g.nodes[i];
    for (const AttrSpec& a : n.attrs)
      for (const SymProgram& p : a.programs) {
        try {
          validate_program(p, ranks);
        } catch (const Error& e) {
          fail("model file: ", describe_node(g, i), " attribute: ", e.what());
        }
      }
    n.fn = find_kernel(n.kernel, n.dtype);
    FW_CHECK(n.fn != nullptr, "model file: ", describe_node(g, i), ": this runtime has no kernel '", n.kernel,
             "' for ", dtype_name(n.dtype));
    if (!n.symbolic_attrs)
      for (const AttrSpec& a : n.attrs) n.static_attrs.values.push_back(a.value);
  }
}

}  // namespace

std::string describe_node(const GraphDef& g, size_t index) {
  std::ostringstream os;
  os << "node " << index;
  if (index < g.nodes.size()) {
    const NodeDef& n = g.nodes[index];
    os << " '" << n.op << "'";
    if (!n.source.empty()) os << " (" << n.source << ")";
  }
  return os.str();
}

ParsedModel parse_model(const uint8_t* bytes, size_t size) {
  FW_CHECK(size >= kModelHeaderSize, "model file: ", size, " bytes is too small to be a model file (header is ",
           kModelHeaderSize, " bytes)");
  FW_CHECK(std::memcmp(bytes, kModelMagic, 8) == 0, "model file: bad magic (not a framework model file)");
  uint32_t version = load_le<uint32_t>(bytes + 8);
  FW_CHECK(version == kModelFormatVersion, "model file: format version ", version,
           " is not supported by this runtime, which reads format version ", kModelFormatVersion,
           version > kModelFormatVersion ? " (the file is newer: upgrade the runtime)"
                                         : " (the file is older: re-export the model)");
  uint8_t endian = bytes[12];
  FW_CHECK(endian == 1, "model file: endianness flag ", int(endian),
           " is not supported (only little-endian files, flag 1, are)");
  uint64_t file_size = load_le<uint64_t>(bytes + 16);
  uint64_t graph_offset = load_le<uint64_t>(bytes + 24);
  uint64_t graph_size = load_le<uint64_t>(bytes + 32);
  uint64_t data_offset = load_le<uint64_t>(bytes + 40);
  uint64_t data_size = load_le<uint64_t>(bytes + 48);
  FW_CHECK(file_size == size, "model file: header says ", file_size, " bytes, the file has ", size,
           file_size > size ? " (truncated)" : " (trailing bytes)");
  FW_CHECK(graph_offset == kModelHeaderSize, "model file: graph section offset ", graph_offset, " (expected ",
           kModelHeaderSize, ")");
  FW_CHECK(graph_size <= size - graph_offset, "model file: graph section (", graph_size,
           " bytes) runs past the end of the file");
  FW_CHECK(data_offset % kModelAlign == 0, "model file: data section offset ", data_offset,
           " is not 64-byte aligned");
  FW_CHECK(data_offset >= graph_offset + graph_size && data_offset <= size && data_size <= size - data_offset,
           "model file: data section (offset ", data_offset, ", ", data_size, " bytes) is out of bounds");
  uint32_t stored_crc = load_le<uint32_t>(bytes + 56);
  uint32_t crc = crc32_update(crc32_update(0, bytes, 56), bytes + graph_offset, size_t(graph_size));
  FW_CHECK(crc == stored_crc, "model file: graph checksum mismatch (stored ", stored_crc, ", computed ", crc,
           "): the file is corrupted");
  ParsedModel m;
  Reader r(bytes + graph_offset, size_t(graph_size));
  read_values(r, m.graph);
  read_io(r, m.graph);
  read_consts(r, m.graph);
  read_nodes(r, m.graph);
  FW_CHECK(r.remaining() == 0, "model file: ", r.remaining(), " unread bytes at the end of the graph section");
  validate_graph(m.graph, data_size);
  m.data = bytes + data_offset;
  m.data_size = data_size;
  // A bool is one byte holding 0 or 1; any other byte read as a bool is undefined behaviour.
  for (const ConstDef& c : m.graph.consts) {
    if (m.graph.values[size_t(c.value)].dtype != DType::b8) continue;
    const uint8_t* p = m.data + c.offset;
    for (uint64_t j = 0; j < c.nbytes; ++j)
      FW_CHECK(p[j] <= 1, "model file: bool constant '", m.graph.values[size_t(c.value)].name, "' holds byte ",
               int(p[j]), " at file offset ", data_offset + c.offset + j, " (a bool must be 0 or 1)");
  }
  return m;
}

}  // namespace fw
