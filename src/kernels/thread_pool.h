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
#include <exception>
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
  // (thread in [0, size()), the same thread may get several ranges). Returns when every
  // range has finished. If fn throws, the ranges not yet started are skipped and the first
  // exception is rethrown here. Call from one thread at a time.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

  // Calls fn(i, thread) for every i in [0, n), one index per claim (for uneven work).
  void for_each(int64_t n, const std::function<void(int64_t, int)>& fn);

 private:
  void worker(int index);
  void run_chunks(uint32_t generation, int thread);

  int n_threads_;
  std::vector<std::thread> workers_;
  // The current job in one word, so that a claim is valid only for the job it was made on:
  // generation (bits 32-63) | chunk count (bits 16-31) | next unclaimed chunk (bits 0-15).
  // A worker late from the previous job sees its old generation or a full chunk count and
  // claims nothing; a successful claim means the job is live, so the caller is still
  // waiting and n_/fn_ (written before the job word was published) are this job's.
  std::atomic<uint64_t> state_{0};
  std::atomic<int64_t> done_{0};  // chunks finished in the current job
  int64_t n_ = 0;
  const std::function<void(int64_t, int64_t, int)>* fn_ = nullptr;
  std::atomic<bool> failed_{false};  // a chunk threw: skip the rest
  std::exception_ptr error_;  // the first exception, guarded by mu_
  std::atomic<int> sleeping_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace slm
