// fuzz_model_file.cpp: the libFuzzer target of the model-file loader (docs/model-format.md).
//
// Each input is taken as a model file: the header's file size and graph checksum are
// recomputed first (so mutations reach the graph parser instead of stopping at the CRC),
// then the bytes are loaded with Model::from_bytes (parse + validate + kernel lookup), and a
// model that loads is planned and run once on zero inputs (symbolic dims = 2) under a small
// memory cap, so that graphs the validator accepts but kernels cannot handle are found too.
// The only acceptable failure is fw::Error; a crash, sanitizer report, leak, timeout or
// huge allocation is a bug. Built only by `cmake -DFW_FUZZ=ON` with clang; scripts/fuzz.sh
// builds it, makes the seed corpus and runs it (docs/runtime.md, "Fuzzing the loader").
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/parallel.h"
#include "runtime/runtime.h"

namespace {

constexpr uint64_t kMaxMemory = uint64_t(1) << 24;  // per value and per arena
constexpr uint64_t kMaxInputBytes = uint64_t(1) << 24;
constexpr int64_t kSymbolicDim = 2;

uint32_t crc32(uint32_t crc, const uint8_t* p, size_t n) {
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  return ~crc;
}

// The header's file size and CRC made to match the (mutated) bytes, where the graph section fits.
void fix_header(std::vector<uint8_t>& b) {
  if (b.size() < 64) return;
  uint64_t size = b.size(), graph_size = 0;
  std::memcpy(b.data() + 16, &size, 8);
  std::memcpy(&graph_size, b.data() + 32, 8);
  if (graph_size > size - 64) return;
  uint32_t crc = crc32(crc32(0, b.data(), 56), b.data() + 64, size_t(graph_size));
  std::memcpy(b.data() + 56, &crc, 4);
}

void run_once(const fw::Model& m) {
  std::vector<fw::Shape> shapes;
  std::vector<std::vector<uint8_t>> buffers;
  uint64_t total = 0;
  for (size_t i = 0; i < m.num_inputs(); ++i) {
    fw::ValueInfo info = m.input_info(i);
    uint64_t numel = 1;
    for (int64_t& d : info.shape) {
      if (d < 0) d = kSymbolicDim;
      if (__builtin_mul_overflow(numel, uint64_t(d), &numel)) return;
    }
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(numel, uint64_t(fw::dtype_bytes(info.dtype)), &bytes)) return;
    if (bytes > kMaxInputBytes - total) return;  // not a loader question: too big to bother
    total += bytes;
    shapes.push_back(info.shape);
  }
  for (size_t i = 0; i < shapes.size(); ++i) {
    fw::ValueInfo info = m.input_info(i);
    uint64_t numel = 1;
    for (int64_t d : shapes[i]) numel *= uint64_t(d);
    buffers.emplace_back(size_t(numel * fw::dtype_bytes(info.dtype)) + 1, uint8_t(0));
  }
  std::vector<fw::TensorRef> inputs;
  for (size_t i = 0; i < shapes.size(); ++i)
    inputs.push_back({buffers[i].data(), m.input_info(i).dtype, shapes[i]});
  (void)m.memory_plan(shapes);
  (void)m.run(inputs);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fw::set_num_threads(1);  // one thread: deterministic, and sanitizers see one stack
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  fix_header(bytes);
  fw::ModelOptions options;
  options.max_memory_bytes = kMaxMemory;
  options.plan_cache_size = 1;
  options.arena_pool_size = 1;
  try {
    fw::Model m = fw::Model::from_bytes(bytes.data(), bytes.size(), options);
    (void)m.nodes();
    for (size_t i = 0; i < m.num_outputs(); ++i) (void)m.output_info(i);
    run_once(m);
  } catch (const fw::Error&) {
    // a clear error: what a hostile file must get
  }
  return 0;
}
