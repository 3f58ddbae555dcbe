// registry.cpp: the kernel table; see registry.h.
#include "kernels/registry.h"

#include <array>
#include <map>

namespace fw {
namespace {
std::map<std::string, std::array<KernelFn, kNumDTypes>>& table() {
  static auto* t = new std::map<std::string, std::array<KernelFn, kNumDTypes>>();
  return *t;
}
}  // namespace

void register_kernel(const std::string& op, DType dtype, KernelFn fn) {
  auto& slot = table()[op];
  slot[int(dtype)] = fn;
}

KernelFn find_kernel(const std::string& op, DType dtype) {
  auto& t = table();
  auto it = t.find(op);
  if (it == t.end()) return nullptr;
  return it->second[int(dtype)];
}

std::vector<std::pair<std::string, std::vector<DType>>> list_kernels() {
  std::vector<std::pair<std::string, std::vector<DType>>> out;
  for (auto& [name, slots] : table()) {
    std::vector<DType> dts;
    for (int i = 0; i < kNumDTypes; ++i)
      if (slots[i]) dts.push_back(DType(i));
    out.emplace_back(name, dts);
  }
  return out;
}

}  // namespace fw
