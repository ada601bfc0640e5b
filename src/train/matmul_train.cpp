// The products of fine-tuning with a frozen base matrix W (see backprop.h): y = W·x forward
// and dx += Wᵀ·dy back.
//
// Backward:
// Threads take column ranges of W (whole blocks of its type), so every dx value is summed by
// one thread in one fixed order: the result does not depend on the thread count. Within a
// range, W is dequantized a tile at a time (kTileRows rows × kTileCols columns) and the tile
// is multiplied as a small GEMM over every token, so dequantizing costs once per tile rather
// than once per token. The register block is kTok tokens × 64 columns.
//
// Quantized W, where the CPU has AMX (asked at run time), is multiplied by the AMX tiles in
// bfloat16 with f32 sums, both ways: W's tile is packed as pairs along the sum's index (the
// layout the tile multiply reads: rows o, o+1 interleaved backward; elements i, i+1 of a row,
// transposed, forward), the activations are rounded to bf16 once per call, and each thread
// sums its block of outputs locally before writing it. Forward, threads take row blocks of W
// and walk its columns in chunks, so the activations' chunk stays in cache across the rows. The rounding (2⁻⁹ relative, of values already quantized
// to 4-6 bits) is the usual mixed-precision trade; F32, F16 and BF16 weights keep the f32
// path and their full precision.
#include <algorithm>
#include <cstring>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "kernels/cpu.h"
#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "quant/quant.h"
#include "train/backprop.h"
#include "train/gemm.h"

namespace slm::train {
namespace {

constexpr int64_t kTileRows = 128, kTileCols = 256;


#if defined(__AVX512F__)
constexpr int kTok = 6;  // tokens per register block

inline __mmask16 lanes(int64_t left) {
  return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
}

// NT tokens × 64 columns starting at the tile's column c (cols_left of them valid).
template <int NT>
void block_f32(const float* tile, int64_t rows, int64_t c, int64_t cols_left, const float* dy, int64_t dy_stride,
               float* dx, int64_t dx_stride, int64_t tile_stride) {
  __mmask16 m[4];
  for (int v = 0; v < 4; ++v) m[v] = lanes(cols_left - 16 * v);
  __m512 acc[NT][4];
  for (int t = 0; t < NT; ++t)
    for (int v = 0; v < 4; ++v) acc[t][v] = _mm512_maskz_loadu_ps(m[v], dx + int64_t(t) * dx_stride + c + 16 * v);
  for (int64_t o = 0; o < rows; ++o) {
    const float* w = tile + o * tile_stride + c;
    const __m512 w0 = _mm512_maskz_loadu_ps(m[0], w), w1 = _mm512_maskz_loadu_ps(m[1], w + 16),
                 w2 = _mm512_maskz_loadu_ps(m[2], w + 32), w3 = _mm512_maskz_loadu_ps(m[3], w + 48);
    for (int t = 0; t < NT; ++t) {
      const __m512 d = _mm512_set1_ps(dy[int64_t(t) * dy_stride + o]);
      acc[t][0] = _mm512_fmadd_ps(d, w0, acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(d, w1, acc[t][1]);
      acc[t][2] = _mm512_fmadd_ps(d, w2, acc[t][2]);
      acc[t][3] = _mm512_fmadd_ps(d, w3, acc[t][3]);
    }
  }
  for (int t = 0; t < NT; ++t)
    for (int v = 0; v < 4; ++v) _mm512_mask_storeu_ps(dx + int64_t(t) * dx_stride + c + 16 * v, m[v], acc[t][v]);
}


#endif

// Round to nearest even; NaN stays NaN (its quiet bit survives the shift).
inline uint32_t bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7F800000u) == 0x7F800000u) return (u >> 16) | ((u & 0xFFFFu) ? 0x40u : 0u);
  return (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
}

#if defined(__x86_64__) && defined(__linux__)
#define SLM_TRAIN_AMX 1
// The AMX path. Tiles 0-3 hold a 32-token × 32-column block of sums, 4-5 two 16-token
// slices of dy (32 o's each), 6-7 two 16-column slices of W's pair tile.
constexpr int64_t kAmxRows = 512;  // o per dequantized tile (256 pairs of 256 columns: 256 KiB)
// Row strides of the AMX buffers are 64 bytes more than their widths: a tile's 16 rows at a
// power-of-two stride would share a handful of cache sets and evict each other.
constexpr int64_t kAmxStride = kTileCols + 16;

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

#define SLM_AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))

// Two dequantized rows → one tile row of bf16 pairs (b null: a zero partner), rounded to
// nearest even: both rows converted in one instruction, then interleaved a0 b0 a1 b1 ….
SLM_AMX_TARGET void pack_pairs(const float* a, const float* b, int64_t len, uint32_t* out) {
  alignas(64) static constexpr uint16_t kInterleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,
                                                           21, 6, 22, 7, 23, 8,  24, 9,  25, 10, 26,
                                                           11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
  const __m512i order = _mm512_load_si512(kInterleave);
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    const __m512 hi = b ? _mm512_loadu_ps(b + i) : _mm512_setzero_ps();
    const __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, _mm512_loadu_ps(a + i));  // a in the low half
    _mm512_storeu_si512(out + i, _mm512_permutexvar_epi16(order, both));
  }
  for (; i < len; ++i) out[i] = bf16_bits(a[i]) | (b ? bf16_bits(b[i]) << 16 : 0u);
}

// The AMX register block: C (32 × 32 f32 at c, rows c_stride bytes apart) += A·B over
// `steps` products of 32 bf16 (16 pairs): A's 32 rows a_stride bytes apart advance 64 bytes
// a step, B's pair rows b_stride bytes apart advance 16 rows a step.
SLM_AMX_TARGET void amx_2x2(float* c, size_t c_stride, const uint8_t* a, size_t a_stride, const uint8_t* b,
                            size_t b_stride, int64_t steps) {
  uint8_t* cb = reinterpret_cast<uint8_t*>(c);
  _tile_loadd(0, cb, c_stride);
  _tile_loadd(1, cb + 64, c_stride);
  _tile_loadd(2, cb + 16 * c_stride, c_stride);
  _tile_loadd(3, cb + 16 * c_stride + 64, c_stride);
  for (int64_t k = 0; k < steps; ++k, a += 64, b += 16 * b_stride) {
    _tile_loadd(4, a, a_stride);
    _tile_loadd(5, a + 16 * a_stride, a_stride);
    _tile_loadd(6, b, b_stride);
    _tile_loadd(7, b + 64, b_stride);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, cb, c_stride);
  _tile_stored(1, cb + 64, c_stride);
  _tile_stored(2, cb + 16 * c_stride, c_stride);
  _tile_stored(3, cb + 16 * c_stride + 64, c_stride);
}

// acc[t][0..cols) += Σ_p dy2[t][k0 + p] · tile[p][·] over `pairs` pairs (a multiple of 16),
// for n_pad tokens (a multiple of 32) and cols (a multiple of 32, ≤ kTileCols).
SLM_AMX_TARGET void amx_block(const uint32_t* tile, int64_t pairs, int64_t cols, const uint32_t* dy2,
                              int64_t dy2_stride, int64_t k0, int64_t n_pad, float* acc) {
  for (int64_t t = 0; t < n_pad; t += 32)
    for (int64_t c = 0; c < cols; c += 32)
      amx_2x2(acc + t * kAmxStride + c, kAmxStride * sizeof(float),
              reinterpret_cast<const uint8_t*>(dy2 + t * dy2_stride + k0), size_t(dy2_stride) * sizeof(uint32_t),
              reinterpret_cast<const uint8_t*>(tile + c), kAmxStride * sizeof(uint32_t), pairs / 16);
}

// Rows of activations → bf16 pairs along the row, zero-padded to n_pad rows of `stride`.
std::vector<uint32_t> to_bf16_pairs(ThreadPool& pool, const float* x, int64_t n, int64_t width, int64_t n_pad,
                                    int64_t stride) {
  std::vector<uint32_t> out(size_t(n_pad) * size_t(stride), 0u);
  pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* row = x + t * width;
      uint32_t* o = out.data() + t * stride;
      for (int64_t p = 0; 2 * p < width; ++p)
        o[p] = bf16_bits(row[2 * p]) | (2 * p + 1 < width ? bf16_bits(row[2 * p + 1]) << 16 : 0u);
    }
  });
  return out;
}

SLM_AMX_TARGET void matmul_transposed_amx(ThreadPool& pool, const WeightView& W, const float* dy, int n, float* dx,
                                          int64_t chunk, int64_t n_chunks) {
  const int64_t n_pad = (n + 31) / 32 * 32;
  const int64_t pairs = ((W.rows + 1) / 2 + 15) / 16 * 16;  // dy's row, zero-padded to whole tiles
  const int64_t dy2_stride = pairs + 16;
  const std::vector<uint32_t> dy2 = to_bf16_pairs(pool, dy, n, W.rows, n_pad, dy2_stride);
  pool.parallel_for(n_chunks, [&](int64_t c0, int64_t c1, int) SLM_AMX_TARGET {
    TileConfig cfg;
    for (int i = 0; i < 8; ++i) cfg.colsb[i] = 64, cfg.rows[i] = 16;
    _tile_loadconfig(&cfg);
    std::vector<uint32_t> tile(size_t(kAmxRows / 2 * kAmxStride));
    std::vector<float> acc(size_t(n_pad * kAmxStride)), r0(static_cast<size_t>(kTileCols)),
        r1(static_cast<size_t>(kTileCols));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i0 = c * chunk, len = std::min(chunk, W.cols - i0), cols = (len + 31) / 32 * 32;
      const size_t offset = row_bytes(W.type, i0);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t o0 = 0; o0 < W.rows; o0 += kAmxRows) {
        const int64_t rows = std::min(kAmxRows, W.rows - o0);
        const int64_t tile_pairs = ((rows + 1) / 2 + 15) / 16 * 16;
        for (int64_t p = 0; p < tile_pairs; ++p) {
          uint32_t* out = &tile[size_t(p * kAmxStride)];
          const int64_t o = o0 + 2 * p;
          if (o >= W.rows) {
            std::fill(out, out + kTileCols, 0u);
            continue;
          }
          dequantize_row(W.type, W.data + size_t(o) * W.row_stride + offset, r0.data(), len);
          const bool second = o + 1 < W.rows;
          if (second) dequantize_row(W.type, W.data + size_t(o + 1) * W.row_stride + offset, r1.data(), len);
          pack_pairs(r0.data(), second ? r1.data() : nullptr, len, out);
          std::fill(out + len, out + cols, 0u);
        }
        amx_block(tile.data(), tile_pairs, cols, dy2.data(), dy2_stride, o0 / 2, n_pad, acc.data());
      }
      for (int64_t t = 0; t < n; ++t) {
        float* out = dx + t * W.cols + i0;
        const float* in = acc.data() + t * kAmxStride;
        for (int64_t i = 0; i < len; ++i) out[i] += in[i];
      }
    }
    _tile_release();
  });
}

// y[t][o] = Σ_i x[t][i] · W[o][i], computed as yᵀ = W·xᵀ so that W's rows, dequantized and
// rounded in order, are the tile multiply's left operand as they are. xᵀ is written once per
// call as pairs (xt[p][t] = x[t][2p], x[t][2p+1]). Each job: 128 rows of W; per 512-column
// chunk, the rows are rounded to bf16 and multiplied with every 32-token block of xᵀ.
constexpr int64_t kFwdRows = 128, kFwdCols = 512, kWbStride = kFwdCols + 32;

SLM_AMX_TARGET void row_to_bf16(const float* r, int64_t len, uint16_t* out) {
  int64_t i = 0;
  for (; i + 32 <= len; i += 32)
    _mm512_storeu_si512(out + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(r + i + 16), _mm512_loadu_ps(r + i)));
  for (; i < len; ++i) out[i] = uint16_t(bf16_bits(r[i]));
}

// acc[o][t] += Σ_p wb[o][2p, 2p+1] · xt[k0 + p][t] for the block's rows; xt and acc rows are
// `stride` apart (n_pad and 16 more).
SLM_AMX_TARGET void amx_forward_block(const uint16_t* wb, int64_t pairs, const uint32_t* xt, int64_t n_pad,
                                      int64_t stride, int64_t k0, float* acc) {
  for (int64_t o = 0; o < kFwdRows; o += 32)
    for (int64_t t = 0; t < n_pad; t += 32)
      amx_2x2(acc + o * stride + t, size_t(stride) * sizeof(float), reinterpret_cast<const uint8_t*>(wb + o * kWbStride),
              kWbStride * sizeof(uint16_t), reinterpret_cast<const uint8_t*>(xt + k0 * stride + t),
              size_t(stride) * sizeof(uint32_t), pairs / 16);
}

SLM_AMX_TARGET void matmul_forward_amx(ThreadPool& pool, const WeightView& W, const float* x, int n, float* y) {
  const int64_t n_pad = (n + 31) / 32 * 32;
  const int64_t pairs = ((W.cols + 1) / 2 + 15) / 16 * 16;
  const int64_t stride = n_pad + 16;
  std::vector<uint32_t> xt(size_t(pairs) * size_t(stride), 0u);
  pool.parallel_for((n + 31) / 32, [&](int64_t b0, int64_t b1, int) {  // 32 rows of x read together
    for (int64_t t0 = b0 * 32; t0 < std::min<int64_t>(b1 * 32, n); t0 += 32) {
      const int64_t t1 = std::min<int64_t>(t0 + 32, n);
      for (int64_t p = 0; 2 * p < W.cols; ++p)
        for (int64_t t = t0; t < t1; ++t) {
          const float* row = x + t * W.cols;
          xt[size_t(p * stride + t)] =
              bf16_bits(row[2 * p]) | (2 * p + 1 < W.cols ? bf16_bits(row[2 * p + 1]) << 16 : 0u);
        }
    }
  });
  const int64_t n_blocks = (W.rows + kFwdRows - 1) / kFwdRows;
  pool.parallel_for(n_blocks, [&](int64_t b0, int64_t b1, int) SLM_AMX_TARGET {
    TileConfig cfg;
    for (int i = 0; i < 8; ++i) cfg.colsb[i] = 64, cfg.rows[i] = 16;
    _tile_loadconfig(&cfg);
    std::vector<uint16_t> wb(size_t(kFwdRows * kWbStride), 0);
    std::vector<float> acc(size_t(kFwdRows * stride)), row(static_cast<size_t>(kFwdCols));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t o0 = b * kFwdRows, rows = std::min(kFwdRows, W.rows - o0);
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t k0 = 0; k0 < W.cols; k0 += kFwdCols) {
        const int64_t len = std::min(kFwdCols, W.cols - k0), chunk_pairs = ((len + 1) / 2 + 15) / 16 * 16;
        const size_t offset = row_bytes(W.type, k0);
        for (int64_t ol = 0; ol < kFwdRows; ++ol) {
          uint16_t* out = wb.data() + ol * kWbStride;
          if (ol >= rows) {  // past W's last row: zeros (their sums are not written anyway)
            std::fill(out, out + 2 * chunk_pairs, uint16_t(0));
            continue;
          }
          dequantize_row(W.type, W.data + size_t(o0 + ol) * W.row_stride + offset, row.data(), len);
          row_to_bf16(row.data(), len, out);
          std::fill(out + len, out + 2 * chunk_pairs, uint16_t(0));
        }
        amx_forward_block(wb.data(), chunk_pairs, xt.data(), n_pad, stride, k0 / 2, acc.data());
      }
      for (int64_t t = 0; t < n; ++t)  // yᵀ back to y: whole rows of y written in order
        for (int64_t ol = 0; ol < rows; ++ol) y[t * W.rows + o0 + ol] = acc[size_t(ol * stride + t)];
    }
    _tile_release();
  });
}
#endif

}  // namespace

template <>
void gemm_acc<float>(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                     float* C, int64_t ldc) {
#if defined(__AVX512F__)
  // block_f32: C[t][c..c+64) += Σ_k A[t][k]·B[k][c..], kTok rows of A at a time.
  for (int64_t c = 0; c < N; c += 64) {
    int64_t t = 0;
    for (; t + kTok <= M; t += kTok) block_f32<kTok>(B, K, c, N - c, A + t * lda, lda, C + t * ldc, ldc, ldb);
    const float* at = A + t * lda;
    float* ct = C + t * ldc;
    switch (M - t) {
      case 5: block_f32<5>(B, K, c, N - c, at, lda, ct, ldc, ldb); break;
      case 4: block_f32<4>(B, K, c, N - c, at, lda, ct, ldc, ldb); break;
      case 3: block_f32<3>(B, K, c, N - c, at, lda, ct, ldc, ldb); break;
      case 2: block_f32<2>(B, K, c, N - c, at, lda, ct, ldc, ldb); break;
      case 1: block_f32<1>(B, K, c, N - c, at, lda, ct, ldc, ldb); break;
      default: break;
    }
  }
#else
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) {
      const float a = A[i * lda + k];
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] += a * B[k * ldb + j];
    }
#endif
}

void matmul_transposed(ThreadPool& pool, const WeightView& W, const float* dy, int n, float* dx,
                       MatmulPath path) {
  const TypeInfo* ti = type_info(uint32_t(W.type));
  const int64_t block = ti ? ti->block_size : 1;
  const int64_t chunk = std::max<int64_t>(block, kTileCols / block * block);
  const int64_t n_chunks = (W.cols + chunk - 1) / chunk;
#if defined(SLM_TRAIN_AMX)
  if (path == MatmulPath::best && block > 1 && cpu_has_amx_bf16()) {
    matmul_transposed_amx(pool, W, dy, n, dx, chunk, n_chunks);
    return;
  }
#endif
  pool.parallel_for(n_chunks, [&](int64_t c0, int64_t c1, int) {
    std::vector<float> tile(size_t(kTileRows * kTileCols));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i0 = c * chunk, len = std::min(chunk, W.cols - i0);
      const size_t offset = row_bytes(W.type, i0);
      for (int64_t o0 = 0; o0 < W.rows; o0 += kTileRows) {
        const int64_t rows = std::min(kTileRows, W.rows - o0);
        for (int64_t o = 0; o < rows; ++o)
          dequantize_row(W.type, W.data + size_t(o0 + o) * W.row_stride + offset, &tile[size_t(o * kTileCols)], len);
        gemm_acc<float>(n, len, rows, dy + o0, W.rows, tile.data(), kTileCols, dx + i0, W.cols);
      }
    }
  });
}

void matmul_forward(ThreadPool& pool, const WeightView& W, const float* x, int n, float* y, MatmulPath path) {
#if defined(SLM_TRAIN_AMX)
  const TypeInfo* ti = type_info(uint32_t(W.type));
  if (path == MatmulPath::best && ti && ti->block_size > 1 && cpu_has_amx_bf16()) {
    matmul_forward_amx(pool, W, x, n, y);
    return;
  }
#endif
  (void)path;
  matmul(pool, W, x, n, y);
}

}  // namespace slm::train
