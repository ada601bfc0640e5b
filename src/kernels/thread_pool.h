// ThreadPool: persistent workers for the many small parallel ops of a forward pass.
// A decode step launches hundreds of ops of a few microseconds each, so: work is split into
// chunks that threads claim from one atomic counter (the caller claims too, so an op never
// waits for a worker that has not woken up or was descheduled on a busy machine), idle
// workers spin briefly before sleeping, and a sleeping worker is only woken by a syscall
// when there is one.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace slm {

class ThreadPool {
 public:
  // n_threads counts the caller: 1 means no workers, everything runs inline.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(begin, end, thread) over contiguous ranges covering [0, n) exactly once
  // (thread in [0, size()), the same thread may get several ranges). Returns when all are
  // done. Call from one thread at a time.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

  // Calls fn(i, thread) for every i in [0, n), one index per claim (for uneven work).
  void for_each(int64_t n, const std::function<void(int64_t, int)>& fn);

 private:
  void worker(int index);
  void run_chunks(uint32_t generation, int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  // The current job: generation in the high 32 bits, next unclaimed chunk in the low 32.
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> done_{0};  // chunks finished in the current job
  std::atomic<int64_t> n_{0};
  std::atomic<int64_t> n_chunks_{0};
  std::atomic<const std::function<void(int64_t, int64_t, int)>*> fn_{nullptr};
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace slm
