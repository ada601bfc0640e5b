// The attention kernel against its one-value-at-a-time reference on awkward shapes, the
// reference against hand-computed cases, and the vectorised exp/SiLU against libm.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "kernels/tier.h"
#include "quant/quant.h"
#include "quant/types.h"

// exp_ps is tested through a small AVX2 section of this file's own (kernels/tier_begin.h).
#if defined(__x86_64__)
#undef SLM_TIER
#define SLM_TIER 1
#include "kernels/tier_begin.h"
#include "kernels/simd_math.h"
namespace slm::SLM_TIER_NS {
void exp8(const float* x, float* y) { _mm256_storeu_ps(y, simd::exp_ps(_mm256_loadu_ps(x))); }
}  // namespace slm::SLM_TIER_NS
#include "kernels/tier_end.h"
#endif

namespace slm {
namespace {

struct Cache {
  GgmlType type;
  int width;  // elements per position (several heads)
  std::vector<float> f32;
  std::vector<uint16_t> f16;
  Cache(GgmlType t, int positions, int w, std::mt19937& rng, float scale) : type(t), width(w) {
    std::normal_distribution<float> d(0.0f, scale);
    f32.resize(size_t(positions) * w);
    for (float& x : f32) x = d(rng);
    if (t == GgmlType::F16) {
      f16.resize(f32.size());
      for (size_t i = 0; i < f32.size(); ++i) f16[i] = f32_to_fp16(f32[i]);
    }
  }
  const void* at(int first) const {
    return type == GgmlType::F16 ? static_cast<const void*>(f16.data() + first) : static_cast<const void*>(f32.data() + first);
  }
};

TEST(Attention, KernelEqualsReferenceOnAwkwardShapes) {
  std::mt19937 rng(7);
  struct Shape {
    int hk, hv, n_q, positions, lo;
    float softcap;
  };
  const Shape shapes[] = {{64, 64, 4, 1, 0, 0},    {64, 64, 4, 37, 0, 0},   {64, 64, 1, 200, 0, 0},
                          {8, 8, 7, 13, 3, 0},     {128, 128, 3, 65, 10, 0}, {256, 256, 2, 90, 0, 50.0f},
                          {72, 40, 5, 31, 30, 0},  {64, 64, 8, 513, 0, 0},  {16, 24, 6, 9, 0, 0}};
  for (GgmlType type : {GgmlType::F32, GgmlType::F16}) {
    for (const Shape& sh : shapes) {
      // Two KV heads per row, attending to the second, so strides and offsets are exercised.
      Cache k(type, sh.positions, 2 * sh.hk, rng, 1.0f), v(type, sh.positions, 2 * sh.hv, rng, 1.0f);
      std::normal_distribution<float> d(0.0f, 1.0f);
      std::vector<float> q(size_t(sh.n_q) * sh.hk);
      for (float& x : q) x = d(rng);
      const KvHeadView kv{type, k.at(sh.hk), v.at(sh.hv), 2 * sh.hk, 2 * sh.hv, type};
      const AttentionShape s{sh.hk, sh.hv, 1.0f / std::sqrt(float(sh.hk)), sh.softcap};
      const int hi = sh.positions - 1;
      std::vector<float> out(size_t(sh.n_q) * sh.hv), ref(out.size()), scratch(size_t(sh.n_q) * (hi - sh.lo + 1));
      attend(q.data(), sh.n_q, kv, sh.lo, hi, s, out.data(), scratch.data());
      attend_reference(q.data(), sh.n_q, kv, sh.lo, hi, s, ref.data());
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], ref[i], 2e-5f * (1 + std::fabs(ref[i])))
            << "type " << type_name(type) << " hk " << sh.hk << " n_q " << sh.n_q << " L " << hi - sh.lo + 1 << " i " << i;
    }
  }
}

// Rows stored as Q8_0 / Q4_0 blocks (and K and V of different types): both kernels read the
// blocks themselves; the truth is the reference over the rows dequantized by the quantizer's
// own dequantize_row, as f32.
TEST(Attention, QuantizedCacheEqualsTheReferenceOnDequantizedRows) {
  std::mt19937 rng(5);
  struct Types {
    GgmlType k, v;
  };
  for (Types t : {Types{GgmlType::Q8_0, GgmlType::Q8_0}, Types{GgmlType::Q4_0, GgmlType::Q4_0},
                  Types{GgmlType::Q8_0, GgmlType::Q4_0}, Types{GgmlType::F16, GgmlType::Q8_0}}) {
    for (int hk : {32, 64, 128, 256}) {
      const int positions = 150, width = 2 * hk, n_q = 3;
      std::normal_distribution<float> d(0.0f, 1.0f);
      auto make = [&](GgmlType type, std::vector<uint8_t>& blocks, std::vector<float>& plain) {
        std::vector<float> row(static_cast<size_t>(width));
        const size_t rb = row_bytes(type, width);
        blocks.resize(rb * positions);
        plain.resize(size_t(positions) * width);
        for (int p = 0; p < positions; ++p) {
          for (float& x : row) x = d(rng);
          quantize_row(type, row.data(), blocks.data() + p * rb, width);
          dequantize_row(type, blocks.data() + p * rb, plain.data() + size_t(p) * width, width);
        }
      };
      std::vector<uint8_t> kb, vb;
      std::vector<float> kf, vf;
      make(t.k, kb, kf);
      make(t.v, vb, vf);
      std::vector<float> q(size_t(n_q) * hk);
      for (float& x : q) x = d(rng);
      // The second KV head of each row.
      const KvHeadView kv{t.k, kb.data() + row_bytes(t.k, hk), vb.data() + row_bytes(t.v, hk), width, width, t.v};
      const KvHeadView plain{GgmlType::F32, kf.data() + hk, vf.data() + hk, width, width, GgmlType::F32};
      const AttentionShape s{hk, hk, 1.0f / std::sqrt(float(hk)), 0};
      std::vector<float> out(size_t(n_q) * hk), ref(out.size()), scratch(size_t(n_q) * positions);
      attend(q.data(), n_q, kv, 3, positions - 1, s, out.data(), scratch.data());
      attend_reference(q.data(), n_q, plain, 3, positions - 1, s, ref.data());
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], ref[i], 2e-5f * (1 + std::fabs(ref[i]))) << type_name(t.k) << "/" << type_name(t.v) << " hk " << hk;
      // The tiled kernel: n_q rows seeing different ranges.
      std::vector<int> lo = {0, 10, 70}, hi = {positions - 1, 64, 140};
      std::vector<float> rows_scratch(attend_rows_scratch(n_q, s));
      attend_rows(q.data(), n_q, lo.data(), hi.data(), kv, s, out.data(), rows_scratch.data());
      for (int r = 0; r < n_q; ++r)
        attend_reference(q.data() + size_t(r) * hk, 1, plain, lo[size_t(r)], hi[size_t(r)], s, ref.data() + size_t(r) * hk);
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], ref[i], 2e-5f * (1 + std::fabs(ref[i]))) << "rows " << type_name(t.k) << "/" << type_name(t.v) << " hk " << hk;
    }
  }
}

// The tiled prompt kernel: rows of several positions × heads with their own visible ranges
// (causal edges inside a key tile, sliding windows, a row that sees one key), equal to the
// reference row by row.
TEST(Attention, RowsKernelEqualsReferenceRowByRow) {
  std::mt19937 rng(11);
  struct Shape {
    int hk, hv, positions, rows, window;
    float softcap;
  };
  const Shape shapes[] = {{64, 64, 300, 32, 0, 0}, {64, 64, 1, 4, 0, 0},   {128, 128, 130, 12, 0, 0},
                          {8, 16, 70, 7, 5, 0},    {256, 256, 90, 6, 0, 50.0f}, {72, 40, 200, 9, 64, 0},
                          {64, 64, 4100, 16, 0, 0}};
  for (GgmlType type : {GgmlType::F32, GgmlType::F16}) {
    for (const Shape& sh : shapes) {
      Cache k(type, sh.positions, 2 * sh.hk, rng, 1.0f), v(type, sh.positions, 2 * sh.hv, rng, 1.0f);
      std::normal_distribution<float> d(0.0f, 1.0f);
      std::vector<float> q(size_t(sh.rows) * sh.hk);
      for (float& x : q) x = d(rng);
      const KvHeadView kv{type, k.at(sh.hk), v.at(sh.hv), 2 * sh.hk, 2 * sh.hv, type};
      const AttentionShape s{sh.hk, sh.hv, 1.0f / std::sqrt(float(sh.hk)), sh.softcap};
      // Rows as a prompt batch makes them: the last positions, a few heads per position.
      std::vector<int> lo(static_cast<size_t>(sh.rows)), hi(static_cast<size_t>(sh.rows));
      for (int r = 0; r < sh.rows; ++r) {
        hi[size_t(r)] = std::max(0, sh.positions - 1 - (sh.rows - 1 - r) / 2);
        lo[size_t(r)] = sh.window > 0 ? std::max(0, hi[size_t(r)] - sh.window + 1) : 0;
      }
      std::vector<float> out(size_t(sh.rows) * sh.hv), ref(out.size());
      std::vector<float> scratch(attend_rows_scratch(sh.rows, s));
      attend_rows(q.data(), sh.rows, lo.data(), hi.data(), kv, s, out.data(), scratch.data());
      for (int r = 0; r < sh.rows; ++r)
        attend_reference(q.data() + size_t(r) * sh.hk, 1, kv, lo[size_t(r)], hi[size_t(r)], s, ref.data() + size_t(r) * sh.hv);
      for (size_t i = 0; i < out.size(); ++i)
        ASSERT_NEAR(out[i], ref[i], 2e-5f * (1 + std::fabs(ref[i])))
            << "type " << type_name(type) << " hk " << sh.hk << " rows " << sh.rows << " L " << sh.positions << " i " << i;
    }
  }
}

// Split by keys (the decode step's threads): each kAttendChunk chunk's partial state, merged
// in order and finished, gives attend_rows' bits exactly; a row that sees none of a chunk's
// keys leaves the merge unchanged.
TEST(Attention, ChunksMergedInOrderAreAttendRowsBits) {
  std::mt19937 rng(5);
  for (GgmlType type : {GgmlType::F32, GgmlType::F16}) {
    for (int hk : {64, 40, 12}) {  // 12: the scalar chunk path
      const int positions = 3 * kAttendChunk + 77, rows = 6;
      Cache k(type, positions, hk, rng, 1.0f), v(type, positions, hk, rng, 1.0f);
      std::normal_distribution<float> d(0.0f, 1.0f);
      std::vector<float> q(size_t(rows) * hk);
      for (float& x : q) x = d(rng);
      const KvHeadView kv{type, k.at(0), v.at(0), hk, hk, type};
      const AttentionShape s{hk, hk, 1.0f / std::sqrt(float(hk)), 0};
      // Causal rows near the end and a sliding-window row that sees only the last chunk.
      const std::vector<int> hi = {positions - 6, positions - 5, positions - 4, positions - 3, positions - 2, positions - 1};
      const std::vector<int> lo = {0, 0, 100, 0, 0, positions - 40};
      std::vector<float> whole(size_t(rows) * hk), scratch(attend_rows_scratch(rows, s));
      attend_rows(q.data(), rows, lo.data(), hi.data(), kv, s, whole.data(), scratch.data());
      std::vector<float> out(whole.size()), part(whole.size()), m(rows), l(rows), m2(rows), l2(rows);
      std::vector<float> cs(attend_chunk_scratch(s));
      attend_rows_chunk(q.data(), rows, lo.data(), hi.data(), kv, s, 0, out.data(), m.data(), l.data(), cs.data());
      EXPECT_EQ(m[5], -INFINITY);  // the window row sees nothing of the first chunk
      EXPECT_EQ(l[5], 0.0f);
      for (int c0 = kAttendChunk; c0 < positions; c0 += kAttendChunk) {
        attend_rows_chunk(q.data(), rows, lo.data(), hi.data(), kv, s, c0, part.data(), m2.data(), l2.data(), cs.data());
        attend_merge(rows, hk, out.data(), m.data(), l.data(), part.data(), m2.data(), l2.data());
      }
      attend_finish(rows, hk, out.data(), l.data());
      for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(out[i], whole[i]) << type_name(type) << " hk " << hk << " i " << i;
      // And attend_rows itself is the attention (the reference, row by row).
      std::vector<float> ref(static_cast<size_t>(hk));
      for (int r = 0; r < rows; ++r) {
        attend_reference(q.data() + size_t(r) * hk, 1, kv, lo[size_t(r)], hi[size_t(r)], s, ref.data());
        for (int i = 0; i < hk; ++i)
          ASSERT_NEAR(whole[size_t(r) * hk + i], ref[size_t(i)], 2e-5f * (1 + std::fabs(ref[size_t(i)]))) << r << " " << i;
      }
    }
  }
}

TEST(Attention, ReferenceMatchesHandComputedCases) {
  // One position: the output is that position's value, whatever the scores.
  const float k1[4] = {1, 2, 3, 4}, v1[4] = {0.5f, -1, 2, 8}, q[4] = {3, 0, -1, 2};
  const AttentionShape s{4, 4, 0.5f, 0};
  float out[4];
  attend_reference(q, 1, KvHeadView{GgmlType::F32, k1, v1, 4, 4}, 0, 0, s, out);
  for (int i = 0; i < 4; ++i) EXPECT_FLOAT_EQ(out[i], v1[i]);

  // Two positions: scores 0.5·q·k = 0.5·(3−3+8) = 4 and 0.5·(0) = 0; weights e^4/(e^4+1), 1/(e^4+1).
  const float k2[8] = {1, 2, 3, 4, 0, 0, 0, 0}, v2[8] = {1, 0, 0, 0, 0, 1, 0, 0};
  float out2[4], scratch[2];
  attend(q, 1, KvHeadView{GgmlType::F32, k2, v2, 4, 4}, 0, 1, s, out2, scratch);
  const double w0 = std::exp(4.0) / (std::exp(4.0) + 1);
  EXPECT_NEAR(out2[0], w0, 1e-6);
  EXPECT_NEAR(out2[1], 1 - w0, 1e-6);
  EXPECT_EQ(out2[2], 0.0f);
  // A window starting at position 1 sees only the second row.
  attend(q, 1, KvHeadView{GgmlType::F32, k2, v2, 4, 4}, 1, 1, s, out2, scratch);
  EXPECT_FLOAT_EQ(out2[1], 1.0f);
  EXPECT_EQ(out2[0], 0.0f);
}

#if defined(__x86_64__)
TEST(SimdMath, ExpWithinFewUlpOfLibm) {
  if (!cpu_tier_supported(CpuTier::Avx2)) GTEST_SKIP() << "this CPU has no AVX2";
  std::vector<float> xs;
  for (float x = -100.0f; x <= 90.0f; x += 0.0137f) xs.push_back(x);
  for (float x = 88.0f; x <= 88.7228f; x += 0.0011f) xs.push_back(x);  // the top of the range, densely
  for (float x : {0.0f, -0.0f, 1e-8f, -1e-8f, 88.0f, 88.5f, 88.72f, 88.7228f, 88.8f, -87.3f, -87.33f, -87.4f,
                  -200.0f, -INFINITY, INFINITY})
    xs.push_back(x);
  while (xs.size() % 8) xs.push_back(0.0f);
  for (size_t i = 0; i < xs.size(); i += 8) {
    float y[8];
    tier_avx2::exp8(&xs[i], y);
    for (int j = 0; j < 8; ++j) {
      const float x = xs[i + j];
      const double e = std::exp(double(x));
      if (e > 3.4028234663852886e38) {
        EXPECT_TRUE(std::isinf(y[j]) && y[j] > 0) << x;  // overflow: +inf
      } else if (e < 1.1754943508222875e-38) {
        EXPECT_LE(y[j], 1.2e-38f) << x;  // underflow: zero or a tiny value, never garbage
        EXPECT_GE(y[j], 0.0f) << x;
      } else {
        EXPECT_NEAR(y[j], e, 4e-7 * e) << x;  // every normal result, up to ln(FLT_MAX)
      }
    }
  }
}

TEST(SimdMath, SwigluMatchesFormula) {
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, 6.0f);
  std::vector<float> x(1003), g(1003);
  for (size_t i = 0; i < x.size(); ++i) x[i] = d(rng), g[i] = d(rng);
  x[0] = -120.0f, x[1] = 120.0f, x[2] = 0.0f;
  const CpuTier chosen = cpu_tier();
  for (CpuTier t : kBuildTiers) {  // every tier this CPU runs
    if (!cpu_tier_supported(t)) continue;
    set_cpu_tier(t);
    std::vector<float> y = x;
    swiglu(y.data(), g.data(), int64_t(y.size()));
    for (size_t i = 0; i < x.size(); ++i) {
      const double want = double(x[i]) / (1 + std::exp(-double(x[i]))) * g[i];
      ASSERT_NEAR(y[i], want, 1e-6 * (1 + std::fabs(want))) << x[i] << " tier " << cpu_tier_name(t);
    }
  }
  set_cpu_tier(chosen);
}
#endif

}  // namespace
}  // namespace slm
