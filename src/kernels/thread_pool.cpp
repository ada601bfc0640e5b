#include "kernels/thread_pool.h"

#include <algorithm>

namespace slm {

namespace {
// How long a worker spins for the next job before sleeping: long enough to cover the gap
// between two ops of one forward pass, short enough not to burn a core between requests.
constexpr int kSpinIterations = 20000;
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    const std::function<void(int)>* job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      job = job_;
    }
    (*job)(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  int parts = static_cast<int>(std::min<int64_t>(n_threads_, n));
  if (parts == 1) {
    fn(0, n, 0);
    return;
  }
  std::function<void(int)> job = [&](int t) {
    if (t >= parts) return;
    int64_t begin = n * t / parts, end = n * (t + 1) / parts;
    fn(begin, end, t);
  };
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    pending_.store(n_threads_ - 1, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_all();
  job(0);
  while (pending_.load(std::memory_order_acquire) != 0) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
}

void ThreadPool::for_each(int64_t n, const std::function<void(int64_t, int)>& fn) {
  if (n <= 0) return;
  std::atomic<int64_t> next{0};
  parallel_for(n_threads_, [&](int64_t, int64_t, int t) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i, t);
  });
}

}  // namespace slm
