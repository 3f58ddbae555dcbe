// registry.h: the one C++ kernel table, shared by eager dispatch and the graph runtime.
//
// Every kernel has the same signature: it reads input views and attributes and writes into
// output views that the caller has already allocated with the shapes the op's Python OpDef
// inferred. A kernel never allocates its outputs, so the runtime can point them into its
// arena. Kernels are keyed by (op name, dtype); the dtype is the op's dispatch dtype
// (usually that of the first input). A kernel validates what it relies on and throws
// fw::Error, never crashes, on inconsistent views.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/attrs.h"
#include "core/tensor_view.h"

namespace fw {

struct KernelArgs {
  const TensorView* in = nullptr;
  int n_in = 0;
  TensorView* out = nullptr;
  int n_out = 0;
  const Attrs* attrs = nullptr;

  const TensorView& input(int i) const {
    FW_CHECK(i < n_in, "kernel expected input #", i, ", got ", n_in, " inputs");
    FW_CHECK(in[i].data != nullptr, "kernel input #", i, " is absent (None) but required");
    return in[i];
  }
  TensorView& output(int i) const {
    FW_CHECK(i < n_out, "kernel expected output #", i, ", got ", n_out, " outputs");
    return out[i];
  }
  bool has_input(int i) const { return i < n_in && in[i].data != nullptr; }
};

using KernelFn = void (*)(const KernelArgs&);

void register_kernel(const std::string& op, DType dtype, KernelFn fn);
KernelFn find_kernel(const std::string& op, DType dtype);  // nullptr if absent
std::vector<std::pair<std::string, std::vector<DType>>> list_kernels();

}  // namespace fw

// Defines register_<family>() and runs it at load time. One per kernel file.
#define FW_REGISTER_KERNELS(family)                                 \
  static void fw_register_##family();                               \
  namespace {                                                       \
  struct FwRegistrar_##family {                                     \
    FwRegistrar_##family() { fw_register_##family(); }              \
  } fw_registrar_##family;                                          \
  }                                                                 \
  static void fw_register_##family()
