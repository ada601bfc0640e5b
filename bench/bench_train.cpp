// The backward kernels of fine-tuning against their forward twins, single thread:
//   Forward/TYPE/N  y = W·x for N tokens × 2048 × 8192 (the inference matmul)
//   Forward/TYPE_train/N  the same product as training computes it (bf16 on AMX where present)
//   Backward/TYPE/N dx = Wᵀ·dy for the same shapes (fine-tuning's pass through a frozen W);
//                   N = 512 is a training row, 64 a small batch
//   TrainStep       one forward + backward of the llama F32 fixture over 64 tokens with
//                   rank-8 pairs on every matrix (needs SLM_SHARED or ../shared)
// GFLOP/s counts 2 flops per multiply-add. Run: build/bench_train --benchmark_filter=Q4_K
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "quant/quant.h"
#include "slm/model.h"
#include "train/backprop.h"
#include "train/lora_model.h"

namespace {

using slm::GgmlType;
constexpr int64_t kIn = 8192, kOut = 2048;

struct Matrix {
  std::vector<uint8_t> bytes;
  slm::WeightView view;
  explicit Matrix(GgmlType type) {
    std::mt19937 rng(7);
    std::normal_distribution<float> d(0.0f, 1.0f);
    std::vector<float> row(kIn);
    const size_t rb = slm::row_bytes(type, kIn);
    bytes.resize(rb * kOut);
    for (int64_t o = 0; o < kOut; ++o) {
      for (float& x : row) x = d(rng);
      slm::quantize_row(type, row.data(), bytes.data() + size_t(o) * rb, kIn);
    }
    view = {type, kIn, kOut, bytes.data(), rb};
  }
};

std::vector<float> noise(size_t n) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// training: the product as fine-tuning computes it; else the inference matmul.
void Forward(benchmark::State& state, GgmlType type, bool training) {
  const int64_t kTokens = state.range(0);
  Matrix m(type);
  slm::ThreadPool pool(1);
  std::vector<float> x = noise(size_t(kTokens * kIn)), y(size_t(kTokens * kOut));
  for (auto _ : state) {
    if (training)
      slm::train::matmul_forward(pool, m.view, x.data(), int(kTokens), y.data());
    else
      slm::matmul(pool, m.view, x.data(), kTokens, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * kIn * kOut * kTokens, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

void Backward(benchmark::State& state, GgmlType type) {
  const int64_t kTokens = state.range(0);
  Matrix m(type);
  slm::ThreadPool pool(1);
  std::vector<float> dy = noise(size_t(kTokens * kOut)), dx(size_t(kTokens * kIn));
  for (auto _ : state) {
    slm::train::matmul_transposed(pool, m.view, dy.data(), kTokens, dx.data());
    benchmark::DoNotOptimize(dx.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * kIn * kOut * kTokens, benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

void TrainStep(benchmark::State& state) {
  const char* shared = std::getenv("SLM_SHARED");
  const std::string path = std::string(shared ? shared : "../shared") + "/fixtures/llama-f32.gguf";
  auto model = slm::Model::load(path);
  slm::ThreadPool pool(1);
  slm::train::LoraModel lora(*model, 8, 16, {}, 1);
  std::vector<int32_t> tokens;
  for (int i = 0; i < 64; ++i) tokens.push_back(int32_t((i * 37 + 11) % model->n_vocab()));
  const slm::train::Sequence seq = slm::train::Sequence::plain(tokens);
  for (auto _ : state) {
    lora.zero_grad();
    benchmark::DoNotOptimize(slm::train::forward_backward<float>(*model, lora, seq, 64, pool, state.range(0) != 0));
  }
  state.SetLabel(state.range(0) ? "forward + backward" : "forward only");
}

}  // namespace

#define TYPES(X) X(F32) X(F16) X(Q8_0) X(Q4_0) X(Q4_K) X(Q5_K) X(Q6_K)
#define REGISTER(T)                                                                                        \
  BENCHMARK_CAPTURE(Forward, T, GgmlType::T, false)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond);                               \
  BENCHMARK_CAPTURE(Forward, T##_train, GgmlType::T, true)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond);         \
  BENCHMARK_CAPTURE(Backward, T, GgmlType::T)->Arg(64)->Arg(512)->Unit(benchmark::kMillisecond);
TYPES(REGISTER)
BENCHMARK(TrainStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
