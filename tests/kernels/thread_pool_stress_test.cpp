// ThreadPool under stress: many back-to-back jobs of odd sizes, where a worker still leaving
// one job overlaps the publication of the next. Each index of each job must be processed
// exactly once, and parallel_for must not return while a range of its job still runs.
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/thread_pool.h"

using slm::ThreadPool;

namespace {

// Runs `calls` jobs whose sizes cycle through small odd values; every job writes a stamp of
// its own call number into its slots and checks that no slot was already stamped by this
// call (double processing) and, after return, that every slot carries it (missed or late).
void stress(int threads, int calls) {
  ThreadPool pool(threads);
  constexpr int64_t kMaxN = 97;
  std::vector<std::atomic<int64_t>> stamp(kMaxN);
  std::atomic<int64_t> in_flight{0};
  int64_t doubles = 0, misses = 0, late = 0;
  std::atomic<int64_t> doubles_seen{0};
  for (int call = 1; call <= calls; ++call) {
    const int64_t n = 1 + (call * 7919) % kMaxN;
    pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
      in_flight.fetch_add(1);
      for (int64_t i = begin; i < end; ++i)
        if (stamp[i].exchange(call) == call) doubles_seen.fetch_add(1);
      in_flight.fetch_sub(1);
    });
    if (in_flight.load() != 0) ++late;
    for (int64_t i = 0; i < n; ++i)
      if (stamp[i].load() != call) ++misses;
  }
  doubles = doubles_seen.load();
  EXPECT_EQ(doubles, 0) << "threads=" << threads;
  EXPECT_EQ(misses, 0) << "threads=" << threads;
  EXPECT_EQ(late, 0) << "threads=" << threads;
}

}  // namespace

TEST(ThreadPoolStress, EveryIndexExactlyOnceAcrossBackToBackJobs) {
  // Thread counts above the core count make workers lag behind, which is when jobs overlap.
  for (int threads : {2, 3, 4, 7}) stress(threads, 150000);
}

TEST(ThreadPoolStress, ForEachCountsEveryIndexOnce) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> hits(33);
  for (int rep = 0; rep < 20000; ++rep) pool.for_each(33, [&](int64_t i, int) { hits[i]++; });
  for (auto& h : hits) ASSERT_EQ(h.load(), 20000);
}

TEST(ThreadPool, ExceptionInATaskReachesTheCaller) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int rep = 0; rep < 200; ++rep) {
      EXPECT_THROW(pool.parallel_for(64, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i)
          if (i == 37) throw std::runtime_error("task failed");
      }), std::runtime_error);
      // The pool still works after a failed job.
      std::atomic<int64_t> sum{0};
      pool.parallel_for(100, [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) sum += i;
      });
      ASSERT_EQ(sum.load(), 4950);
    }
  }
}
