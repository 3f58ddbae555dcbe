// parallel.h: the one owner of intra-op parallelism (eager kernels and the graph runtime).
// A fixed pool of workers that spin for a while after each task (FW_SPIN_US, default 40 ms)
// and then sleep on a condition variable. parallel_for inside a parallel region runs
// serially. OpenBLAS always runs with one thread: gemm_strided splits big products over this
// pool, so there is one set of threads, never two competing for the cores.
// After fork() the child starts with no workers and makes new ones on first use.
#pragma once
#include <cstdint>

#include "core/error.h"

namespace fw {

void set_num_threads(int n);
int get_num_threads();
bool in_parallel_region();

// Runs f(begin, end) over [0, n) split into at most get_num_threads() shares of at least
// `grain` items, share i to thread i (the caller is thread 0); a share of several grains is
// cut into up to 4 pieces, which an idle thread takes over from a thread that is off its core.
// f sees any subrange: results must not depend on how [0, n) is cut. Exceptions from the
// pieces are rethrown in the caller (the first one).
// f(begin, end) as a plain function pointer and context: no std::function (which allocates
// for a lambda with more than two captures) per parallel loop.
using RangeFn = void (*)(const void* ctx, int64_t begin, int64_t end);
void parallel_for_impl(int64_t n, int64_t grain, RangeFn fn, const void* ctx);

template <class F>
void parallel_for(int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  if (n <= grain || get_num_threads() == 1 || in_parallel_region()) {
    f(int64_t(0), n);
    return;
  }
  parallel_for_impl(
      n, grain, [](const void* ctx, int64_t b, int64_t e) { (*static_cast<const F*>(ctx))(b, e); }, &f);
}


}  // namespace fw
