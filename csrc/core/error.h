// error.h: the one exception type of the C++ core. Kernels and the runtime throw fw::Error
// for bad input; the bindings turn it into a Python exception, fwrun into a message.
// Never abort, never assert on user data.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace fw {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// An index out of range (embedding rows, class targets): Python IndexError, like torch.
class IndexError : public Error {
 public:
  explicit IndexError(const std::string& msg) : Error(msg) {}
};

namespace detail {
inline void build_msg(std::ostringstream&) {}
template <class T, class... Rest>
void build_msg(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  build_msg(os, rest...);
}
}  // namespace detail

template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  std::ostringstream os;
  detail::build_msg(os, args...);
  throw Error(os.str());
}

template <class... Args>
[[noreturn]] void fail_index(const Args&... args) {
  std::ostringstream os;
  detail::build_msg(os, args...);
  throw IndexError(os.str());
}

}  // namespace fw

// Like FW_CHECK, but raises fw::IndexError (Python IndexError).
#define FW_CHECK_INDEX(cond, ...)    \
  do {                               \
    if (!(cond)) {                   \
      ::fw::fail_index(__VA_ARGS__); \
    }                                \
  } while (0)

#define FW_CHECK(cond, ...)      \
  do {                           \
    if (!(cond)) {               \
      ::fw::fail(__VA_ARGS__);   \
    }                            \
  } while (0)

// Runtime CPU dispatch for hot loops: one binary, widest vectors the CPU has. GCC only:
// clang rejects target_clones on templates (the clang build, e.g. the fuzzer, gets baseline code).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FW_TARGET_CLONES __attribute__((target_clones("avx512f", "avx2,fma", "default")))
#else
#define FW_TARGET_CLONES
#endif

namespace fw {
// Whether this CPU runs AVX-512F, for kernels with hand-written AVX-512 paths (built with
// __attribute__((target("avx512f"))) on x86-64 GCC/clang); false elsewhere.
inline bool cpu_has_avx512f() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
#else
  return false;
#endif
}
}  // namespace fw
