// runtime.cpp: the loaded model (graph + constants), the plan cache, the arena pool and the
// executor behind runtime.h. Runs nodes in order; no Python, no allocation per value.
#include "runtime/runtime.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <mutex>

#include "core/allocator.h"
#include "core/parallel.h"
#include "runtime/model_file.h"
#include "runtime/planner.h"
#include "runtime/layout.h"
#include "runtime/prepack.h"

namespace fw {
namespace {

alignas(64) uint8_t g_empty_storage[64];  // data pointer of present zero-size values

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// aligned_bytes (core/allocator.h) with the runtime's error on failure.
void* runtime_bytes(uint64_t n) {
  try {
    return aligned_bytes(n);
  } catch (const std::bad_alloc&) {
    fail("out of memory allocating ", n, " bytes");
  }
  return nullptr;
}

std::string file_error(const std::string& path, const char* what) {
  return "cannot " + std::string(what) + " model file '" + path + "': " + std::strerror(errno);
}

}  // namespace

struct Model::Impl {
  std::shared_ptr<const void> storage;  // the file bytes (mapping or copy)
  size_t storage_size = 0;
  ParsedModel model;
  ModelOptions options;
  std::vector<void*> const_ptr;  // per value (consts only)
  std::vector<PackedConst> packed;  // weights pre-packed at load (prepack.h)

  // Per-call scratch: the arena and the node argument views, pooled so that a steady
  // stream of calls allocates nothing.
  struct Workspace {
    void* arena = nullptr;
    uint64_t capacity = 0;
    std::vector<TensorView> views;
  };

  mutable std::mutex mu;
  mutable std::list<std::shared_ptr<const Plan>> plans;  // most recently used first
  mutable std::vector<Workspace> idle;                    // pooled workspaces

  Impl(std::shared_ptr<const void> bytes, size_t size, const ModelOptions& opts)
      : storage(std::move(bytes)), storage_size(size), options(opts) {
    model = parse_model(static_cast<const uint8_t*>(storage.get()), size);
    const GraphDef& g = model.graph;
    const_ptr.assign(g.values.size(), nullptr);
    for (const ConstDef& c : g.consts)
      const_ptr[size_t(c.value)] = c.nbytes ? const_cast<uint8_t*>(model.data + c.offset) : g_empty_storage;
    if (options.prepack) {
      packed = prepack_weights(model.graph, const_ptr, options.max_memory_bytes);
      const_ptr.resize(model.graph.values.size(), nullptr);
      for (const PackedConst& pc : packed) const_ptr[size_t(pc.value)] = pc.storage.get();
      if (options.blocked_layout) {
        assign_layouts(model.graph);
        const_ptr.resize(model.graph.values.size(), nullptr);
      }
    }
  }

  ~Impl() {
    for (auto& w : idle) std::free(w.arena);
  }

  template <class Shapes, class Same>
  std::shared_ptr<const Plan> plan_for(const Shapes& shapes, Same same) const {
    {
      std::lock_guard<std::mutex> lock(mu);
      for (auto it = plans.begin(); it != plans.end(); ++it) {
        if (same((*it)->input_shapes, shapes)) {
          if (it != plans.begin()) plans.splice(plans.begin(), plans, it);
          return plans.front();
        }
      }
    }
    InputShapes concrete;
    for (const auto& s : shapes) concrete.push_back(shape_of(s));
    auto plan = std::make_shared<const Plan>(
        make_plan(model.graph, concrete, options.max_memory_bytes, options.alias_views));
    std::lock_guard<std::mutex> lock(mu);
    plans.push_front(plan);
    while (plans.size() > std::max<size_t>(options.plan_cache_size, 1)) plans.pop_back();
    return plan;
  }

  static const Shape& shape_of(const Shape& s) { return s; }
  static const Shape& shape_of(const TensorRef& t) { return t.shape; }

  std::shared_ptr<const Plan> plan_for(const InputShapes& shapes) const {
    return plan_for(shapes, [](const InputShapes& a, const InputShapes& b) { return a == b; });
  }

  std::shared_ptr<const Plan> plan_for(const std::vector<TensorRef>& inputs) const {
    return plan_for(inputs, [](const InputShapes& a, const std::vector<TensorRef>& b) {
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i].shape) return false;
      return true;
    });
  }

  Workspace acquire_workspace(uint64_t need) const {
    Workspace w;
    {
      std::lock_guard<std::mutex> lock(mu);
      for (size_t i = 0; i < idle.size(); ++i) {
        if (idle[i].capacity >= need) {
          w = std::move(idle[i]);
          idle.erase(idle.begin() + long(i));
          return w;
        }
      }
      if (!idle.empty()) {  // too small: reuse its views, drop its arena (the pool does not grow)
        w = std::move(idle.back());
        idle.pop_back();
      }
    }
    std::free(w.arena);
    w.arena = runtime_bytes(need);
    w.capacity = need;
    return w;
  }

  void release_workspace(Workspace&& w) const {
    std::lock_guard<std::mutex> lock(mu);
    if (idle.size() < options.arena_pool_size) {
      idle.push_back(std::move(w));
    } else {
      std::free(w.arena);
    }
  }

  void check_buffer(const TensorRef& t, const TensorView& expected, const char* what, size_t i) const {
    FW_CHECK(t.dtype == expected.dtype, what, " ", i, ": expected dtype ", dtype_name(expected.dtype), ", got ",
             dtype_name(t.dtype));
    bool same = t.shape.size() == size_t(expected.ndim);
    for (int d = 0; same && d < expected.ndim; ++d) same = t.shape[size_t(d)] == expected.shape[d];
    FW_CHECK(same, what, " ", i, ": expected shape ", shape_str(Shape(expected.shape, expected.shape + expected.ndim)),
             ", got ", shape_str(t.shape));
    FW_CHECK(t.data != nullptr || expected.numel() == 0, what, " ", i, ": null data pointer");
  }

  // Where value `id` lives during a call.
  void* pointer_of(const Plan& p, int id, uint8_t* base, const std::vector<TensorRef>& inputs,
                   const std::vector<TensorRef>& outputs) const {
    void* ptr = nullptr;
    switch (p.placement[size_t(id)]) {
      case Placement::Input: ptr = inputs[size_t(model.graph.values[size_t(id)].producer)].data; break;
      case Placement::Const: ptr = const_ptr[size_t(id)]; break;
      case Placement::Arena: ptr = base + p.offset[size_t(id)]; break;
      case Placement::Output: ptr = outputs[size_t(p.offset[size_t(id)])].data; break;
      case Placement::Alias:
        if (p.nbytes[size_t(id)] == 0) break;
        ptr = static_cast<uint8_t*>(pointer_of(p, p.alias_root[size_t(id)], base, inputs, outputs)) + p.offset[size_t(id)];
        break;
    }
    return ptr ? ptr : g_empty_storage;
  }

  void execute(const Plan& p, const std::vector<TensorRef>& inputs, const std::vector<TensorRef>& outputs,
               std::vector<NodeTiming>* timings) const {
    const GraphDef& g = model.graph;
    FW_CHECK(inputs.size() == g.inputs.size(), "the graph takes ", g.inputs.size(), " inputs, got ", inputs.size());
    FW_CHECK(outputs.size() == g.outputs.size(), "the graph has ", g.outputs.size(), " outputs, got ",
             outputs.size(), " output buffers");
    for (size_t i = 0; i < inputs.size(); ++i) check_buffer(inputs[i], p.views[size_t(g.inputs[i])], "input", i);
    for (size_t i = 0; i < outputs.size(); ++i)
      check_buffer(outputs[i], p.views[size_t(g.outputs[i])], "output", i);
    struct Release {
      const Impl* self;
      Workspace w;
      ~Release() { self->release_workspace(std::move(w)); }
    } ws{this, acquire_workspace(p.arena_bytes)};
    uint8_t* base = static_cast<uint8_t*>(ws.w.arena);
    std::vector<TensorView>& views = ws.w.views;
    views.assign(p.slot_views.begin(), p.slot_views.end());
    for (size_t s = 0; s < views.size(); ++s)
      if (p.slot_value[s] >= 0) views[s].data = pointer_of(p, p.slot_value[s], base, inputs, outputs);
    auto call_start = timings ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      if (p.skip_node[i]) {  // its output is an alias of its input (planner.h): nothing to run
        if (timings) {
          double at = std::chrono::duration<double>(std::chrono::steady_clock::now() - call_start).count();
          timings->push_back({int(i), at, 0.0});
        }
        continue;
      }
      const NodeDef& n = g.nodes[i];
      KernelArgs args;
      args.in = views.data() + p.node_slot[i];
      args.n_in = int(n.inputs.size());
      args.out = views.data() + p.node_slot[i] + n.inputs.size();
      args.n_out = int(n.outputs.size());
      args.attrs = &p.attrs_of(g, i);
      auto t0 = timings ? std::chrono::steady_clock::now() : call_start;
      try {
        n.fn(args);
      } catch (const std::exception& e) {
        fail(describe_node(g, i), ": ", e.what());
      }
      if (timings) {
        auto t1 = std::chrono::steady_clock::now();
        timings->push_back({int(i), std::chrono::duration<double>(t0 - call_start).count(),
                            std::chrono::duration<double>(t1 - t0).count()});
      }
    }
    for (auto [k, id] : p.output_copies)
      if (p.nbytes[size_t(id)])
        std::memcpy(outputs[size_t(k)].data, pointer_of(p, id, base, inputs, outputs), p.nbytes[size_t(id)]);
  }

  ValueInfo info(int id) const {
    const ValueDef& v = model.graph.values[size_t(id)];
    ValueInfo vi{v.name, v.dtype, {}};
    for (const SymProgram& prog : v.dims) {
      int64_t d = -1;
      vi.shape.push_back(program_is_const(prog, &d) ? d : -1);
    }
    return vi;
  }
};

Model Model::load(const std::string& path, const ModelOptions& options) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(file_error(path, "open"));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    std::string msg = file_error(path, "stat");
    ::close(fd);
    throw Error(msg);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("model file '" + path + "' is not a regular file");
  }
  size_t size = size_t(st.st_size);
  if (size < kModelHeaderSize) {
    ::close(fd);
    fail("model file '", path, "': ", size, " bytes is too small to be a model file");
  }
  // MAP_POPULATE: the weights are read by the first run anyway; mapping them all at load is
  // cheaper than one page fault per 4 KB page during it.
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw Error(file_error(path, "map"));
  std::shared_ptr<const void> bytes(p, [size](const void* q) { ::munmap(const_cast<void*>(q), size); });
  try {
    return Model(std::make_shared<Impl>(std::move(bytes), size, options));
  } catch (const Error& e) {
    fail("'", path, "': ", e.what());
  }
}

Model Model::from_bytes(const void* data, size_t size, const ModelOptions& options) {
  void* copy = runtime_bytes(size);
  if (size) std::memcpy(copy, data, size);
  std::shared_ptr<const void> bytes(copy, [](const void* q) { std::free(const_cast<void*>(q)); });
  return Model(std::make_shared<Impl>(std::move(bytes), size, options));
}

Model Model::from_shared(std::shared_ptr<const void> data, size_t size, const ModelOptions& options) {
  FW_CHECK(size == 0 || reinterpret_cast<uintptr_t>(data.get()) % 64 == 0,
           "Model::from_shared: the model bytes must be 64-byte aligned");
  return Model(std::make_shared<Impl>(std::move(data), size, options));
}

size_t Model::num_inputs() const { return impl_->model.graph.inputs.size(); }
size_t Model::num_outputs() const { return impl_->model.graph.outputs.size(); }

ValueInfo Model::input_info(size_t i) const {
  FW_CHECK(i < num_inputs(), "input index ", i, " out of range");
  return impl_->info(impl_->model.graph.inputs[i]);
}

ValueInfo Model::output_info(size_t i) const {
  FW_CHECK(i < num_outputs(), "output index ", i, " out of range");
  return impl_->info(impl_->model.graph.outputs[i]);
}

DType Model::output_dtype(size_t i) const {
  FW_CHECK(i < num_outputs(), "output index ", i, " out of range");
  return impl_->model.graph.values[size_t(impl_->model.graph.outputs[i])].dtype;
}

std::vector<NodeInfo> Model::nodes() const {
  std::vector<NodeInfo> out;
  for (const NodeDef& n : impl_->model.graph.nodes) {
    std::vector<int> inputs(n.inputs.begin(), n.inputs.end() - n.runtime_inputs);  // as in the file
    std::vector<std::vector<int64_t>> ints;
    for (const AttrValue& a : n.static_attrs.values)
      ints.push_back(a.kind == AttrValue::Int ? std::vector<int64_t>{a.i}
                                              : a.kind == AttrValue::Ints ? a.ints : std::vector<int64_t>{});
    out.push_back({n.op, n.kernel, n.source, inputs, n.outputs, std::move(ints)});
  }
  return out;
}

std::vector<std::string> Model::value_names() const {
  std::vector<std::string> out;
  for (const ValueDef& v : impl_->model.graph.values) out.push_back(v.name);
  return out;
}

std::vector<Shape> Model::output_shapes(const std::vector<Shape>& input_shapes) const {
  return impl_->plan_for(input_shapes)->output_shapes;
}

void Model::run(const std::vector<TensorRef>& inputs, const std::vector<TensorRef>& outputs,
                std::vector<NodeTiming>* timings) const {
  auto plan = impl_->plan_for(inputs);
  impl_->execute(*plan, inputs, outputs, timings);
}

std::vector<OwnedTensor> Model::run(const std::vector<TensorRef>& inputs) const {
  auto plan = impl_->plan_for(inputs);
  const GraphDef& g = impl_->model.graph;
  std::vector<OwnedTensor> outs;
  std::vector<TensorRef> refs;
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    int id = g.outputs[k];
    OwnedTensor t;
    t.dtype = g.values[size_t(id)].dtype;
    t.shape = plan->output_shapes[k];
    t.nbytes = size_t(plan->nbytes[size_t(id)]);
    t.storage = std::shared_ptr<void>(runtime_bytes(t.nbytes), AlignedFree());
    refs.push_back({t.storage.get(), t.dtype, t.shape});
    outs.push_back(std::move(t));
  }
  impl_->execute(*plan, inputs, refs, nullptr);
  return outs;
}

std::string Model::memory_plan(const std::vector<Shape>& input_shapes) const {
  return format_plan(impl_->model.graph, *impl_->plan_for(input_shapes));
}

std::vector<PlanEntry> Model::plan_entries(const std::vector<Shape>& input_shapes, uint64_t* peak_bytes) const {
  auto p = impl_->plan_for(input_shapes);
  const GraphDef& g = impl_->model.graph;
  std::vector<PlanEntry> out;
  static const char* names[] = {"input", "const", "arena", "output", "alias"};
  for (size_t id = 0; id < g.values.size(); ++id) {
    const TensorView& v = p->views[id];
    out.push_back({g.values[id].name, names[int(p->placement[id])], p->offset[id], p->nbytes[id],
                   p->first_use[id], p->last_use[id], Shape(v.shape, v.shape + v.ndim), p->alias_root[id]});
  }
  if (peak_bytes) *peak_bytes = p->arena_bytes;
  return out;
}

size_t Model::cached_plans() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->plans.size();
}

std::pair<const void*, size_t> Model::file_bytes() const {
  return {impl_->storage.get(), impl_->storage_size};
}

void set_runtime_threads(int n) { set_num_threads(n); }
int runtime_threads() { return get_num_threads(); }
size_t dtype_bytes(DType t) { return dtype_size(t); }

}  // namespace fw
