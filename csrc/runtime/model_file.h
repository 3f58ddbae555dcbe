// model_file.h: reading the versioned model file (docs/model-format.md is the spec).
//
// The file is hostile input: every count, length, offset, id, dtype, shape program and
// kernel name is checked before use, allocations are bounded by the file's own size, and
// any violation throws fw::Error naming what is wrong and where. Never crashes or hangs.
// Python writes the file (framework/jit/runtime.py); C++ only reads it.
#pragma once
#include <cstddef>
#include <cstdint>

#include "runtime/graph.h"

namespace fw {

constexpr char kModelMagic[8] = {'F', 'W', 'M', 'O', 'D', 'E', 'L', '\0'};
constexpr uint32_t kModelFormatVersion = 1;
constexpr size_t kModelHeaderSize = 64;
constexpr size_t kModelAlign = 64;

struct ParsedModel {
  GraphDef graph;
  const uint8_t* data = nullptr;  // start of the data section (64-byte aligned in the file)
  uint64_t data_size = 0;
};

// Parses and validates a whole model file held in memory (`bytes` must stay alive).
ParsedModel parse_model(const uint8_t* bytes, size_t size);

}  // namespace fw
