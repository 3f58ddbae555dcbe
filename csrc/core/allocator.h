// allocator.h: a caching host allocator for eager-mode tensors. Fresh large buffers cost
// page faults on every first touch (a new 64 MB output: ~20 ms vs ~1 ms reused), so freed
// blocks are kept by size class and handed out again. 64-byte aligned. Thread-safe.
// The graph runtime does not use it per value: it plans one arena per call instead.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fw {

void* cached_alloc(size_t nbytes);
void cached_free(void* p, size_t nbytes);

struct AllocatorStats {
  int64_t allocated_bytes;  // live, handed out
  int64_t cached_bytes;     // free, kept for reuse
  int64_t hits;
  int64_t misses;
};
AllocatorStats allocator_stats();
void allocator_empty_cache();
void allocator_set_cache_limit(int64_t bytes);

// A 64-byte aligned block for the graph runtime's big, long-lived buffers (arenas, pre-packed
// weights, model copies); free it with std::free. Blocks of 4 MB and more are 2 MB aligned and
// asked to be backed by transparent huge pages: first touches then take a few faults instead
// of one per 4 KB page (ResNet-18's packed weights: 11.7k faults, ~50 ms of load, before).
// Throws std::bad_alloc when out of memory.
void* aligned_bytes(uint64_t nbytes);

// Per-thread scratch for kernels (im2col buffers and the like); grows, never shrinks. A
// kernel that needs a second buffer while a helper it calls uses slot 0 takes slot 1 (a conv
// with a fused pool: its output map per sample, while the conv's bands use slot 0).
constexpr int kScratchSlots = 2;
void* thread_scratch(size_t nbytes, int slot = 0);

}  // namespace fw
