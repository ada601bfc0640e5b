// Scalar (de)quantization throughput per format: how long `slm quantize` and the reference
// paths take per value. Run: build/bench_quant [--benchmark_filter=Dequant]
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "quant/quant.h"

namespace {

constexpr int64_t kN = 4096 * 16;  // one 4096-wide row × 16

std::vector<float> data() {
  std::mt19937 rng(1);
  std::normal_distribution<float> g(0.f, 0.02f);
  std::vector<float> v(kN);
  for (auto& x : v) x = g(rng);
  return v;
}

void BM_Dequantize(benchmark::State& state, slm::GgmlType t) {
  const auto x = data();
  std::vector<uint8_t> q(slm::row_bytes(t, kN));
  slm::quantize_row(t, x.data(), q.data(), kN);
  std::vector<float> y(kN);
  for (auto _ : state) {
    slm::dequantize_row(t, q.data(), y.data(), kN);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetItemsProcessed(state.iterations() * kN);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(q.size()));
}

void BM_Quantize(benchmark::State& state, slm::GgmlType t) {
  const auto x = data();
  std::vector<uint8_t> q(slm::row_bytes(t, kN));
  for (auto _ : state) {
    slm::quantize_row(t, x.data(), q.data(), kN);
    benchmark::DoNotOptimize(q.data());
  }
  state.SetItemsProcessed(state.iterations() * kN);
}

using slm::GgmlType;
#define FORMATS(X)                                                                              \
  X(F16) X(BF16) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q8_0) X(Q8_K) X(Q2_K) X(Q3_K) X(Q4_K)      \
  X(Q5_K) X(Q6_K) X(IQ4_NL) X(IQ4_XS)
#define REGISTER(T)                                                  \
  BENCHMARK_CAPTURE(BM_Dequantize, T, GgmlType::T);                  \
  BENCHMARK_CAPTURE(BM_Quantize, T, GgmlType::T);
FORMATS(REGISTER)

}  // namespace

BENCHMARK_MAIN();
