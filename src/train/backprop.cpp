// The training pass (see backprop.h). Each forward step below has its backward twin right
// after it; the layer reads like the inference forward pass:
//   h = embed(tokens) · embd_scale
//   per layer:  h += res_scale · post_norm(attn(norm(h)))
//               h += res_scale · post_norm(ffn(norm(h)))
//   loss = Σ_t w_t · −log softmax(softcap(output · norm(h_t) / logit_scale))[token_{t+1}]
#include "train/backprop.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kernels/kernels.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "model/weights.h"
#include "quant/quant.h"
#include "slm/error.h"
#include "slm/model.h"
#include "train/gemm.h"

namespace slm::train {

Sequence Sequence::plain(std::vector<int32_t> tokens) {
  Sequence s;
  const size_t n = tokens.size();
  s.tokens = std::move(tokens);
  s.weight.assign(n, 1.0f);
  if (n) s.weight[n - 1] = 0.0f;
  s.pos.resize(n);
  for (size_t i = 0; i < n; ++i) s.pos[i] = int32_t(i);
  s.segment.assign(n, 0);
  return s;
}

namespace {

template <class T>
using Vec = std::vector<T>;

template <class T>
T* grow(Vec<T>& v, int64_t n) {
  if (v.size() < size_t(n)) v.resize(size_t(n));
  return v.data();
}

// Σ a[i]·b[i] in 16 interleaved partial sums: a loop the compiler turns into vector FMAs
// (a plain running sum must be summed in order, which keeps it scalar).
template <class T>
T dot_n(const T* a, const T* b, int n) {
  constexpr int kLanes = 16;
  T part[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) part[k] += a[i + k] * b[i + k];
  T sum = 0;
  for (int k = 0; k < kLanes; ++k) sum += part[k];
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

#if defined(__AVX512F__)
template <>
float dot_n<float>(const float* a, const float* b, int n) {
  __m512 acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}
#endif

// ---- frozen base matrices: y = W·x and dx += Wᵀ·dy, W read in its own type ----------------

template <class T>
void base_matmul(ThreadPool& pool, const WeightView& W, const T* x, int n, T* y);

template <>
void base_matmul<float>(ThreadPool& pool, const WeightView& W, const float* x, int n, float* y) {
  matmul_forward(pool, W, x, n, y);
}

template <>
void base_matmul<double>(ThreadPool& pool, const WeightView& W, const double* x, int n, double* y) {
  pool.parallel_for(W.rows, [&](int64_t r0, int64_t r1, int) {
    std::vector<float> row(static_cast<size_t>(W.cols));
    for (int64_t o = r0; o < r1; ++o) {
      dequantize_row(W.type, W.data + size_t(o) * W.row_stride, row.data(), W.cols);
      for (int t = 0; t < n; ++t) {
        double sum = 0;
        const double* xt = x + int64_t(t) * W.cols;
        for (int64_t i = 0; i < W.cols; ++i) sum += double(row[size_t(i)]) * xt[i];
        y[int64_t(t) * W.rows + o] = sum;
      }
    }
  });
}

// dx[t] += Wᵀ·dy[t]: matmul_t.cpp for float; for double (the tests' exact pass) this plain
// version, threads over column ranges so each dx value has one writer.
constexpr int64_t kTileRows = 32, kTileCols = 256;

template <class T>
void tile_product(const float* tile, int64_t rows, int64_t cols, const T* dy, int64_t dy_stride, int n, T* dx,
                  int64_t dx_stride) {
  for (int t = 0; t < n; ++t)
    for (int64_t o = 0; o < rows; ++o) {
      const T d = dy[int64_t(t) * dy_stride + o];
      if (d == T(0)) continue;
      T* out = dx + int64_t(t) * dx_stride;
      const float* w = tile + o * kTileCols;
      for (int64_t i = 0; i < cols; ++i) out[i] += d * T(w[i]);
    }
}

template <class T>
void base_matmul_t(ThreadPool& pool, const WeightView& W, const T* dy, int n, T* dx) {
  const TypeInfo* ti = type_info(uint32_t(W.type));
  const int64_t block = ti ? ti->block_size : 1;
  const int64_t chunk = std::max<int64_t>(block, kTileCols / block * block);
  const int64_t n_chunks = (W.cols + chunk - 1) / chunk;
  pool.parallel_for(n_chunks, [&](int64_t c0, int64_t c1, int) {
    std::vector<float> tile(size_t(kTileRows * kTileCols));
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t i0 = c * chunk, len = std::min(chunk, W.cols - i0);
      for (int64_t o0 = 0; o0 < W.rows; o0 += kTileRows) {
        const int64_t rows = std::min(kTileRows, W.rows - o0);
        for (int64_t o = 0; o < rows; ++o)
          dequantize_row(W.type, W.data + size_t(o0 + o) * W.row_stride + row_bytes(W.type, i0), &tile[size_t(o * kTileCols)],
                         len);
        tile_product<T>(tile.data(), rows, len, dy + o0, W.rows, n, dx + i0, W.cols);
      }
    }
  });
}

template <>
void base_matmul_t<float>(ThreadPool& pool, const WeightView& W, const float* dy, int n, float* dx) {
  matmul_transposed(pool, W, dy, n, dx);
}

// ---- projections: y = W·x + s·B·(A·x) -------------------------------------------------------

template <class T>
void project(ThreadPool& pool, const WeightView& W, const LoraParam* p, const T* x, int n, T* y, Vec<T>& ax) {
  base_matmul<T>(pool, W, x, n, y);
  if (!p) return;
  const int64_t r = p->rank, ni = p->n_in, no = p->n_out;
  ax.assign(size_t(n * r), T(0));
  std::vector<float> bt(static_cast<size_t>(r * no));  // Bᵀ
  for (int64_t o = 0; o < no; ++o)
    for (int64_t k = 0; k < r; ++k) bt[size_t(k * no + o)] = p->b[size_t(o * r + k)];
  pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const T* xt = x + t * ni;
      T* axt = ax.data() + t * r;
      for (int64_t k = 0; k < r; ++k) {
        if constexpr (std::is_same_v<T, float>) {
          axt[k] = dot_n(p->a.data() + k * ni, xt, int(ni));
        } else {
          T sum = 0;
          const float* a = p->a.data() + k * ni;
          for (int64_t i = 0; i < ni; ++i) sum += T(a[i]) * xt[i];
          axt[k] = sum;
        }
      }
      // y_t += s·B·ax_t as a sum of Bᵀ's rows (a loop over o in vector lanes).
      T* yt = y + t * no;
      for (int64_t k = 0; k < r; ++k) {
        const T c = T(p->scale) * axt[k];
        const float* bk = bt.data() + k * no;
        for (int64_t o = 0; o < no; ++o) yt[o] += c * T(bk[o]);
      }
    }
  });
}

// Given dy: dx += Wᵀ·dy + Aᵀ·(s·Bᵀ·dy); dB += s·dy·(A·x)ᵀ; dA += (s·Bᵀ·dy)·xᵀ.
template <class T>
void project_backward(ThreadPool& pool, const WeightView& W, LoraParam* p, const T* x, int n, const T* dy, T* dx,
                      const Vec<T>& ax) {
  base_matmul_t<T>(pool, W, dy, n, dx);
  if (!p) return;
  const int64_t r = p->rank, ni = p->n_in, no = p->n_out;
  const T s = T(p->scale);
  Vec<T> dax(static_cast<size_t>(n * r), T(0));
  pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t o = 0; o < no; ++o) {
        const T d = dy[t * no + o];
        const float* b = p->b.data() + o * r;
        for (int64_t k = 0; k < r; ++k) dax[size_t(t * r + k)] += s * d * T(b[k]);
      }
  });
  // Both sums run over tokens in the outer loop so that every inner loop reads memory in
  // order (a token-inner loop would stride through dy and x a row at a time).
  pool.parallel_for(no, [&](int64_t o0, int64_t o1, int) {
    Vec<T> gb(size_t((o1 - o0) * r), T(0));
    for (int t = 0; t < n; ++t) {
      const T* at = ax.data() + int64_t(t) * r;
      const T* dyt = dy + int64_t(t) * no;
      for (int64_t o = o0; o < o1; ++o) {
        const T d = dyt[o];
        T* g = gb.data() + (o - o0) * r;
        for (int64_t k = 0; k < r; ++k) g[k] += d * at[k];
      }
    }
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t k = 0; k < r; ++k) p->grad_b[size_t(o * r + k)] += float(s * gb[size_t((o - o0) * r + k)]);
  });
  pool.parallel_for(ni, [&](int64_t i0, int64_t i1, int) {
    Vec<T> ga(size_t(r * (i1 - i0)), T(0));
    for (int t = 0; t < n; ++t) {
      const T* xt = x + int64_t(t) * ni;
      for (int64_t k = 0; k < r; ++k) {
        const T d = dax[size_t(int64_t(t) * r + k)];
        T* g = ga.data() + k * (i1 - i0);
        for (int64_t i = i0; i < i1; ++i) g[i - i0] += d * xt[i];
      }
    }
    for (int64_t k = 0; k < r; ++k)
      for (int64_t i = i0; i < i1; ++i) p->grad_a[size_t(k * ni + i)] += float(ga[size_t(k * (i1 - i0) + (i - i0))]);
  });
  pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t k = 0; k < r; ++k) {
        const T d = dax[size_t(t * r + k)];
        const float* a = p->a.data() + k * ni;
        T* out = dx + t * ni;
        for (int64_t i = 0; i < ni; ++i) out[i] += d * T(a[i]);
      }
  });
}

// ---- RMS norm ---------------------------------------------------------------------------------

template <class T>
void rmsnorm_forward(const T* x, const float* w, T* y, int64_t n, float eps) {
  T sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const T scale = T(1) / std::sqrt(sum / T(n) + T(eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * (w ? T(w[i]) : T(1));
}

// dx += d(rmsnorm)/dx · dy.
template <class T>
void rmsnorm_backward(const T* x, const float* w, const T* dy, T* dx, int64_t n, float eps) {
  T sum = 0, dot = 0;
  for (int64_t i = 0; i < n; ++i) {
    sum += x[i] * x[i];
    dot += x[i] * dy[i] * (w ? T(w[i]) : T(1));
  }
  const T ms = sum / T(n) + T(eps);
  const T scale = T(1) / std::sqrt(ms);
  const T k = dot * scale * scale * scale / T(n);
  for (int64_t i = 0; i < n; ++i) dx[i] += dy[i] * (w ? T(w[i]) : T(1)) * scale - x[i] * k;
}

template <class T>
void rmsnorm_rows(ThreadPool& pool, const T* x, const float* w, T* y, int n, int64_t width, float eps) {
  pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) rmsnorm_forward(x + t * width, w, y + t * width, width, eps);
  });
}

template <class T>
void rmsnorm_rows_backward(ThreadPool& pool, const T* x, const float* w, const T* dy, T* dx, int n, int64_t width,
                           float eps) {
  pool.parallel_for(n, [&](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) rmsnorm_backward(x + t * width, w, dy + t * width, dx + t * width, width, eps);
  });
}

// ---- RoPE: a rotation per pair; its backward is the rotation the other way ------------------

template <class T>
void rope_rotate(T* x, int n_heads, int head_dim, int64_t pos, const RopeParams& p, bool inverse) {
  const int half = p.n_rot / 2;
  const T theta_scale = std::pow(T(p.base), T(-2) / T(p.n_rot));
  T theta = T(pos);
  for (int i = 0; i < half; ++i) {
    const T ff = p.freq_factors ? T(p.freq_factors[i]) : T(1);
    const T th = T(p.freq_scale) * (theta / ff);
    const T c = std::cos(th) * T(p.attn_factor);
    const T s = (inverse ? -std::sin(th) : std::sin(th)) * T(p.attn_factor);
    theta *= theta_scale;
    for (int h = 0; h < n_heads; ++h) {
      T* v = x + int64_t(h) * head_dim;
      const int a = p.mode == RopeMode::Norm ? 2 * i : i;
      const int b = p.mode == RopeMode::Norm ? 2 * i + 1 : i + half;
      const T x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

// ---- activations --------------------------------------------------------------------------

template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
// tanh GELU (the smooth function; inference evaluates it through llama.cpp's f16 table).
template <class T>
T gelu(T x) {
  const T k = T(0.79788456080286535587989211986876);
  return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
}
template <class T>
T gelu_grad(T x) {
  const T k = T(0.79788456080286535587989211986876);
  const T t = std::tanh(k * (x + T(0.044715) * x * x * x));
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3) * T(0.044715) * x * x);
}

// ---- the pass ---------------------------------------------------------------------------------

template <class T>
struct Ctx {
  const ModelConfig& c;
  const Weights& w;
  LoraModel& lora;
  const Sequence& seq;
  int n_ctx;
  ThreadPool& pool;
  int n;  // tokens
  LoraParam* param(int il, LoraTarget t) const { return lora.find(il, t); }
};

// What one gated FFN keeps for its backward pass.
template <class T>
struct FfnCache {
  Vec<T> g, u, act;  // gate·x, up·x, act(gate)⊙up
  Vec<T> ax_gate, ax_up, ax_down;
};

template <class T>
struct MoeCache {
  Vec<T> logits, probs;                      // router, [n][n_expert]
  std::vector<std::vector<int>> chosen;      // per token: its experts
  std::vector<std::vector<T>> weight;        // per token: their renormalised weights
  std::vector<std::vector<int>> rows;        // per expert: its tokens
  std::vector<Vec<T>> xe, ye;                // per expert: gathered inputs, outputs
  std::vector<FfnCache<T>> ffn;              // per expert
  FfnCache<T> shared;
  Vec<T> ys;
  Vec<T> ax_router;
};

template <class T>
struct LayerCache {
  Vec<T> a;                 // norm(x)
  Vec<T> q, k, v;           // projections
  Vec<T> qr, kr;            // after QK norm and RoPE
  Vec<T> probs, capped;     // attention, [n_head][n][n]
  Vec<T> o;                 // attention output
  Vec<T> attn;              // W_o·o, before the post-norm
  Vec<T> h1;                // after the attention residual
  Vec<T> b;                 // norm(h1)
  Vec<T> ffn_out;           // before the post-norm
  Vec<T> ax_q, ax_k, ax_v, ax_qkv, ax_o;
  FfnCache<T> ffn;
  MoeCache<T> moe;
};

template <class T>
void gated_ffn_forward(const Ctx<T>& x, int il, const WeightView& gate, const WeightView& up, const WeightView& down,
                       LoraTarget tg, LoraTarget tu, LoraTarget td, bool adapt, const T* in, int n, T* out,
                       FfnCache<T>& f) {
  const int64_t ff = down.cols;
  T* g = grow(f.g, int64_t(n) * ff);
  T* u = grow(f.u, int64_t(n) * ff);
  if (gate.empty()) {  // fused: up gives [gate | up]
    Vec<T> gu(static_cast<size_t>(n) * 2 * ff);
    project<T>(x.pool, up, adapt ? x.param(il, tu) : nullptr, in, n, gu.data(), f.ax_up);
    for (int t = 0; t < n; ++t) {
      std::copy_n(gu.data() + int64_t(t) * 2 * ff, ff, g + int64_t(t) * ff);
      std::copy_n(gu.data() + int64_t(t) * 2 * ff + ff, ff, u + int64_t(t) * ff);
    }
  } else {
    project<T>(x.pool, gate, adapt ? x.param(il, tg) : nullptr, in, n, g, f.ax_gate);
    project<T>(x.pool, up, adapt ? x.param(il, tu) : nullptr, in, n, u, f.ax_up);
  }
  T* act = grow(f.act, int64_t(n) * ff);
  const bool gelu_act = x.c.activation == FfnActivation::GeLU;
  for (int64_t i = 0; i < int64_t(n) * ff; ++i)
    act[i] = (gelu_act ? gelu(g[i]) : g[i] * sigmoid(g[i])) * u[i];
  project<T>(x.pool, down, adapt ? x.param(il, td) : nullptr, act, n, out, f.ax_down);
}

template <class T>
void gated_ffn_backward(const Ctx<T>& x, int il, const WeightView& gate, const WeightView& up, const WeightView& down,
                        LoraTarget tg, LoraTarget tu, LoraTarget td, bool adapt, const T* in, int n, const T* dout,
                        T* din, FfnCache<T>& f) {
  const int64_t ff = down.cols;
  Vec<T> dact(static_cast<size_t>(n) * ff, T(0));
  project_backward<T>(x.pool, down, adapt ? x.param(il, td) : nullptr, f.act.data(), n, dout, dact.data(), f.ax_down);
  Vec<T> dg(static_cast<size_t>(n) * ff), du(static_cast<size_t>(n) * ff);
  const bool gelu_act = x.c.activation == FfnActivation::GeLU;
  for (int64_t i = 0; i < int64_t(n) * ff; ++i) {
    const T gv = f.g[size_t(i)];
    if (gelu_act) {
      du[size_t(i)] = dact[size_t(i)] * gelu(gv);
      dg[size_t(i)] = dact[size_t(i)] * f.u[size_t(i)] * gelu_grad(gv);
    } else {
      const T sg = sigmoid(gv);
      du[size_t(i)] = dact[size_t(i)] * gv * sg;
      dg[size_t(i)] = dact[size_t(i)] * f.u[size_t(i)] * sg * (T(1) + gv * (T(1) - sg));
    }
  }
  if (gate.empty()) {
    Vec<T> dgu(static_cast<size_t>(n) * 2 * ff);
    for (int t = 0; t < n; ++t) {
      std::copy_n(dg.data() + int64_t(t) * ff, ff, dgu.data() + int64_t(t) * 2 * ff);
      std::copy_n(du.data() + int64_t(t) * ff, ff, dgu.data() + int64_t(t) * 2 * ff + ff);
    }
    project_backward<T>(x.pool, up, adapt ? x.param(il, tu) : nullptr, in, n, dgu.data(), din, f.ax_up);
  } else {
    project_backward<T>(x.pool, gate, adapt ? x.param(il, tg) : nullptr, in, n, dg.data(), din, f.ax_gate);
    project_backward<T>(x.pool, up, adapt ? x.param(il, tu) : nullptr, in, n, du.data(), din, f.ax_up);
  }
}

// Mixture of experts: softmax over the router, the top k renormalised to sum 1, the chosen
// experts' outputs weighted by them (plus a shared expert where the family has one).
template <class T>
void moe_forward(const Ctx<T>& x, int il, const T* in, T* out, MoeCache<T>& m) {
  const ModelConfig& c = x.c;
  const LayerWeights& lw = x.w.layers[size_t(il)];
  const int n = x.n, E = c.n_embd, ne = c.n_expert, k = c.n_expert_used;
  m.logits.assign(size_t(n) * ne, T(0));
  project<T>(x.pool, lw.router, x.param(il, LoraTarget::ffn_gate_inp), in, n, m.logits.data(), m.ax_router);
  m.probs = m.logits;
  m.chosen.assign(size_t(n), {});
  m.weight.assign(size_t(n), {});
  m.rows.assign(size_t(ne), {});
  std::vector<int> order(static_cast<size_t>(ne));
  for (int t = 0; t < n; ++t) {
    T* p = m.probs.data() + int64_t(t) * ne;
    const T mx = *std::max_element(p, p + ne);
    T sum = 0;
    for (int e = 0; e < ne; ++e) sum += p[e] = std::exp(p[e] - mx);
    for (int e = 0; e < ne; ++e) p[e] /= sum;
    for (int e = 0; e < ne; ++e) order[size_t(e)] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    T z = 0;
    for (int i = 0; i < k; ++i) z += p[order[size_t(i)]];
    z = std::max(z, T(6.103515625e-5));
    for (int i = 0; i < k; ++i) {
      m.chosen[size_t(t)].push_back(order[size_t(i)]);
      m.weight[size_t(t)].push_back(p[order[size_t(i)]] / z);
      m.rows[size_t(order[size_t(i)])].push_back(t);
    }
  }
  std::fill(out, out + int64_t(n) * E, T(0));
  m.xe.assign(size_t(ne), {});
  m.ye.assign(size_t(ne), {});
  m.ffn.assign(size_t(ne), {});
  for (int e = 0; e < ne; ++e) {
    const int rows = int(m.rows[size_t(e)].size());
    if (rows == 0) continue;
    m.xe[size_t(e)].resize(size_t(rows) * E);
    m.ye[size_t(e)].resize(size_t(rows) * E);
    for (int i = 0; i < rows; ++i)
      std::copy_n(in + int64_t(m.rows[size_t(e)][size_t(i)]) * E, E, m.xe[size_t(e)].data() + int64_t(i) * E);
    gated_ffn_forward<T>(x, il, lw.gate_exps.expert(e), lw.up_exps.expert(e), lw.down_exps.expert(e),
                         LoraTarget::ffn_gate_exps, LoraTarget::ffn_up_exps, LoraTarget::ffn_down_exps, false,
                         m.xe[size_t(e)].data(), rows, m.ye[size_t(e)].data(), m.ffn[size_t(e)]);
  }
  for (int t = 0; t < n; ++t)
    for (size_t i = 0; i < m.chosen[size_t(t)].size(); ++i) {
      const int e = m.chosen[size_t(t)][i];
      const auto& rows = m.rows[size_t(e)];
      const int row = int(std::find(rows.begin(), rows.end(), t) - rows.begin());
      const T wt = m.weight[size_t(t)][i];
      const T* ye = m.ye[size_t(e)].data() + int64_t(row) * E;
      for (int d = 0; d < E; ++d) out[int64_t(t) * E + d] += wt * ye[d];
    }
  if (c.n_ff_shared > 0) {
    m.ys.resize(size_t(n) * E);
    gated_ffn_forward<T>(x, il, lw.gate_shexp, lw.up_shexp, lw.down_shexp, LoraTarget::ffn_gate_shexp,
                         LoraTarget::ffn_up_shexp, LoraTarget::ffn_down_shexp, true, in, n, m.ys.data(), m.shared);
    for (int64_t i = 0; i < int64_t(n) * E; ++i) out[i] += m.ys[size_t(i)];
  }
}

template <class T>
void moe_backward(const Ctx<T>& x, int il, const T* in, const T* dout, T* din, MoeCache<T>& m) {
  const ModelConfig& c = x.c;
  const LayerWeights& lw = x.w.layers[size_t(il)];
  const int n = x.n, E = c.n_embd, ne = c.n_expert;
  Vec<T> dlogits(static_cast<size_t>(n) * ne, T(0));
  // Through the weights: y_t = Σ_e w_te·ye → dw_te = dy_t·ye, then the renormalisation and
  // the softmax down to the router logits.
  std::vector<Vec<T>> dye(static_cast<size_t>(ne));
  for (int e = 0; e < ne; ++e) dye[size_t(e)].assign(m.ye[size_t(e)].size(), T(0));
  for (int t = 0; t < n; ++t) {
    const auto& chosen = m.chosen[size_t(t)];
    const T* dy = dout + int64_t(t) * E;
    std::vector<T> dw(chosen.size());
    for (size_t i = 0; i < chosen.size(); ++i) {
      const int e = chosen[i];
      const auto& rows = m.rows[size_t(e)];
      const int row = int(std::find(rows.begin(), rows.end(), t) - rows.begin());
      const T* ye = m.ye[size_t(e)].data() + int64_t(row) * E;
      T* dyr = dye[size_t(e)].data() + int64_t(row) * E;
      const T wt = m.weight[size_t(t)][i];
      T dot = 0;
      for (int d = 0; d < E; ++d) {
        dot += dy[d] * ye[d];
        dyr[d] += wt * dy[d];
      }
      dw[i] = dot;
    }
    const T* p = m.probs.data() + int64_t(t) * ne;
    T z = 0, wdw = 0;
    for (size_t i = 0; i < chosen.size(); ++i) z += p[chosen[i]], wdw += m.weight[size_t(t)][i] * dw[i];
    z = std::max(z, T(6.103515625e-5));
    std::vector<T> dp(static_cast<size_t>(ne), T(0));
    for (size_t i = 0; i < chosen.size(); ++i) dp[size_t(chosen[i])] = (dw[i] - wdw) / z;
    T pdp = 0;
    for (int e = 0; e < ne; ++e) pdp += p[e] * dp[size_t(e)];
    for (int e = 0; e < ne; ++e) dlogits[size_t(int64_t(t) * ne + e)] = p[e] * (dp[size_t(e)] - pdp);
  }
  for (int e = 0; e < ne; ++e) {
    const int rows = int(m.rows[size_t(e)].size());
    if (rows == 0) continue;
    Vec<T> dxe(static_cast<size_t>(rows) * E, T(0));
    gated_ffn_backward<T>(x, il, lw.gate_exps.expert(e), lw.up_exps.expert(e), lw.down_exps.expert(e),
                          LoraTarget::ffn_gate_exps, LoraTarget::ffn_up_exps, LoraTarget::ffn_down_exps, false,
                          m.xe[size_t(e)].data(), rows, dye[size_t(e)].data(), dxe.data(), m.ffn[size_t(e)]);
    for (int i = 0; i < rows; ++i) {
      T* dst = din + int64_t(m.rows[size_t(e)][size_t(i)]) * E;
      for (int d = 0; d < E; ++d) dst[d] += dxe[size_t(int64_t(i) * E + d)];
    }
  }
  if (c.n_ff_shared > 0)
    gated_ffn_backward<T>(x, il, lw.gate_shexp, lw.up_shexp, lw.down_shexp, LoraTarget::ffn_gate_shexp,
                          LoraTarget::ffn_up_shexp, LoraTarget::ffn_down_shexp, true, in, n, dout, din, m.shared);
  project_backward<T>(x.pool, lw.router, x.param(il, LoraTarget::ffn_gate_inp), in, n, dlogits.data(), din,
                      m.ax_router);
}

// Whether query token t sees key token j: causal, inside its segment, inside the window.
constexpr int kAttnRows = 64;  // queries (or keys) per block of attention's products

// out[c][r] = in[r][c] for rows × cols of in (rows ld apart); out rows are `rows` long.
template <class T>
void transpose(const T* in, int64_t ld, int64_t rows, int64_t cols, T* out) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) out[c * rows + r] = in[r * ld + c];
}

template <class T>
bool visible(const Ctx<T>& x, bool sliding, int t, int j) {
  if (j > t || x.seq.segment[size_t(j)] != x.seq.segment[size_t(t)]) return false;
  return !sliding || x.seq.pos[size_t(t)] - x.seq.pos[size_t(j)] < x.c.sliding_window;
}

template <class T>
void attention_forward(const Ctx<T>& x, int il, LayerCache<T>& lc) {
  const ModelConfig& c = x.c;
  const LayerConfig& L = c.layers[size_t(il)];
  const LayerWeights& lw = x.w.layers[size_t(il)];
  const int n = x.n, hk = c.head_dim_k, hv = c.head_dim_v;
  const int64_t q_w = int64_t(L.n_head) * hk, k_w = int64_t(L.n_head_kv) * hk, v_w = int64_t(L.n_head_kv) * hv;
  lc.q.resize(size_t(n * q_w));
  lc.k.resize(size_t(n * k_w));
  lc.v.resize(size_t(n * v_w));
  if (c.fused_qkv) {
    Vec<T> qkv(static_cast<size_t>(n * (q_w + k_w + v_w)));
    project<T>(x.pool, lw.wqkv, x.param(il, LoraTarget::attn_qkv), lc.a.data(), n, qkv.data(), lc.ax_qkv);
    for (int t = 0; t < n; ++t) {
      const T* r = qkv.data() + int64_t(t) * (q_w + k_w + v_w);
      std::copy_n(r, q_w, lc.q.data() + t * q_w);
      std::copy_n(r + q_w, k_w, lc.k.data() + t * k_w);
      std::copy_n(r + q_w + k_w, v_w, lc.v.data() + t * v_w);
    }
  } else {
    project<T>(x.pool, lw.wq, x.param(il, LoraTarget::attn_q), lc.a.data(), n, lc.q.data(), lc.ax_q);
    project<T>(x.pool, lw.wk, x.param(il, LoraTarget::attn_k), lc.a.data(), n, lc.k.data(), lc.ax_k);
    project<T>(x.pool, lw.wv, x.param(il, LoraTarget::attn_v), lc.a.data(), n, lc.v.data(), lc.ax_v);
  }
  lc.qr = lc.q;
  lc.kr = lc.k;
  const RopeParams rp = layer_rope(c, x.w, il, x.n_ctx);
  for (int t = 0; t < n; ++t) {
    T* qt = lc.qr.data() + t * q_w;
    T* kt = lc.kr.data() + t * k_w;
    if (c.qk_norm) {
      for (int h = 0; h < L.n_head; ++h) rmsnorm_forward(qt + h * hk, lw.q_norm, qt + h * hk, hk, c.rms_eps);
      for (int h = 0; h < L.n_head_kv; ++h) rmsnorm_forward(kt + h * hk, lw.k_norm, kt + h * hk, hk, c.rms_eps);
    }
    if (c.use_rope) {
      rope_rotate(qt, L.n_head, hk, x.seq.pos[size_t(t)], rp, false);
      rope_rotate(kt, L.n_head_kv, hk, x.seq.pos[size_t(t)], rp, false);
    }
  }
  // Per head, in blocks of kAttnRows queries: S = Q·Kᵀ over the keys up to the block's last
  // query, the masked softmax row by row (kept in probs for the backward pass), O += P·V.
  const int group = L.n_head / L.n_head_kv;
  const int64_t o_w = int64_t(L.n_head) * hv;
  lc.o.assign(size_t(n * o_w), T(0));
  lc.probs.assign(size_t(L.n_head) * n * n, T(0));
  const bool cap = c.attn_softcap > 0;
  if (cap) lc.capped.assign(lc.probs.size(), T(0));
  x.pool.parallel_for(L.n_head_kv, [&](int64_t g0, int64_t g1, int) {
    Vec<T> kt(static_cast<size_t>(hk) * n), s(static_cast<size_t>(kAttnRows) * n);
    for (int64_t kvh = g0; kvh < g1; ++kvh) {
      transpose(lc.kr.data() + kvh * hk, k_w, n, hk, kt.data());
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
        for (int t0 = 0; t0 < n; t0 += kAttnRows) {
          const int t1 = std::min(n, t0 + kAttnRows);
          std::fill(s.begin(), s.end(), T(0));
          gemm_acc<T>(t1 - t0, t1, hk, lc.qr.data() + t0 * q_w + h * hk, q_w, kt.data(), n, s.data(), n);
          for (int t = t0; t < t1; ++t) {
            T* st = s.data() + int64_t(t - t0) * n;
            T* p = lc.probs.data() + (h * n + t) * n;
            T mx = -INFINITY;
            for (int j = 0; j <= t; ++j) {
              if (!visible(x, L.sliding, t, j)) continue;
              T sc = st[j] * T(c.attn_scale);
              if (cap) {
                sc = T(c.attn_softcap) * std::tanh(sc / T(c.attn_softcap));
                lc.capped[size_t((h * n + t) * n + j)] = sc;
              }
              st[j] = sc;
              mx = std::max(mx, sc);
            }
            T sum = 0;
            for (int j = 0; j <= t; ++j)
              if (visible(x, L.sliding, t, j)) sum += p[j] = std::exp(st[j] - mx);
            for (int j = 0; j <= t; ++j) p[j] /= sum;
          }
          gemm_acc<T>(t1 - t0, hv, t1, lc.probs.data() + (h * n + t0) * n, n, lc.v.data() + kvh * hv, v_w,
                      lc.o.data() + t0 * o_w + h * hv, o_w);
        }
    }
  });
  lc.attn.resize(size_t(n) * c.n_embd);
  project<T>(x.pool, lw.wo, x.param(il, LoraTarget::attn_output), lc.o.data(), n, lc.attn.data(), lc.ax_o);
}

// d(attn) → d(a), added into da.
template <class T>
void attention_backward(const Ctx<T>& x, int il, LayerCache<T>& lc, const T* dattn, T* da) {
  const ModelConfig& c = x.c;
  const LayerConfig& L = c.layers[size_t(il)];
  const LayerWeights& lw = x.w.layers[size_t(il)];
  const int n = x.n, hk = c.head_dim_k, hv = c.head_dim_v;
  const int64_t q_w = int64_t(L.n_head) * hk, k_w = int64_t(L.n_head_kv) * hk, v_w = int64_t(L.n_head_kv) * hv;
  const int64_t o_w = int64_t(L.n_head) * hv;
  Vec<T> dout_o(static_cast<size_t>(n * o_w), T(0));
  project_backward<T>(x.pool, lw.wo, x.param(il, LoraTarget::attn_output), lc.o.data(), n, dattn, dout_o.data(), lc.ax_o);

  Vec<T> dq(static_cast<size_t>(n * q_w), T(0)), dk(static_cast<size_t>(n * k_w), T(0)), dv(static_cast<size_t>(n * v_w), T(0));
  const int group = L.n_head / L.n_head_kv;
  const bool cap = c.attn_softcap > 0;
  // One KV head (and its group of query heads) per job: dk and dv of a KV head have one writer.
  // Per head: dP = dO·Vᵀ, dV += Pᵀ·dO, dS = P⊙(dP − rowsum(P⊙dP)) (through the softcap and
  // scale), dQ += dS·K, dK += dSᵀ·Q; causal, so query blocks stop at their last key and key
  // blocks start at their first.
  x.pool.parallel_for(L.n_head_kv, [&](int64_t g0, int64_t g1, int) {
    const size_t nn = size_t(n) * size_t(n);
    Vec<T> vt(static_cast<size_t>(hv) * n), dp(nn), pt(nn), ds(nn);
    for (int64_t kvh = g0; kvh < g1; ++kvh) {
      transpose(lc.v.data() + kvh * hv, v_w, n, hv, vt.data());
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        const T* P = lc.probs.data() + h * int64_t(nn);
        std::fill(dp.begin(), dp.end(), T(0));
        for (int t0 = 0; t0 < n; t0 += kAttnRows) {
          const int t1 = std::min(n, t0 + kAttnRows);
          gemm_acc<T>(t1 - t0, t1, hv, dout_o.data() + t0 * o_w + h * hv, o_w, vt.data(), n, dp.data() + int64_t(t0) * n, n);
        }
        for (int t = 0; t < n; ++t) {
          const T* p = P + int64_t(t) * n;
          const T* dpt = dp.data() + int64_t(t) * n;
          T* dst = ds.data() + int64_t(t) * n;
          T pdp = 0;
          for (int j = 0; j <= t; ++j) pdp += p[j] * dpt[j];
          for (int j = 0; j < n; ++j) {
            if (j > t || p[j] == T(0)) {
              dst[j] = 0;
              continue;
            }
            T d = p[j] * (dpt[j] - pdp);
            if (cap) {
              const T cv = lc.capped[size_t((h * n + t) * n + j)] / T(c.attn_softcap);
              d *= T(1) - cv * cv;
            }
            dst[j] = d * T(c.attn_scale);
          }
        }
        transpose(P, n, n, n, pt.data());
        for (int j0 = 0; j0 < n; j0 += kAttnRows) {
          const int j1 = std::min(n, j0 + kAttnRows);
          gemm_acc<T>(j1 - j0, hv, n - j0, pt.data() + int64_t(j0) * n + j0, n, dout_o.data() + j0 * o_w + h * hv, o_w,
                      dv.data() + j0 * v_w + kvh * hv, v_w);
        }
        for (int t0 = 0; t0 < n; t0 += kAttnRows) {
          const int t1 = std::min(n, t0 + kAttnRows);
          gemm_acc<T>(t1 - t0, hk, t1, ds.data() + int64_t(t0) * n, n, lc.kr.data() + kvh * hk, k_w,
                      dq.data() + t0 * q_w + h * hk, q_w);
        }
        transpose(ds.data(), n, n, n, pt.data());
        for (int j0 = 0; j0 < n; j0 += kAttnRows) {
          const int j1 = std::min(n, j0 + kAttnRows);
          gemm_acc<T>(j1 - j0, hk, n - j0, pt.data() + int64_t(j0) * n + j0, n, lc.qr.data() + j0 * q_w + h * hk, q_w,
                      dk.data() + j0 * k_w + kvh * hk, k_w);
        }
      }
    }
  });
  // Back through RoPE (the inverse rotation) and the QK norms, to the projections' outputs.
  const RopeParams rp = layer_rope(c, x.w, il, x.n_ctx);
  for (int t = 0; t < n; ++t) {
    T* dqt = dq.data() + t * q_w;
    T* dkt = dk.data() + t * k_w;
    if (c.use_rope) {
      rope_rotate(dqt, L.n_head, hk, x.seq.pos[size_t(t)], rp, true);
      rope_rotate(dkt, L.n_head_kv, hk, x.seq.pos[size_t(t)], rp, true);
    }
    if (c.qk_norm) {
      Vec<T> tmp(static_cast<size_t>(std::max(q_w, k_w)), T(0));
      std::fill(tmp.begin(), tmp.end(), T(0));
      for (int h = 0; h < L.n_head; ++h)
        rmsnorm_backward(lc.q.data() + t * q_w + h * hk, lw.q_norm, dqt + h * hk, tmp.data() + h * hk, hk, c.rms_eps);
      std::copy_n(tmp.data(), q_w, dqt);
      std::fill(tmp.begin(), tmp.end(), T(0));
      for (int h = 0; h < L.n_head_kv; ++h)
        rmsnorm_backward(lc.k.data() + t * k_w + h * hk, lw.k_norm, dkt + h * hk, tmp.data() + h * hk, hk, c.rms_eps);
      std::copy_n(tmp.data(), k_w, dkt);
    }
  }
  if (c.fused_qkv) {
    Vec<T> dqkv(static_cast<size_t>(n * (q_w + k_w + v_w)));
    for (int t = 0; t < n; ++t) {
      T* r = dqkv.data() + int64_t(t) * (q_w + k_w + v_w);
      std::copy_n(dq.data() + t * q_w, q_w, r);
      std::copy_n(dk.data() + t * k_w, k_w, r + q_w);
      std::copy_n(dv.data() + t * v_w, v_w, r + q_w + k_w);
    }
    project_backward<T>(x.pool, lw.wqkv, x.param(il, LoraTarget::attn_qkv), lc.a.data(), n, dqkv.data(), da, lc.ax_qkv);
  } else {
    project_backward<T>(x.pool, lw.wq, x.param(il, LoraTarget::attn_q), lc.a.data(), n, dq.data(), da, lc.ax_q);
    project_backward<T>(x.pool, lw.wk, x.param(il, LoraTarget::attn_k), lc.a.data(), n, dk.data(), da, lc.ax_k);
    project_backward<T>(x.pool, lw.wv, x.param(il, LoraTarget::attn_v), lc.a.data(), n, dv.data(), da, lc.ax_v);
  }
}

// h_out = layer(h_in), keeping what the backward pass needs in lc.
template <class T>
void layer_forward(const Ctx<T>& x, int il, const T* h_in, T* h_out, LayerCache<T>& lc) {
  const ModelConfig& c = x.c;
  const LayerWeights& lw = x.w.layers[size_t(il)];
  const int n = x.n, E = c.n_embd;
  const int64_t nE = int64_t(n) * E;
  lc.a.resize(size_t(nE));
  rmsnorm_rows<T>(x.pool, h_in, lw.attn_norm, lc.a.data(), n, E, c.rms_eps);
  attention_forward<T>(x, il, lc);
  Vec<T> branch = lc.attn;
  if (lw.post_attn_norm) rmsnorm_rows<T>(x.pool, lc.attn.data(), lw.post_attn_norm, branch.data(), n, E, c.rms_eps);
  lc.h1.resize(size_t(nE));
  for (int64_t i = 0; i < nE; ++i) lc.h1[size_t(i)] = h_in[i] + T(c.residual_scale) * branch[size_t(i)];

  lc.b.resize(size_t(nE));
  rmsnorm_rows<T>(x.pool, lc.h1.data(), lw.ffn_norm, lc.b.data(), n, E, c.rms_eps);
  lc.ffn_out.resize(size_t(nE));
  if (c.n_expert > 0)
    moe_forward<T>(x, il, lc.b.data(), lc.ffn_out.data(), lc.moe);
  else
    gated_ffn_forward<T>(x, il, lw.gate, lw.up, lw.down, LoraTarget::ffn_gate, LoraTarget::ffn_up, LoraTarget::ffn_down,
                         true, lc.b.data(), n, lc.ffn_out.data(), lc.ffn);
  branch = lc.ffn_out;
  if (lw.post_ffn_norm) rmsnorm_rows<T>(x.pool, lc.ffn_out.data(), lw.post_ffn_norm, branch.data(), n, E, c.rms_eps);
  for (int64_t i = 0; i < nE; ++i) h_out[i] = lc.h1[size_t(i)] + T(c.residual_scale) * branch[size_t(i)];
}

// dh: in, d(loss)/d(h_out); out, d(loss)/d(h_in).
template <class T>
void layer_backward(const Ctx<T>& x, int il, const T* h_in, LayerCache<T>& lc, T* dh) {
  const ModelConfig& c = x.c;
  const LayerWeights& lw = x.w.layers[size_t(il)];
  const int n = x.n, E = c.n_embd;
  const int64_t nE = int64_t(n) * E;
  // FFN half: h_out = h1 + rs·post(ffn(norm(h1))).
  Vec<T> dbranch(static_cast<size_t>(nE)), dffn(static_cast<size_t>(nE), T(0));
  for (int64_t i = 0; i < nE; ++i) dbranch[size_t(i)] = T(c.residual_scale) * dh[i];
  if (lw.post_ffn_norm)
    rmsnorm_rows_backward<T>(x.pool, lc.ffn_out.data(), lw.post_ffn_norm, dbranch.data(), dffn.data(), n, E, c.rms_eps);
  else
    dffn = dbranch;
  Vec<T> db(static_cast<size_t>(nE), T(0));
  if (c.n_expert > 0)
    moe_backward<T>(x, il, lc.b.data(), dffn.data(), db.data(), lc.moe);
  else
    gated_ffn_backward<T>(x, il, lw.gate, lw.up, lw.down, LoraTarget::ffn_gate, LoraTarget::ffn_up, LoraTarget::ffn_down,
                          true, lc.b.data(), n, dffn.data(), db.data(), lc.ffn);
  rmsnorm_rows_backward<T>(x.pool, lc.h1.data(), lw.ffn_norm, db.data(), dh, n, E, c.rms_eps);  // dh is now d(h1)

  // Attention half: h1 = h_in + rs·post(attn(norm(h_in))).
  Vec<T> dattn(static_cast<size_t>(nE), T(0));
  for (int64_t i = 0; i < nE; ++i) dbranch[size_t(i)] = T(c.residual_scale) * dh[i];
  if (lw.post_attn_norm)
    rmsnorm_rows_backward<T>(x.pool, lc.attn.data(), lw.post_attn_norm, dbranch.data(), dattn.data(), n, E, c.rms_eps);
  else
    dattn = dbranch;
  Vec<T> da(static_cast<size_t>(nE), T(0));
  attention_backward<T>(x, il, lc, dattn.data(), da.data());
  rmsnorm_rows_backward<T>(x.pool, h_in, lw.attn_norm, da.data(), dh, n, E, c.rms_eps);  // dh is now d(h_in)
}

// The loss over the final hidden states and, with backward, its gradient dh. Only positions
// with a weight are evaluated, a few at a time (the logits of a 128k vocabulary are large).
template <class T>
LossSum head_forward_backward(const Ctx<T>& x, const T* h, bool backward, T* dh) {
  const ModelConfig& c = x.c;
  const int E = c.n_embd, V = c.n_vocab;
  std::vector<int> rows;
  for (int t = 0; t + 1 < x.n; ++t)
    if (x.seq.weight[size_t(t)] != 0.0f) rows.push_back(t);
  LossSum total;
  // Rows per pass over the output matrix: each pass dequantizes the whole (often 128k-row)
  // matrix once in the backward product, so fewer, larger passes (64 MiB of logits at 128k).
  constexpr int kChunk = 128;
  Vec<T> xs, xn, logits, dl, dxn;
  for (size_t r0 = 0; r0 < rows.size(); r0 += kChunk) {
    const int m = int(std::min<size_t>(kChunk, rows.size() - r0));
    xs.resize(size_t(m) * E);
    xn.resize(size_t(m) * E);
    for (int i = 0; i < m; ++i) std::copy_n(h + int64_t(rows[r0 + size_t(i)]) * E, E, xs.data() + int64_t(i) * E);
    rmsnorm_rows<T>(x.pool, xs.data(), x.w.output_norm, xn.data(), m, E, c.rms_eps);
    logits.resize(size_t(m) * V);
    base_matmul<T>(x.pool, x.w.output, xn.data(), m, logits.data());
    dl.assign(size_t(m) * V, T(0));
    for (int i = 0; i < m; ++i) {
      const int t = rows[r0 + size_t(i)];
      const T wt = T(x.seq.weight[size_t(t)]);
      const int32_t target = x.seq.tokens[size_t(t) + 1];
      T* z = logits.data() + int64_t(i) * V;
      for (int v = 0; v < V; ++v) {
        if (c.logit_scale != 1.0f) z[v] /= T(c.logit_scale);
        if (c.final_softcap > 0) z[v] = T(c.final_softcap) * std::tanh(z[v] / T(c.final_softcap));
      }
      const T mx = *std::max_element(z, z + V);
      T sum = 0;
      for (int v = 0; v < V; ++v) sum += std::exp(z[v] - mx);
      const T log_z = mx + std::log(sum);
      total.loss += double(wt * (log_z - z[target]));
      total.weight += double(wt);
      if (!backward) continue;
      T* d = dl.data() + int64_t(i) * V;
      for (int v = 0; v < V; ++v) {
        T g = wt * (std::exp(z[v] - log_z) - (v == target ? T(1) : T(0)));
        if (c.final_softcap > 0) {
          const T cv = z[v] / T(c.final_softcap);
          g *= T(1) - cv * cv;
        }
        if (c.logit_scale != 1.0f) g /= T(c.logit_scale);
        d[v] = g;
      }
    }
    if (!backward) continue;
    dxn.assign(size_t(m) * E, T(0));
    base_matmul_t<T>(x.pool, x.w.output, dl.data(), m, dxn.data());
    for (int i = 0; i < m; ++i)
      rmsnorm_backward(xs.data() + int64_t(i) * E, x.w.output_norm, dxn.data() + int64_t(i) * E,
                       dh + int64_t(rows[r0 + size_t(i)]) * E, E, c.rms_eps);
  }
  return total;
}

}  // namespace

template <typename T>
LossSum forward_backward(const Model& model, LoraModel& lora, const Sequence& seq, int n_ctx, ThreadPool& pool,
                         bool backward) {
  const ModelConfig& c = model.config();
  const Weights& w = model.weights();
  const int n = int(seq.tokens.size());
  if (n < 2) throw Error("a training sequence needs at least 2 tokens");
  if (seq.weight.size() != size_t(n) || seq.pos.size() != size_t(n) || seq.segment.size() != size_t(n))
    throw Error("training sequence: tokens, weights, positions and segments differ in length");
  for (int32_t t : seq.tokens)
    if (t < 0 || t >= c.n_vocab) throw Error("training sequence: token id " + std::to_string(t) + " outside the vocabulary");
  const Ctx<T> x{c, w, lora, seq, n_ctx, pool, n};
  const int E = c.n_embd;
  const int64_t nE = int64_t(n) * E;

  Vec<T> h(static_cast<size_t>(nE));
  {
    std::vector<float> row(static_cast<size_t>(E));
    for (int t = 0; t < n; ++t) {
      get_row(w.token_embd, seq.tokens[size_t(t)], row.data());
      for (int d = 0; d < E; ++d) h[size_t(int64_t(t) * E + d)] = T(row[size_t(d)]) * T(c.embd_scale);
    }
  }
  // Forward, keeping only each layer's input (the checkpoints).
  std::vector<Vec<T>> inputs(static_cast<size_t>(c.n_layer));
  Vec<T> next(static_cast<size_t>(nE));
  for (int il = 0; il < c.n_layer; ++il) {
    inputs[size_t(il)] = h;
    LayerCache<T> lc;
    layer_forward<T>(x, il, h.data(), next.data(), lc);
    h.swap(next);
  }
  Vec<T> dh(static_cast<size_t>(nE), T(0));
  const LossSum loss = head_forward_backward<T>(x, h.data(), backward, dh.data());
  if (!backward) return loss;
  // Backward, layer by layer from the top, recomputing each layer from its checkpoint.
  for (int il = c.n_layer - 1; il >= 0; --il) {
    LayerCache<T> lc;
    layer_forward<T>(x, il, inputs[size_t(il)].data(), next.data(), lc);
    layer_backward<T>(x, il, inputs[size_t(il)].data(), lc, dh.data());
    Vec<T>().swap(inputs[size_t(il)]);
  }
  return loss;
}

template LossSum forward_backward<float>(const Model&, LoraModel&, const Sequence&, int, ThreadPool&, bool);
template LossSum forward_backward<double>(const Model&, LoraModel&, const Sequence&, int, ThreadPool&, bool);

}  // namespace slm::train
