// parallel.cpp: a small fork-safe thread pool; see parallel.h for the contract.
//
// Waking a sleeping thread through a condition variable costs tens of microseconds on this
// kind of machine (a futex wake plus a reschedule), more than many kernels take. So a worker
// spins for a while after each task (env FW_SPIN_US, default 40 ms) before it sleeps, and the
// caller spins (then yields) while it waits for the workers: back-to-back kernels, eager or
// in the graph runtime, hand work over in well under a microsecond. OpenBLAS runs with one
// thread always; GEMMs are split over this pool (kernels/linalg.cpp), so no second pool of
// spinning threads competes for the cores.
#include "core/parallel.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FW_CPU_RELAX() _mm_pause()
#else
#define FW_CPU_RELAX() ((void)0)
#endif

extern "C" {
void scipy_openblas_set_num_threads(int num_threads);
}

namespace fw {
namespace {

thread_local bool t_in_region = false;

int default_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : int(n);
}

int64_t spin_us() {
  static const int64_t us = [] {
    const char* s = std::getenv("FW_SPIN_US");
    // 40 ms: onnxruntime's workers spin about as long after a run here (torch's OpenMP ~8 ms,
    // Intel OpenMP's KMP_BLOCKTIME 200 ms). Measured on the 2-core VM: with 200 us, a worker
    // that had slept ran the following calls slowly (MLP batch 1 in graph mode: suite median
    // 0.037 ms, p10 0.023), with 40 ms the same suite gave 0.027-0.031 ms.
    long v = s ? std::strtol(s, nullptr, 10) : 40000;
    return int64_t(std::clamp<long>(v, 0, 100000));
  }();
  return us;
}

using Clock = std::chrono::steady_clock;

constexpr int64_t kPieces = 4;  // pieces per participant's share (see Pool::run)

// One participant's pieces of a task: each slot holds the generation of the task that claimed
// it last, so claiming is one swap and nothing is reset between tasks. A cache line per share:
// a participant claiming its own pieces does not pull the line from the others.
struct alignas(64) Share {
  std::atomic<uint64_t> piece[kPieces];
};

// A parallel_for call, on the caller's stack while it runs.
struct Task {
  RangeFn fn;
  const void* ctx;
  int64_t n, chunks, per;  // items; shares; pieces per share
  uint64_t gen;            // the pool's generation for this task
  Share* claimed;
  std::mutex err_mu;
  std::exception_ptr first_error;

  // Runs piece c (share c / per) unless another participant claimed it first.
  void take(int64_t c) {
    std::atomic<uint64_t>& slot = claimed[size_t(c / per)].piece[c % per];
    if (slot.load(std::memory_order_relaxed) == gen || slot.exchange(gen, std::memory_order_acq_rel) == gen) return;
    const int64_t parts = chunks * per, b = n * c / parts, e = n * (c + 1) / parts;
    try {
      fn(ctx, b, e);
    } catch (...) {
      std::lock_guard<std::mutex> g(err_mu);
      if (!first_error) first_error = std::current_exception();
    }
  }

  // Participant `who`: its own share's pieces in order, then any left in the others, from
  // the end of each.
  void run(int who) {
    bool prev = t_in_region;
    t_in_region = true;
    if (who < chunks)
      for (int64_t j = 0; j < per; ++j) take(who * per + j);
    for (int64_t i = 1; i <= chunks; ++i) {
      const int64_t other = (who + i) % chunks;
      for (int64_t j = per - 1; j >= 0; --j) take(other * per + j);
    }
    t_in_region = prev;
  }
};

class Pool {
 public:
  static Pool& get() {
    static Pool* pool = new Pool();  // leaked on purpose: workers may outlive static dtors
    return *pool;
  }

  int num_threads() const { return num_threads_.load(); }

  void set_num_threads(int n) {
    std::lock_guard<std::mutex> run_lock(run_mu_);
    stop_workers();
    num_threads_ = std::max(1, n);
  }

  void run(int64_t n, int64_t grain, RangeFn fn, const void* ctx) {
    std::lock_guard<std::mutex> run_lock(run_mu_);  // one parallel region at a time
    int nt = num_threads_.load();
    int64_t chunks = std::min<int64_t>(nt, (n + grain - 1) / grain);
    if (chunks <= 1) {
      fn(ctx, 0, n);
      return;
    }
    ensure_workers(nt - 1);
    // Share c (of `chunks`) goes to participant c (the caller is 0, worker i is i + 1) when
    // that one is there to take it, so a kernel that runs again over the same data (a weight
    // split by columns, say) finds its half in the same core's cache. Each share is cut into
    // up to kPieces pieces of at least `grain`, run in order; a participant that runs out of
    // its own takes the pieces still unclaimed, from the end of each other share. So a worker
    // that is off its core (the host took the vCPU, or it is still asleep) holds up the call
    // by at most the piece it is in, not by its whole share.
    Task t;
    t.fn = fn;
    t.ctx = ctx;
    t.n = n;
    t.chunks = chunks;
    t.per = std::clamp<int64_t>(n / (grain * chunks), 1, kPieces);
    t.gen = hot_.generation.load(std::memory_order_relaxed) + 1;
    t.claimed = claimed_.get();
    hot_.task.store(&t, std::memory_order_relaxed);
    hot_.joined.store(tag_of(t.gen), std::memory_order_relaxed);
    hot_.generation.store(t.gen, std::memory_order_seq_cst);  // publishes task and joined
    if (hot_.sleepers.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lk(mu_); }  // a sleeper is either waiting or will see the new generation
      cv_.notify_all();
    }
    t.run(0);
    // Every piece is taken: close the task, so that a worker that has not joined yet (still
    // asleep, or off its core on a busy machine) skips it instead of being waited for. The
    // workers that joined finish their last pieces soon: spin, then yield the core to them.
    hot_.joined.fetch_or(kClosed, std::memory_order_acq_rel);
    for (int i = 0; (hot_.joined.load(std::memory_order_acquire) & kCountMask) != 0; ++i) {
      if (i < 1024)
        FW_CPU_RELAX();
      else
        sched_yield();
    }
    hot_.task.store(nullptr, std::memory_order_relaxed);
    if (t.first_error) std::rethrow_exception(t.first_error);
  }

  // Called in the child after fork(): the workers do not exist there.
  void forget_workers_after_fork() {
    new (&mu_) std::mutex();
    new (&run_mu_) std::mutex();
    new (&cv_) std::condition_variable();
    // The std::thread objects name threads that do not exist in the child: leak them
    // rather than detach or destroy them.
    new (&workers_) std::vector<std::thread>();
    hot_.task = nullptr;
    hot_.joined = 0;
    hot_.sleepers = 0;
    hot_.stopping = false;
    scipy_openblas_set_num_threads(1);
  }

 private:
  Pool() : num_threads_(default_threads()) {
    scipy_openblas_set_num_threads(1);
    pthread_atfork(nullptr, nullptr, [] { Pool::get().forget_workers_after_fork(); });
  }

  void ensure_workers(int count) {
    if (int(workers_.size()) == count) return;
    stop_workers();
    uint64_t gen = hot_.generation.load();
    claimed_.reset(new Share[size_t(count + 1)]);
    for (int i = 0; i <= count; ++i)
      for (auto& slot : claimed_[size_t(i)].piece) slot.store(0, std::memory_order_relaxed);
    for (int i = 0; i < count; ++i) workers_.emplace_back([this, gen, i] { worker_loop(gen, i + 1); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      hot_.stopping.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    hot_.stopping.store(false);
  }

  // Waits until the generation moves past `seen` (returns it) or the pool stops (returns seen).
  uint64_t wait_for_work(uint64_t seen) {
    const int64_t budget = spin_us();
    if (budget > 0) {
      const auto until = Clock::now() + std::chrono::microseconds(budget);
      // pause first; then yield, so that on a busy machine a runnable thread gets the core
      for (int i = 0;; ++i) {
        uint64_t g = hot_.generation.load(std::memory_order_acquire);
        if (g != seen || hot_.stopping.load(std::memory_order_relaxed)) return g;
        if (i < 1024) {
          FW_CPU_RELAX();
        } else {
          sched_yield();
          if ((i & 15) == 15 && Clock::now() >= until) break;
        }
      }
    }
    std::unique_lock<std::mutex> lk(mu_);
    hot_.sleepers.fetch_add(1, std::memory_order_seq_cst);
    cv_.wait(lk, [&] { return hot_.stopping.load() || hot_.generation.load(std::memory_order_seq_cst) != seen; });
    hot_.sleepers.fetch_sub(1, std::memory_order_relaxed);
    return hot_.generation.load(std::memory_order_acquire);
  }

  // hot_.joined = generation tag (high 32 bits) | closed bit | count of workers in the task.
  static constexpr uint64_t kClosed = uint64_t(1) << 31;
  static constexpr uint64_t kCountMask = kClosed - 1;
  static uint64_t tag_of(uint64_t gen) { return (gen & 0xffffffffu) << 32; }

  // Enters the task of generation `gen` unless it is closed or no longer current.
  bool join(uint64_t gen) {
    uint64_t s = hot_.joined.load(std::memory_order_acquire);
    for (;;) {
      if ((s & ~(kClosed | kCountMask)) != tag_of(gen) || (s & kClosed)) return false;
      if (hot_.joined.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        return true;
    }
  }

  void worker_loop(uint64_t seen, int who) {
    t_in_region = true;
    for (;;) {
      uint64_t g = wait_for_work(seen);
      if (hot_.stopping.load()) return;
      seen = g;
      if (!join(g)) continue;  // the caller finished without this worker, or moved on
      Task* task = hot_.task.load(std::memory_order_relaxed);
      if (task) task->run(who);
      hot_.joined.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::atomic<int> num_threads_;
  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::unique_ptr<Share[]> claimed_;  // per participant's share of the current task
  // What the caller writes to start a task and the spinning workers read, on a cache line of
  // its own: publishing a task moves one line to the workers.
  struct alignas(64) Hot {
    std::atomic<uint64_t> generation{0};
    std::atomic<Task*> task{nullptr};
    std::atomic<uint64_t> joined{0};
    std::atomic<int> sleepers{0};
    std::atomic<bool> stopping{false};
  } hot_;
};

}  // namespace

void set_num_threads(int n) {
  FW_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
  Pool::get().set_num_threads(n);
}

int get_num_threads() { return Pool::get().num_threads(); }

bool in_parallel_region() { return t_in_region; }

void parallel_for_impl(int64_t n, int64_t grain, RangeFn fn, const void* ctx) {
  Pool::get().run(n, std::max<int64_t>(grain, 1), fn, ctx);
}


}  // namespace fw
