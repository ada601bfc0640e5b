// ThreadPool: persistent workers for the many small parallel ops of a forward pass.
// A decode step launches hundreds of ops of a few microseconds each, so workers spin
// briefly on an atomic job counter before sleeping, and the calling thread does a share.
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

  // Calls fn(begin, end, thread) over [0, n) split into one contiguous range per thread
  // (thread in [0, size())). Returns when every range is done. Not reentrant.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);

  // Calls fn(i, thread) for every i in [0, n), handing indices out dynamically (for
  // uneven work such as attention rows of different lengths).
  void for_each(int64_t n, const std::function<void(int64_t, int)>& fn);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  const std::function<void(int)>* job_ = nullptr;  // job_(thread)
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

}  // namespace slm
