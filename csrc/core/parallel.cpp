// parallel.cpp: a small fork-safe thread pool; see parallel.h for the contract.
#include "core/parallel.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

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
    // BLAS called from inside the region must not start threads of its own: this
    // OpenBLAS has no per-thread setting, so the region lowers the global count.
    scipy_openblas_set_num_threads(1);
    struct RestoreBlas {
      int n;
      ~RestoreBlas() { scipy_openblas_set_num_threads(n); }
    } restore{nt};
    std::exception_ptr first_error;
    std::mutex err_mu;
    std::atomic<int64_t> next{0};
    std::function<void()> body = [&]() {
      bool prev = t_in_region;
      t_in_region = true;
      for (;;) {
        int64_t c = next.fetch_add(1);
        if (c >= chunks) break;
        int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
        try {
          f(b, e);
        } catch (...) {
          std::lock_guard<std::mutex> g(err_mu);
          if (!first_error) first_error = std::current_exception();
        }
      }
      t_in_region = prev;
    };
    {
      std::unique_lock<std::mutex> lk(mu_);
      task_ = &body;
      pending_ = int(workers_.size());
      ++generation_;
    }
    cv_.notify_all();
    body();
    {
      std::unique_lock<std::mutex> lk(mu_);
      done_cv_.wait(lk, [&] { return pending_ == 0; });
      task_ = nullptr;
    }
    if (first_error) std::rethrow_exception(first_error);
  }

  // Called in the child after fork(): the workers do not exist there.
  void forget_workers_after_fork() {
    new (&mu_) std::mutex();
    new (&run_mu_) std::mutex();
    new (&cv_) std::condition_variable();
    new (&done_cv_) std::condition_variable();
    // The std::thread objects name threads that do not exist in the child: leak them
    // rather than detach or destroy them.
    new (&workers_) std::vector<std::thread>();
    task_ = nullptr;
    pending_ = 0;
    stopping_ = false;
  }

 private:
  Pool() : num_threads_(default_threads()) {
    pthread_atfork(nullptr, nullptr, [] { Pool::get().forget_workers_after_fork(); });
  }

  void ensure_workers(int count) {
    if (int(workers_.size()) == count) return;
    stop_workers();
    stopping_ = false;
    uint64_t gen;
    {
      std::lock_guard<std::mutex> lk(mu_);
      gen = generation_;
    }
    for (int i = 0; i < count; ++i) {
      workers_.emplace_back([this, gen] { worker_loop(gen); });
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
    stopping_ = false;
  }

  void worker_loop(uint64_t seen) {
    t_in_region = true;
    for (;;) {
      const std::function<void()>* task = nullptr;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        task = task_;
      }
      if (task) (*task)();
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (--pending_ == 0) done_cv_.notify_all();
      }
    }
  }

  std::atomic<int> num_threads_;
  std::mutex run_mu_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void()>* task_ = nullptr;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace

void set_num_threads(int n) {
  FW_CHECK(n >= 1, "set_num_threads: need at least 1 thread, got ", n);
  Pool::get().set_num_threads(n);
  scipy_openblas_set_num_threads(n);
}

int get_num_threads() { return Pool::get().num_threads(); }

bool in_parallel_region() { return t_in_region; }

void parallel_for_impl(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  Pool::get().run(n, std::max<int64_t>(grain, 1), f);
}


}  // namespace fw
