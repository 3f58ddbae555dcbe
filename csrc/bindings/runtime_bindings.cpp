// runtime_bindings.cpp: Python access to the C++ graph runtime (csrc/runtime).
#include "bindings/convert.h"

namespace fw {
void register_runtime_bindings(pybind11::module_& m) { (void)m; }
}  // namespace fw
