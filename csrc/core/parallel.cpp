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

  void run(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
    std::lock_guard<std::mutex> run_lock(run_mu_);  // one parallel region at a time
    int nt = num_threads_.load();
    int64_t chunks = std::min<int64_t>(nt, (n + grain - 1) / grain);
    if (chunks <= 1) {
      f(0, n);
      return;
    }
    ensure_workers(nt - 1);
    std::exception_ptr first_error;
    std::mutex err_mu;
    // Share c (of `chunks`) goes to participant c (the caller is 0, worker i is i + 1) when
    // that one is there to take it, so a kernel that runs again over the same data (a weight
    // split by columns, say) finds its half in the same core's cache. Each share is cut into
    // up to kPieces pieces of at least `grain`, run in order; a participant that runs out of
    // its own takes the pieces still unclaimed, from the end of each other share. So a worker
    // that is off its core (the host took the vCPU, or it is still asleep) holds up the call
    // by at most the piece it is in, not by its whole share.
    const int64_t per = std::clamp<int64_t>(n / (grain * chunks), 1, kPieces), parts = chunks * per;
    for (int64_t c = 0; c < parts; ++c) claimed_[size_t(c)].store(false, std::memory_order_relaxed);
    std::function<void(int)> body = [&](int who) {
      bool prev = t_in_region;
      t_in_region = true;
      auto take = [&](int64_t c) {
        if (claimed_[size_t(c)].load(std::memory_order_relaxed) ||
            claimed_[size_t(c)].exchange(true, std::memory_order_acq_rel))
          return;
        const int64_t b = n * c / parts, e = n * (c + 1) / parts;
        try {
          f(b, e);
        } catch (...) {
          std::lock_guard<std::mutex> g(err_mu);
          if (!first_error) first_error = std::current_exception();
        }
      };
      if (who < chunks)
        for (int64_t j = 0; j < per; ++j) take(who * per + j);
      for (int64_t i = 1; i <= chunks; ++i) {
        const int64_t other = (who + i) % chunks;
        for (int64_t j = per - 1; j >= 0; --j) take(other * per + j);
      }
      t_in_region = prev;
    };
    task_.store(&body, std::memory_order_relaxed);
    uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
    joined_.store(tag_of(gen), std::memory_order_relaxed);
    generation_.store(gen, std::memory_order_seq_cst);  // publishes task_ and joined_
    if (sleepers_.load(std::memory_order_seq_cst) > 0) {
      { std::lock_guard<std::mutex> lk(mu_); }  // a sleeper is either waiting or will see the new generation
      cv_.notify_all();
    }
    body(0);
    // Every chunk is taken: close the task, so that a worker that has not joined yet (still
    // asleep, or off its core on a busy machine) skips it instead of being waited for. The
    // workers that joined finish their last chunks soon: spin, then yield the core to them.
    joined_.fetch_or(kClosed, std::memory_order_acq_rel);
    for (int i = 0; (joined_.load(std::memory_order_acquire) & kCountMask) != 0; ++i) {
      if (i < 1024)
        FW_CPU_RELAX();
      else
        sched_yield();
    }
    task_.store(nullptr, std::memory_order_relaxed);
    if (first_error) std::rethrow_exception(first_error);
  }

  // Called in the child after fork(): the workers do not exist there.
  void forget_workers_after_fork() {
    new (&mu_) std::mutex();
    new (&run_mu_) std::mutex();
    new (&cv_) std::condition_variable();
    // The std::thread objects name threads that do not exist in the child: leak them
    // rather than detach or destroy them.
    new (&workers_) std::vector<std::thread>();
    task_ = nullptr;
    joined_ = 0;
    sleepers_ = 0;
    stopping_ = false;
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
    uint64_t gen = generation_.load();
    claimed_.reset(new std::atomic<bool>[size_t(count + 1) * kPieces]);
    for (int i = 0; i < count; ++i) workers_.emplace_back([this, gen, i] { worker_loop(gen, i + 1); });
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_.store(true);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stopping_.store(false);
  }

  // Waits until the generation moves past `seen` (returns it) or the pool stops (returns seen).
  uint64_t wait_for_work(uint64_t seen) {
    const int64_t budget = spin_us();
    if (budget > 0) {
      const auto until = Clock::now() + std::chrono::microseconds(budget);
      // pause first; then yield, so that on a busy machine a runnable thread gets the core
      for (int i = 0;; ++i) {
        uint64_t g = generation_.load(std::memory_order_acquire);
        if (g != seen || stopping_.load(std::memory_order_relaxed)) return g;
        if (i < 1024) {
          FW_CPU_RELAX();
        } else {
          sched_yield();
          if ((i & 15) == 15 && Clock::now() >= until) break;
        }
      }
    }
    std::unique_lock<std::mutex> lk(mu_);
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    cv_.wait(lk, [&] { return stopping_.load() || generation_.load(std::memory_order_seq_cst) != seen; });
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
    return generation_.load(std::memory_order_acquire);
  }

  static constexpr int64_t kPieces = 4;  // pieces per participant's share (see run)
  // joined_ = generation tag (high 32 bits) | closed bit | count of workers in the task.
  static constexpr uint64_t kClosed = uint64_t(1) << 31;
  static constexpr uint64_t kCountMask = kClosed - 1;
  static uint64_t tag_of(uint64_t gen) { return (gen & 0xffffffffu) << 32; }

  // Enters the task of generation `gen` unless it is closed or no longer current.
  bool join(uint64_t gen) {
    uint64_t s = joined_.load(std::memory_order_acquire);
    for (;;) {
      if ((s & ~(kClosed | kCountMask)) != tag_of(gen) || (s & kClosed)) return false;
      if (joined_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_acquire))
        return true;
    }
  }

  void worker_loop(uint64_t seen, int who) {
    t_in_region = true;
    for (;;) {
      uint64_t g = wait_for_work(seen);
      if (stopping_.load()) return;
      seen = g;
      if (!join(g)) continue;  // the caller finished without this worker, or moved on
      const std::function<void(int)>* task = task_.load(std::memory_order_relaxed);
      if (task) (*task)(who);
      joined_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  std::atomic<int> num_threads_;
  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::atomic<const std::function<void(int)>*> task_{nullptr};
  std::unique_ptr<std::atomic<bool>[]> claimed_;  // per piece of the current task (<= threads * kPieces)
  std::atomic<uint64_t> joined_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace

void set_num_threads(int n) {
  FW_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
  Pool::get().set_num_threads(n);
}

int get_num_threads() { return Pool::get().num_threads(); }

bool in_parallel_region() { return t_in_region; }

void parallel_for_impl(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  Pool::get().run(n, std::max<int64_t>(grain, 1), f);
}


}  // namespace fw
