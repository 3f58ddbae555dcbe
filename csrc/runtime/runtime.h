// runtime.h: the public C++ API of the framework graph runtime (#include <framework/runtime.h>).
//
// Load a model file written by framework.jit.runtime.save (docs/model-format.md), then run it
// on contiguous row-major input buffers. Python is never needed. A Model is cheap to copy (it
// shares one loaded graph) and safe to run from several threads at once: each call takes its
// own arena from a pool; memory plans are cached per input-shape signature (bounded cache).
// Errors (bad file, wrong input shapes or dtypes, kernel failures) throw fw::Error, a
// std::runtime_error whose what() names the problem; nothing aborts.
//
//   fw::Model m = fw::Model::load("model.fwm");
//   std::vector<float> x(2 * 784);
//   auto outs = m.run({fw::TensorRef{x.data(), fw::DType::f32, {2, 784}}});
//   const float* y = outs[0].data<float>();   // outs[0].shape == {2, 10}
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#if __has_include("core/dtype.h")
#include "core/dtype.h"
#include "core/error.h"
#else
namespace fw {
// Element types; the codes are those of the model file. Same definition as core/dtype.h.
enum class DType : uint8_t { f32 = 0, f64 = 1, i32 = 2, i64 = 3, b8 = 4 };
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};
}  // namespace fw
#endif

#define FW_API __attribute__((visibility("default")))

namespace fw {

using Shape = std::vector<int64_t>;

// A caller-owned contiguous buffer (inputs are only read).
struct TensorRef {
  void* data = nullptr;
  DType dtype = DType::f32;
  Shape shape;
};

// A runtime-owned output buffer (64-byte aligned).
struct OwnedTensor {
  DType dtype = DType::f32;
  Shape shape;
  std::shared_ptr<void> storage;
  size_t nbytes = 0;

  void* raw() const { return storage.get(); }
  template <class T> const T* data() const { return static_cast<const T*>(storage.get()); }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct ModelOptions {
  uint64_t max_memory_bytes = uint64_t(16) << 30;  // per value and per arena; larger plans error
  size_t plan_cache_size = 8;                      // input-shape signatures kept
  size_t arena_pool_size = 16;                     // idle arenas kept for reuse
  bool prepack = true;  // pack linear weights at load for small batches (value "<w>.packed")
  bool blocked_layout = true;  // with prepack: channel-blocked activations between convs (layout.h)
  bool alias_views = true;     // reshape/clone/contiguous select outputs share their input's buffer (planner.h)
};

struct NodeTiming {
  int node;
  double start;    // seconds since the call began
  double seconds;  // the kernel's duration (0 for a node whose output is an alias: nothing ran)
};

// One value of a memory plan (for tools and tests).
struct PlanEntry {
  std::string name;
  std::string placement;  // "input", "const", "arena", "output", "alias"
  uint64_t offset;        // arena offset, output index, or byte offset inside alias_of's buffer
  uint64_t nbytes;
  int first_node, last_node;  // live range of arena values (producer .. last user for aliases)
  Shape shape;
  int alias_of = -1;  // an alias: the value whose buffer it lives in (never itself an alias)
};

struct ValueInfo {
  std::string name;
  DType dtype;
  Shape shape;  // -1 for dims that depend on the input shapes
};

struct NodeInfo {
  std::string op, kernel, source;
  std::vector<int> inputs, outputs;  // value indices (-1 = absent), as in the model file
  // Per static attribute: an Int as {value}, Ints as themselves, any other kind empty (the
  // runtime's appended layout attribute included).
  std::vector<std::vector<int64_t>> int_attrs;
};

class FW_API Model {
 public:
  static Model load(const std::string& path, const ModelOptions& options = {});  // memory-mapped
  static Model from_bytes(const void* data, size_t size, const ModelOptions& options = {});  // copied
  // Runs from the caller's bytes without copying them; the shared_ptr keeps them alive for as
  // long as the model (and its copies) live. `data` must be 64-byte aligned.
  static Model from_shared(std::shared_ptr<const void> data, size_t size, const ModelOptions& options = {});

  size_t num_inputs() const;
  size_t num_outputs() const;
  ValueInfo input_info(size_t i) const;
  ValueInfo output_info(size_t i) const;
  DType output_dtype(size_t i) const;
  std::vector<NodeInfo> nodes() const;
  std::vector<std::string> value_names() const;

  std::vector<Shape> output_shapes(const std::vector<Shape>& input_shapes) const;
  // Runs into caller-allocated outputs (shapes from output_shapes()).
  void run(const std::vector<TensorRef>& inputs, const std::vector<TensorRef>& outputs,
           std::vector<NodeTiming>* timings = nullptr) const;
  std::vector<OwnedTensor> run(const std::vector<TensorRef>& inputs) const;

  std::string memory_plan(const std::vector<Shape>& input_shapes) const;
  std::vector<PlanEntry> plan_entries(const std::vector<Shape>& input_shapes, uint64_t* peak_bytes) const;
  size_t cached_plans() const;
  // The model file's bytes (the mapping or copy the model runs from), e.g. to save it again.
  std::pair<const void*, size_t> file_bytes() const;

  struct Impl;

 private:
  explicit Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<Impl> impl_;
};

// Threads the kernels use (the same pool eager mode uses; default: the number of cores).
FW_API void set_runtime_threads(int n);
FW_API int runtime_threads();
FW_API size_t dtype_bytes(DType t);

}  // namespace fw
