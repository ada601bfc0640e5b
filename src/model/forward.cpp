// The forward pass of every supported family: one decoder block whose switches come from
// ModelConfig (see config.h). Reads like the papers:
//   h = embed(tokens) · embd_scale
//   per layer:  h += res_scale · post_norm(attn(norm(h)))      attention with RoPE, GQA, KV cache
//               h += res_scale · post_norm(ffn(norm(h)))       SwiGLU / GeGLU / MoE
//   logits = softcap(output · norm(h) / logit_scale)
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "model/config.h"
#include "model/weights.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {

namespace {

using Buf = std::vector<float>;

// Rows t of a [n][width] buffer.
inline float* row(Buf& b, int t, int64_t width) { return b.data() + t * width; }

void rmsnorm_rows(ThreadPool& pool, const float* x, const float* w, float* y, int n, int64_t width, float eps) {
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) rmsnorm(x + t * width, w, y + t * width, width, eps);
  });
}

RopeParams layer_rope(const ModelConfig& c, const Weights& w, int il, int n_ctx) {
  const LayerConfig& L = c.layers[il];
  RopeParams rp;
  rp.mode = c.rope_mode;
  rp.n_rot = c.n_rot;
  rp.base = L.rope_base;
  rp.freq_scale = L.rope_freq_scale;
  rp.attn_factor = c.rope_attn_factor;
  rp.freq_factors = w.rope_freqs;
  // LongRoPE: llama.cpp chooses the factor set once per context, by its size: the long
  // factors when the context (which it pads up to a multiple of 256) exceeds the original.
  if (c.has_longrope) {
    const int64_t padded = (int64_t(n_ctx) + 255) / 256 * 256;
    rp.freq_factors = padded > c.rope_orig_ctx ? w.rope_long : w.rope_short;
  }
  return rp;
}

// Where each token of a batch belongs: its sequence's cache and its position there.
struct TokenSlot {
  KvCache* cache;
  int pos;
};

// Self-attention of layer il for the n tokens of a batch: a (normed input) -> out.
void attention(ThreadPool& pool, const ModelConfig& c, const Weights& w, int il,
               const std::vector<TokenSlot>& slots, const Buf& a, int n, Buf& out) {
  const LayerConfig& L = c.layers[il];
  const LayerWeights& lw = w.layers[il];
  const int hk = c.head_dim_k, hv = c.head_dim_v;
  const int64_t q_w = int64_t(L.n_head) * hk, k_w = int64_t(L.n_head_kv) * hk, v_w = int64_t(L.n_head_kv) * hv;

  Buf q(n * q_w), k(n * k_w), v(n * v_w);
  if (c.fused_qkv) {
    const int64_t qkv_w = q_w + k_w + v_w;
    Buf qkv(n * qkv_w);
    matmul(pool, lw.wqkv, a.data(), n, qkv.data());
    for (int t = 0; t < n; ++t) {
      const float* r = row(qkv, t, qkv_w);
      std::copy(r, r + q_w, row(q, t, q_w));
      std::copy(r + q_w, r + q_w + k_w, row(k, t, k_w));
      std::copy(r + q_w + k_w, r + qkv_w, row(v, t, v_w));
    }
  } else {
    matmul(pool, lw.wq, a.data(), n, q.data());
    matmul(pool, lw.wk, a.data(), n, k.data());
    matmul(pool, lw.wv, a.data(), n, v.data());
  }

  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const RopeParams rp = layer_rope(c, w, il, slots[t].cache->n_ctx());
      float* qt = row(q, t, q_w);
      float* kt = row(k, t, k_w);
      if (c.qk_norm) {
        for (int h = 0; h < L.n_head; ++h) rmsnorm(qt + h * hk, lw.q_norm, qt + h * hk, hk, c.rms_eps);
        for (int h = 0; h < L.n_head_kv; ++h) rmsnorm(kt + h * hk, lw.k_norm, kt + h * hk, hk, c.rms_eps);
      }
      if (c.use_rope) {
        rope(qt, L.n_head, hk, slots[t].pos, rp);
        rope(kt, L.n_head_kv, hk, slots[t].pos, rp);
      }
    }
  });
  for (int t = 0; t < n; ++t) slots[t].cache->store(il, slots[t].pos, row(k, t, k_w), row(v, t, v_w));

  // Causal GQA: query head h reads KV head h / (n_head / n_head_kv); a sliding layer sees
  // only the last `sliding_window` positions (p_q - p_k < window).
  const int group = L.n_head / L.n_head_kv;
  const int64_t o_w = int64_t(L.n_head) * hv;
  Buf o(n * o_w);
  pool.for_each(int64_t(n) * L.n_head, [&](int64_t job, int) {
    const int t = static_cast<int>(job / L.n_head), h = static_cast<int>(job % L.n_head);
    const int kvh = h / group;
    const KvCache& cache = *slots[t].cache;
    const int p = slots[t].pos;
    const int lo = L.sliding ? std::max(0, p - c.sliding_window + 1) : 0;
    std::vector<float> scores(p - lo + 1), tmp(std::max(hk, hv));
    const float* qh = row(q, t, q_w) + int64_t(h) * hk;
    for (int j = lo; j <= p; ++j) {
      float s = dot_f32(qh, cache.key(il, j, kvh * hk, hk, tmp.data()), hk) * c.attn_scale;
      if (c.attn_softcap > 0) s = c.attn_softcap * std::tanh(s / c.attn_softcap);
      scores[j - lo] = s;
    }
    softmax(scores.data(), int64_t(scores.size()));
    float* oh = row(o, t, o_w) + int64_t(h) * hv;
    std::fill(oh, oh + hv, 0.0f);
    for (int j = lo; j <= p; ++j) {
      const float* vj = cache.value(il, j, kvh * hv, hv, tmp.data());
      const float s = scores[j - lo];
      for (int d = 0; d < hv; ++d) oh[d] += s * vj[d];
    }
  });
  matmul(pool, lw.wo, o.data(), n, out.data());
}

// Gated FFN y = down(act(gate·x) ⊙ up·x) for n rows of x.
void gated_ffn(ThreadPool& pool, const ModelConfig& c, const WeightView& gate, const WeightView& up,
               const WeightView& down, const float* x, int n, float* y) {
  const int64_t ff = down.cols;
  Buf g(n * ff), u(n * ff);
  if (gate.empty()) {  // fused: up gives [gate | up] per row
    Buf gu(n * 2 * ff);
    matmul(pool, up, x, n, gu.data());
    for (int t = 0; t < n; ++t) {
      std::copy(&gu[t * 2 * ff], &gu[t * 2 * ff + ff], &g[t * ff]);
      std::copy(&gu[t * 2 * ff + ff], &gu[(t + 1) * 2 * ff], &u[t * ff]);
    }
  } else {
    matmul(pool, gate, x, n, g.data());
    matmul(pool, up, x, n, u.data());
  }
  if (c.activation == FfnActivation::GeLU)
    geglu(g.data(), u.data(), n * ff);
  else
    swiglu(g.data(), u.data(), n * ff);
  matmul(pool, down, g.data(), n, y);
}

// Mixture of experts: softmax over the router logits, keep the top k, renormalise their
// weights to sum 1, and run only the chosen experts (tokens grouped by expert).
void moe_ffn(ThreadPool& pool, const ModelConfig& c, const LayerWeights& lw, const Buf& x, int n, Buf& y) {
  const int E = c.n_embd, n_exp = c.n_expert, k = c.n_expert_used;
  Buf probs(n * n_exp);
  matmul(pool, lw.router, x.data(), n, probs.data());
  std::vector<std::vector<std::pair<int, float>>> routed(n_exp);  // expert -> (token, weight)
  for (int t = 0; t < n; ++t) {
    float* p = &probs[t * n_exp];
    softmax(p, n_exp);
    std::vector<int> order(n_exp);
    for (int e = 0; e < n_exp; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    float sum = 0;
    for (int i = 0; i < k; ++i) sum += p[order[i]];
    sum = std::max(sum, 6.103515625e-5f);
    for (int i = 0; i < k; ++i) routed[order[i]].push_back({t, p[order[i]] / sum});
  }
  std::fill(y.begin(), y.end(), 0.0f);
  for (int e = 0; e < n_exp; ++e) {
    const int m = static_cast<int>(routed[e].size());
    if (m == 0) continue;
    Buf xe(m * E), ye(m * E);
    for (int i = 0; i < m; ++i) std::copy(&x[routed[e][i].first * E], &x[(routed[e][i].first + 1) * E], &xe[i * E]);
    gated_ffn(pool, c, lw.gate_exps.expert(e), lw.up_exps.expert(e), lw.down_exps.expert(e), xe.data(), m, ye.data());
    for (int i = 0; i < m; ++i) {
      float* yt = &y[routed[e][i].first * E];
      for (int d = 0; d < E; ++d) yt[d] += routed[e][i].second * ye[i * E + d];
    }
  }
  if (c.n_ff_shared > 0) {
    Buf ys(n * E);
    gated_ffn(pool, c, lw.gate_shexp, lw.up_shexp, lw.down_shexp, x.data(), n, ys.data());
    for (int64_t i = 0; i < int64_t(n) * E; ++i) y[i] += ys[i];
  }
}

// h += scale · (post_norm(branch)), the residual connection with the optional extras.
void add_branch(ThreadPool& pool, const ModelConfig& c, const float* post_norm, Buf& branch, int n, Buf& h) {
  const int E = c.n_embd;
  if (post_norm) rmsnorm_rows(pool, branch.data(), post_norm, branch.data(), n, E, c.rms_eps);
  for (int64_t i = 0; i < int64_t(n) * E; ++i) h[i] += c.residual_scale == 1.0f ? branch[i] : c.residual_scale * branch[i];
}

}  // namespace

void Model::forward(ThreadPool& pool, KvCache& cache, const int32_t* tokens, int n, int pos0,
                    float* logits, bool all_logits) const {
  forward(pool, {SequenceBatch{&cache, tokens, n, pos0, logits, all_logits}});
}

void Model::forward(ThreadPool& pool, const std::vector<SequenceBatch>& batch) const {
  const ModelConfig& c = *config_;
  const Weights& w = *weights_;
  const int E = c.n_embd;

  // Lay the sequences' tokens out one after another; check each before touching a cache.
  std::vector<int32_t> tokens;
  std::vector<TokenSlot> slots;
  std::vector<int> out_rows;  // batch rows whose logits are wanted, in output order
  for (size_t i = 0; i < batch.size(); ++i) {
    const SequenceBatch& sb = batch[i];
    if (!sb.cache || !sb.tokens || !sb.logits || sb.n <= 0) throw Error("forward: a sequence with no tokens to evaluate");
    for (size_t j = 0; j < i; ++j)
      if (batch[j].cache == sb.cache) throw Error("forward: the same KV cache appears twice in one batch");
    if (sb.pos0 < 0 || int64_t(sb.pos0) + sb.n > sb.cache->n_ctx())
      throw Error("forward: positions " + std::to_string(sb.pos0) + ".." + std::to_string(int64_t(sb.pos0) + sb.n - 1) +
                  " do not fit the context of " + std::to_string(sb.cache->n_ctx()));
    for (int t = 0; t < sb.n; ++t) {
      if (sb.tokens[t] < 0 || sb.tokens[t] >= c.n_vocab)
        throw Error("forward: token id " + std::to_string(sb.tokens[t]) + " outside the vocabulary of " +
                    std::to_string(c.n_vocab));
      if (sb.all_logits || t == sb.n - 1) out_rows.push_back(static_cast<int>(tokens.size()));
      tokens.push_back(sb.tokens[t]);
      slots.push_back({sb.cache, sb.pos0 + t});
    }
  }
  if (tokens.empty()) throw Error("forward: no tokens to evaluate");
  const int n = static_cast<int>(tokens.size());

  Buf h(int64_t(n) * E), a(int64_t(n) * E), branch(int64_t(n) * E);
  for (int t = 0; t < n; ++t) {
    get_row(w.token_embd, tokens[t], row(h, t, E));
    if (c.embd_scale != 1.0f)
      for (int d = 0; d < E; ++d) h[int64_t(t) * E + d] *= c.embd_scale;
  }

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = w.layers[il];
    rmsnorm_rows(pool, h.data(), lw.attn_norm, a.data(), n, E, c.rms_eps);
    attention(pool, c, w, il, slots, a, n, branch);
    add_branch(pool, c, lw.post_attn_norm, branch, n, h);

    rmsnorm_rows(pool, h.data(), lw.ffn_norm, a.data(), n, E, c.rms_eps);
    if (c.n_expert > 0)
      moe_ffn(pool, c, lw, a, n, branch);
    else
      gated_ffn(pool, c, lw.gate, lw.up, lw.down, a.data(), n, branch.data());
    add_branch(pool, c, lw.post_ffn_norm, branch, n, h);
  }

  // Final norm and output projection for the rows whose logits are wanted only.
  const int m = static_cast<int>(out_rows.size());
  for (int i = 0; i < m; ++i) std::copy_n(row(h, out_rows[i], E), E, row(branch, i, E));
  rmsnorm_rows(pool, branch.data(), w.output_norm, a.data(), m, E, c.rms_eps);
  Buf out(int64_t(m) * c.n_vocab);
  matmul(pool, w.output, a.data(), m, out.data());
  for (float& x : out) {
    if (c.logit_scale != 1.0f) x *= 1.0f / c.logit_scale;
    if (c.final_softcap > 0) x = c.final_softcap * std::tanh(x / c.final_softcap);
  }
  int next = 0;
  for (const SequenceBatch& sb : batch) {
    const int rows = sb.all_logits ? sb.n : 1;
    std::copy_n(out.data() + int64_t(next) * c.n_vocab, int64_t(rows) * c.n_vocab, sb.logits);
    next += rows;
  }
}

}  // namespace slm
