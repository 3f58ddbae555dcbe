// allocator.cpp: size-class caching allocator; see allocator.h.
#include "core/allocator.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include "core/error.h"

namespace fw {
namespace {

constexpr size_t kAlign = 64;

// Small blocks round to 64 B, larger ones to 1/8 of their power of two, so a cached
// block is at most 12.5% bigger than asked for.
size_t size_class(size_t n) {
  if (n <= 4096) return (n + kAlign - 1) / kAlign * kAlign;
  size_t p = 1;
  while (p < n) p <<= 1;
  size_t step = p / 8;
  return (n + step - 1) / step * step;
}

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;
  int64_t allocated = 0, cached = 0, hits = 0, misses = 0;
  int64_t limit = int64_t(2) << 30;

  void trim_to(int64_t target) {
    // Frees the largest blocks first.
    while (cached > target && !free_blocks.empty()) {
      auto it = std::prev(free_blocks.end());
      while (!it->second.empty() && cached > target) {
        std::free(it->second.back());
        it->second.pop_back();
        cached -= int64_t(it->first);
      }
      if (it->second.empty()) free_blocks.erase(it);
    }
  }
};

Cache& cache() {
  static Cache* c = new Cache();
  return *c;
}

}  // namespace

void* cached_alloc(size_t nbytes) {
  size_t sz = size_class(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> g(c.mu);
    auto it = c.free_blocks.find(sz);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= int64_t(sz);
      c.allocated += int64_t(sz);
      ++c.hits;
      return p;
    }
    ++c.misses;
    c.allocated += int64_t(sz);
  }
  void* p = std::aligned_alloc(kAlign, sz);
  if (!p) {
    std::lock_guard<std::mutex> g(c.mu);
    c.trim_to(0);
    c.allocated -= int64_t(sz);
    p = std::aligned_alloc(kAlign, sz);
    if (!p) fail("out of memory allocating ", nbytes, " bytes");
    c.allocated += int64_t(sz);
  }
  return p;
}

void cached_free(void* p, size_t nbytes) {
  if (!p) return;
  size_t sz = size_class(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  c.allocated -= int64_t(sz);
  if (int64_t(sz) > c.limit) {
    std::free(p);
    return;
  }
  c.free_blocks[sz].push_back(p);
  c.cached += int64_t(sz);
  if (c.cached > c.limit) c.trim_to(c.limit);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  return {c.allocated, c.cached, c.hits, c.misses};
}

void allocator_empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  c.trim_to(0);
}

void allocator_set_cache_limit(int64_t bytes) {
  Cache& c = cache();
  std::lock_guard<std::mutex> g(c.mu);
  c.limit = bytes;
  c.trim_to(bytes);
}

void* thread_scratch(size_t nbytes, int slot) {
  struct Scratch {
    void* p = nullptr;
    size_t n = 0;
    ~Scratch() { std::free(p); }
  };
  thread_local Scratch slots[kScratchSlots];
  FW_CHECK(slot >= 0 && slot < kScratchSlots, "thread_scratch: slot ", slot, " out of range");
  Scratch& s = slots[slot];
  if (nbytes > s.n) {
    std::free(s.p);
    s.n = (nbytes + kAlign - 1) / kAlign * kAlign;
    s.p = std::aligned_alloc(kAlign, s.n);
    if (!s.p) {
      s.n = 0;
      fail("out of memory allocating ", nbytes, " bytes of kernel scratch");
    }
  }
  return s.p;
}

void* aligned_bytes(uint64_t n) {
  constexpr size_t kHuge = size_t(2) << 20;
  size_t size = size_t((std::max<uint64_t>(n, 1) + 63) / 64 * 64);
  const bool huge = size >= 2 * kHuge;
  if (huge) size = (size + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(huge ? kHuge : 64, size);
  if (!p) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (huge) ::madvise(p, size, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
  return p;
}

}  // namespace fw
