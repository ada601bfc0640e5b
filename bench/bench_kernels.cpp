// Kernel micro-benchmarks (single thread unless stated).
//   MemRead/threads:N        streaming read of 256 MiB per thread: the machine's bandwidth,
//                            the ceiling for decode (bytes of weights per token).
//   VecDot/TYPE              one activation row against a 2048 × 8192 weight matrix with
//                            vec_dot_rows; weights cycle through ≥ 256 MiB of copies so they
//                            come from DRAM as in decode. bytes_per_second = weight bytes read.
//   VecDotDequant/TYPE       the baseline it replaces: dequantize_row to f32, then an f32 dot.
//   Gemm/TYPE                512 tokens × 2048 × 8192 with gemm_q (GFLOP/s, 2 flops per MAC).
//   GemmRowByRow/TYPE        the same product as 512 vec_dot_rows passes (no tiling).
//   QuantizeAct/TYPE         encoding one 8192-value activation row.
//   AttendRows/ROWS/KEYS     attend_rows over one KV head of an f16 cache in cache, head dim
//                            64: ROWS = 4 is a decode step of a 4-query-head group (Llama 3.2
//                            1B), 32 a prompt block.
//   AttendDecodeStep/KEYS/L  one decode token's attention (16 layers × 8 heads) from DRAM.
// Run: build/bench_kernels --benchmark_filter=VecDot/Q4_0
#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/tier.h"

#include "kernels/attention.h"
#include "kernels/gemm_q.h"
#include "kernels/kernels.h"
#include "kernels/rows_x8.h"
#include "kernels/thread_pool.h"
#include "kernels/vec_dot.h"
#include "quant/quant.h"

namespace {

using slm::GgmlType;

constexpr int64_t kIn = 8192, kOut = 2048, kTokens = 512;

const GgmlType kTypes[] = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                           GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
                           GgmlType::IQ4_NL, GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K,
                           GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS};

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// One quantized kOut × kIn matrix (rows from a few random rows, repeated: the content does
// not change the kernels' speed).
std::vector<uint8_t> make_matrix(GgmlType t, int64_t rows = kOut, int64_t cols = kIn) {
  const size_t rb = slm::row_bytes(t, cols);
  std::vector<uint8_t> m(rb * rows);
  constexpr int kDistinct = 16;
  for (int r = 0; r < kDistinct; ++r) {
    auto x = random_floats(cols, 100 + r);
    slm::quantize_row(t, x.data(), m.data() + r * rb, cols);
  }
  for (int64_t r = kDistinct; r < rows; ++r) std::memcpy(m.data() + r * rb, m.data() + (r % kDistinct) * rb, rb);
  return m;
}

std::vector<uint8_t> make_acts(GgmlType t, int64_t n_tok) {
  const size_t as = slm::act_row_bytes(t, kIn);
  std::vector<uint8_t> a(as * n_tok);
  for (int64_t k = 0; k < n_tok; ++k) {
    auto x = random_floats(kIn, 1000 + static_cast<uint32_t>(k));
    slm::quantize_act_row(t, x.data(), a.data() + k * as, kIn);
  }
  return a;
}

// 32-byte loads whatever the build targets (the portable build's baseline is SSE2); run only
// where the CPU has AVX2.
__attribute__((target("avx2"))) void read_all_avx2(const uint8_t* data, size_t bytes) {
  __m256i acc = _mm256_setzero_si256();
  const auto* p = reinterpret_cast<const __m256i*>(data);
  for (size_t i = 0; i < bytes / 32; i += 4) {
    acc = _mm256_add_epi64(acc, _mm256_loadu_si256(p + i));
    acc = _mm256_add_epi64(acc, _mm256_loadu_si256(p + i + 1));
    acc = _mm256_add_epi64(acc, _mm256_loadu_si256(p + i + 2));
    acc = _mm256_add_epi64(acc, _mm256_loadu_si256(p + i + 3));
  }
  benchmark::DoNotOptimize(acc);
}

void MemRead(benchmark::State& state) {
  if (!slm::cpu_tier_supported(slm::CpuTier::Avx2)) {
    state.SkipWithError("this CPU has no AVX2");
    return;
  }
  const size_t bytes = size_t{256} << 20;
  std::vector<uint8_t> buf(bytes, 1);
  for (auto _ : state) read_all_avx2(buf.data(), bytes);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}
BENCHMARK(MemRead)->Threads(1)->Threads(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void VecDot(benchmark::State& state, GgmlType t, bool dequant_baseline) {
  const auto one = make_matrix(t);
  const int copies = static_cast<int>(std::max<size_t>(1, (size_t{256} << 20) / one.size()));
  std::vector<uint8_t> mats(one.size() * copies);
  for (int c = 0; c < copies; ++c) std::memcpy(mats.data() + c * one.size(), one.data(), one.size());
  const auto act = make_acts(t, 1);
  const auto xf = random_floats(kIn, 5);
  std::vector<float> out(kOut), row(kIn);
  const size_t rb = slm::row_bytes(t, kIn);
  int c = 0;
  for (auto _ : state) {
    const uint8_t* m = mats.data() + (c++ % copies) * one.size();
    if (!dequant_baseline) {
      slm::vec_dot_rows(t, kIn, m, rb, kOut, act.data(), out.data());
    } else {
      for (int64_t r = 0; r < kOut; ++r) {
        slm::dequantize_row(t, m + r * rb, row.data(), kIn);
        float s = 0;
        for (int64_t i = 0; i < kIn; ++i) s += row[i] * xf[i];
        out[r] = s;
      }
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(one.size()));
}

void Gemm(benchmark::State& state, GgmlType t, bool tiled) {
  const auto w = make_matrix(t);
  const auto acts = make_acts(t, kTokens);
  const size_t ws = slm::row_bytes(t, kIn), as = slm::act_row_bytes(t, kIn);
  std::vector<float> y(kTokens * kOut);
  for (auto _ : state) {
    if (tiled)
      slm::gemm_q(t, kIn, w.data(), ws, acts.data(), as, kTokens, y.data(), kOut, 0, kOut);
    else
      for (int64_t k = 0; k < kTokens; ++k)
        slm::vec_dot_rows(t, kIn, w.data(), ws, kOut, acts.data() + k * as, y.data() + k * kOut);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * kTokens * kOut * kIn / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// matmul() (activation encoding included) through the eight-row interleaved copy of
// rows_x8.h against the same rows in file layout, one thread: the repacking's gain.
// rows × cols (default kOut × kIn) on `threads` threads; a tall matrix (an output layer of
// 2048 × 128k) is read from memory, not cache, as in decode.
void MatmulRowsX8(benchmark::State& state, GgmlType t, bool packed, int64_t tokens, int64_t rows,
                  int64_t cols, int threads) {
  const auto w = make_matrix(t, rows, cols);
  const size_t ws = slm::row_bytes(t, cols);
  const size_t group_bytes = slm::rows_x8_group_bytes(t, cols);
  std::vector<uint8_t> p(group_bytes * (rows / 8));
  slm::repack_rows_x8(t, w.data(), ws, rows, cols, p.data());
  const slm::WeightView v{t, cols, rows, w.data(), ws, packed ? p.data() : nullptr, packed ? group_bytes : 0};
  slm::ThreadPool pool(threads);
  const auto x = random_floats(cols * tokens, 13);
  std::vector<float> y(tokens * rows);
  for (auto _ : state) {
    slm::matmul(pool, v, x.data(), tokens, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * tokens * rows * cols / 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

void QuantizeAct(benchmark::State& state, GgmlType t) {
  const auto x = random_floats(kIn, 9);
  std::vector<uint8_t> a(slm::act_row_bytes(t, kIn));
  for (auto _ : state) {
    slm::quantize_act_row(t, x.data(), a.data(), kIn);
    benchmark::DoNotOptimize(a.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kIn);
}

void AttendRows(benchmark::State& state, int rows, int keys, int heads) {
  constexpr int kDim = 64;
  const int64_t width = int64_t(heads) * kDim;  // a cache row holds every KV head's key
  const auto kf = random_floats(int64_t(keys) * width, 21), vf = random_floats(int64_t(keys) * width, 22);
  std::vector<uint16_t> k(kf.size()), v(vf.size());
  slm::quantize_row(GgmlType::F16, kf.data(), k.data(), int64_t(kf.size()));
  slm::quantize_row(GgmlType::F16, vf.data(), v.data(), int64_t(vf.size()));
  const auto q = random_floats(int64_t(rows) * kDim, 23);
  std::vector<int> lo(size_t(rows), 0), hi(size_t(rows), keys - 1);
  const slm::KvHeadView kv{GgmlType::F16, k.data(), v.data(), width, width, GgmlType::F16};
  const slm::AttentionShape shape{kDim, kDim, 0.125f, 0.0f};
  std::vector<float> out(size_t(rows) * kDim), scratch(slm::attend_rows_scratch(rows, shape));
  for (auto _ : state) {
    slm::attend_rows(q.data(), rows, lo.data(), hi.data(), kv, shape, out.data(), scratch.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(4.0 * rows * keys * kDim / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

// One decode token's attention of Llama 3.2 1B at depth KEYS, one thread: 16 layers × 8 KV
// heads × 4 query rows over f16 caches (150 MiB at 4608 keys), so the keys come from DRAM.
// head_major is the cache's layout (each head's keys contiguous); the other, every head's
// key of a position side by side, reads 128 of every 1024 bytes per head and is the slower.
void AttendDecodeStep(benchmark::State& state, int keys, bool head_major) {
  constexpr int kDim = 64, kHeads = 8, kLayers = 16, kRows = 4;
  const int64_t width = int64_t(kHeads) * kDim;
  std::vector<std::vector<uint16_t>> k(kLayers), v(kLayers);
  const auto f = random_floats(int64_t(keys) * width, 31);
  for (int l = 0; l < kLayers; ++l) {
    k[l].resize(f.size());
    v[l].resize(f.size());
    slm::quantize_row(GgmlType::F16, f.data(), k[l].data(), int64_t(f.size()));
    slm::quantize_row(GgmlType::F16, f.data(), v[l].data(), int64_t(f.size()));
  }
  const auto q = random_floats(int64_t(kRows) * kDim, 23);
  std::vector<int> lo(size_t(kRows), 0), hi(size_t(kRows), keys - 1);
  const slm::AttentionShape shape{kDim, kDim, 0.125f, 0.0f};
  std::vector<float> out(size_t(kRows) * kDim), scratch(slm::attend_rows_scratch(kRows, shape));
  for (auto _ : state) {
    for (int l = 0; l < kLayers; ++l)
      for (int h = 0; h < kHeads; ++h) {
        const int64_t off = head_major ? int64_t(h) * keys * kDim : h * kDim, stride = head_major ? kDim : width;
        const slm::KvHeadView kv{GgmlType::F16, k[l].data() + off, v[l].data() + off, stride, stride, GgmlType::F16};
        slm::attend_rows(q.data(), kRows, lo.data(), hi.data(), kv, shape, out.data(), scratch.data());
      }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * kLayers * 2 * keys * width * 2);
}

const bool registered = [] {
  for (bool head_major : {false, true})
    benchmark::RegisterBenchmark(head_major ? "AttendDecodeStep/4608/head_major" : "AttendDecodeStep/4608/row_major",
                                 AttendDecodeStep, 4608, head_major)->Unit(benchmark::kMillisecond);
  for (int rows : {4, 32})  // one head's keys contiguous, as the cache keeps them
    benchmark::RegisterBenchmark(("AttendRows/" + std::to_string(rows) + "/4608").c_str(), AttendRows, rows, 4608, 1)
        ->Unit(benchmark::kMicrosecond);
  for (GgmlType t : kTypes) {
    const std::string name = slm::type_name(t);
    benchmark::RegisterBenchmark(("VecDot/" + name).c_str(), VecDot, t, false)->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("VecDotDequant/" + name).c_str(), VecDot, t, true)->Unit(benchmark::kMicrosecond);
  }
  for (GgmlType t : kTypes)
    benchmark::RegisterBenchmark(("Gemm/" + std::string(slm::type_name(t))).c_str(), Gemm, t, true)
        ->Unit(benchmark::kMillisecond)->MinTime(0.5);
  for (GgmlType t : kTypes)
    benchmark::RegisterBenchmark(("GemmRowByRow/" + std::string(slm::type_name(t))).c_str(), Gemm, t, false)
        ->Unit(benchmark::kMillisecond)->MinTime(0.5);
  for (GgmlType t : {GgmlType::Q4_0, GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    for (int64_t tokens : {int64_t(1), kTokens})
      for (bool packed : {false, true})
        benchmark::RegisterBenchmark(("Matmul" + std::string(packed ? "RowsX8/" : "Plain/") + slm::type_name(t) + "/" +
                                      std::to_string(tokens)).c_str(),
                                     MatmulRowsX8, t, packed, tokens, kOut, kIn, 1)
            ->Unit(benchmark::kMillisecond)->MinTime(0.5);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K})
    for (bool packed : {false, true})
      benchmark::RegisterBenchmark(("MatmulTall" + std::string(packed ? "RowsX8/" : "Plain/") + slm::type_name(t)).c_str(),
                                   MatmulRowsX8, t, packed, 1, 131072, 2048, 2)
          ->Unit(benchmark::kMillisecond)->MinTime(1.0)->UseRealTime();
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_1, GgmlType::Q4_K, GgmlType::F16})
    benchmark::RegisterBenchmark(("QuantizeAct/" + std::string(slm::type_name(t))).c_str(), QuantizeAct, t);
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
