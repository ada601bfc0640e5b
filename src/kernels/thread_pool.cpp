#include "kernels/thread_pool.h"

#include <algorithm>

namespace slm {

namespace {
// Idle spin before sleeping: covers the gap between two ops of one forward pass (a few
// microseconds) without holding a core for long when the pool is idle or the machine busy.
constexpr int kSpinIterations = 4000;
// Chunks per thread: small enough to balance uneven progress between threads.
constexpr int64_t kChunksPerThread = 4;
// Chunk counts live in 16 bits of the job word.
constexpr int64_t kMaxChunks = 0xffff;

inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunks(uint32_t generation, int thread) {
  for (;;) {
    uint64_t s = state_.load(std::memory_order_acquire);
    if (static_cast<uint32_t>(s >> 32) != generation) return;
    const int64_t chunk = static_cast<int64_t>(s & 0xffffu);
    const int64_t n_chunks = static_cast<int64_t>((s >> 16) & 0xffffu);
    if (chunk >= n_chunks) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
    // Chunk claimed on the live job: it stays alive until this chunk is counted done.
    if (!failed_.load(std::memory_order_relaxed)) {
      try {
        (*fn_)(n_ * chunk / n_chunks, n_ * (chunk + 1) / n_chunks, thread);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu_);
        if (!error_) error_ = std::current_exception();
        failed_.store(true, std::memory_order_relaxed);
      }
    }
    done_.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  for (;;) {
    auto generation = [&] { return static_cast<uint32_t>(state_.load(std::memory_order_acquire) >> 32); };
    for (int spin = 0; spin < kSpinIterations && generation() == seen && !stop_.load(); ++spin) cpu_relax();
    if (generation() == seen) {
      sleeping_.fetch_add(1);
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_.load() || generation() != seen; });
      }
      sleeping_.fetch_sub(1);
    }
    if (stop_.load()) return;
    seen = generation();
    run_chunks(seen, index);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  const int64_t n_chunks = std::min<int64_t>({n, int64_t(n_threads_) * kChunksPerThread, kMaxChunks});
  if (n_threads_ == 1 || n_chunks == 1) {
    fn(0, n, 0);
    return;
  }
  // The previous job has finished (every chunk counted), so no worker reads these now.
  fn_ = &fn;
  n_ = n;
  done_.store(0, std::memory_order_relaxed);
  failed_.store(false, std::memory_order_relaxed);
  const uint32_t generation = static_cast<uint32_t>(state_.load() >> 32) + 1;
  state_.store((uint64_t(generation) << 32) | (uint64_t(n_chunks) << 16));  // publishes the job (seq_cst)
  // A worker that went to sleep before this store is woken; one that checks later sees
  // the new generation (both sides use sequentially consistent operations).
  if (sleeping_.load() > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  run_chunks(generation, 0);
  for (int spin = 0; done_.load(std::memory_order_acquire) < n_chunks; ++spin) {
    if (spin < kSpinIterations)
      cpu_relax();
    else
      std::this_thread::yield();  // a worker holds a chunk but is not running: let it
  }
  if (failed_.load(std::memory_order_acquire)) {
    std::exception_ptr error;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::swap(error, error_);
    }
    std::rethrow_exception(error);
  }
}

void ThreadPool::for_each(int64_t n, const std::function<void(int64_t, int)>& fn) {
  if (n <= 0) return;
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(n, n_threads_), [&](int64_t, int64_t, int t) {
    for (int64_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i, t);
  });
}

}  // namespace slm
