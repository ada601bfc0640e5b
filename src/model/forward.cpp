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

#include "kernels/attention.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/lora.h"
#include "model/weights.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {

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

namespace {

using Buf = std::vector<float>;

void rmsnorm_rows(ThreadPool& pool, const float* x, const float* w, float* y, int n, int64_t width, float eps) {
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) rmsnorm(x + t * width, w, y + t * width, width, eps);
  });
}

// Where each token of a batch belongs: its sequence's cache and its position there.
struct TokenSlot {
  KvCache* cache;
  int pos;
};

// Scratch buffers of a forward pass, kept per calling thread and only ever grown, so the
// token loop does not allocate (and a 512-token prompt does not page-fault megabytes of
// fresh memory in every layer).
// One job of attention split by keys: a block's rows against one KV head over one chunk.
struct AttentionPart {
  int t0, t1, kvh, c0;
  int64_t at, bound;  // offsets of the job's q, out, m and l in attn_part, its lo and hi in attn_bounds
};

struct Workspace {
  Buf h, a, branch, out;                  // the residual stream and the layer's input/output
  Buf q, k, v, qkv, o;                    // attention
  Buf attn_part;                          // attention split by keys: each job's rows and state
  std::vector<int> attn_bounds;           // ... and its rows' key ranges
  std::vector<AttentionPart> attn_parts;  // ... and the jobs (kept: no allocation per layer)
  Buf g, u, gu;                           // feed-forward
  Buf probs, xe, ye, ys;                  // mixture of experts
  std::vector<std::vector<std::pair<int, float>>> routed;
  Buf lora_ax, lora_bax;                  // adapters: A·x and B·(A·x)
  std::vector<const LoraSet*> lora_rows, expert_lora_rows;
};

float* take(Buf& b, int64_t n) {
  if (b.size() < size_t(n)) b.resize(size_t(n));
  return b.data();
}

// Which adapter pair a projection takes (a layer's matrix, or the output matrix when layer
// is −1; one expert's slice of a stacked tensor) and which adapters each input row carries
// (the adapters of that row's sequence; rows == nullptr when no sequence has any).
struct LoraUse {
  const LoraSet* const* rows = nullptr;
  int layer = -1;
  LoraTarget target = LoraTarget::count;
  int expert = -1;
  LoraUse with(LoraTarget t, int e = -1) const { return {rows, layer, t, e}; }
};

// y = W·x for n rows of x, plus scale·B·(A·x) of each row's adapters for this matrix. Rows
// of one sequence are consecutive, so each run of rows with the same adapters is one pair of
// small products.
void project(ThreadPool& pool, const WeightView& W, const LoraUse& use, const float* x, int n, float* y,
             Workspace& ws) {
  matmul(pool, W, x, n, y);
  if (!use.rows) return;
  for (int r0 = 0; r0 < n;) {
    const LoraSet* set = use.rows[r0];
    int r1 = r0 + 1;
    while (r1 < n && use.rows[r1] == set) ++r1;
    const int m = r1 - r0;
    if (!set) {
      r0 = r1;
      continue;
    }
    for (const auto& [adapter, user_scale] : set->adapters) {
      if (!adapter || user_scale == 0.0f) continue;
      const LoraAdapter::Impl& lora = adapter->impl();
      const LoraPair* p = use.layer < 0 ? (lora.output.present() ? &lora.output : nullptr) : lora.pair(use.layer, use.target);
      if (!p) continue;
      const WeightView A = use.expert >= 0 ? p->expert_a(use.expert) : p->a;
      const WeightView B = use.expert >= 0 ? p->expert_b(use.expert) : p->b;
      float* ax = take(ws.lora_ax, int64_t(m) * p->rank);
      float* bax = take(ws.lora_bax, int64_t(m) * W.rows);
      matmul(pool, A, x + int64_t(r0) * W.cols, m, ax);
      matmul(pool, B, ax, m, bax);
      const float scale = user_scale * p->scale;
      float* yr = y + int64_t(r0) * W.rows;
      for (int64_t i = 0; i < int64_t(m) * W.rows; ++i) yr[i] += scale * bax[i];
    }
    r0 = r1;
  }
}

// Self-attention of layer il for the n tokens of a batch: a (normed input) -> out.
void attention(ThreadPool& pool, const ModelConfig& c, const Weights& w, int il, const LoraUse& lora,
               const std::vector<TokenSlot>& slots, const float* a, int n, float* out, Workspace& ws) {
  const LayerConfig& L = c.layers[il];
  const LayerWeights& lw = w.layers[il];
  const int hk = c.head_dim_k, hv = c.head_dim_v;
  const int64_t q_w = int64_t(L.n_head) * hk, k_w = int64_t(L.n_head_kv) * hk, v_w = int64_t(L.n_head_kv) * hv;

  float* q = take(ws.q, n * q_w);
  float* k = take(ws.k, n * k_w);
  float* v = take(ws.v, n * v_w);
  if (c.fused_qkv) {
    const int64_t qkv_w = q_w + k_w + v_w;
    float* qkv = take(ws.qkv, n * qkv_w);
    project(pool, lw.wqkv, lora.with(LoraTarget::attn_qkv), a, n, qkv, ws);
    for (int t = 0; t < n; ++t) {
      const float* r = qkv + t * qkv_w;
      std::copy(r, r + q_w, q + t * q_w);
      std::copy(r + q_w, r + q_w + k_w, k + t * k_w);
      std::copy(r + q_w + k_w, r + qkv_w, v + t * v_w);
    }
  } else {
    project(pool, lw.wq, lora.with(LoraTarget::attn_q), a, n, q, ws);
    project(pool, lw.wk, lora.with(LoraTarget::attn_k), a, n, k, ws);
    project(pool, lw.wv, lora.with(LoraTarget::attn_v), a, n, v, ws);
  }

  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    for (int64_t t = b; t < e; ++t) {
      const RopeParams rp = layer_rope(c, w, il, slots[t].cache->n_ctx());
      float* qt = q + t * q_w;
      float* kt = k + t * k_w;
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
  for (int t = 0; t < n; ++t) slots[t].cache->store(il, slots[t].pos, k + t * k_w, v + t * v_w);

  // Causal GQA: the `group` query heads h with h / group == kvh read KV head kvh, together
  // (the kernel reads each cached row once for all of them); a sliding layer sees only the
  // last `sliding_window` positions (p_q - p_k < window).
  const int group = L.n_head / L.n_head_kv;
  const int64_t o_w = int64_t(L.n_head) * hv;
  float* o = take(ws.o, n * o_w);
  const AttentionShape shape{hk, hv, c.attn_scale, c.attn_softcap};
  auto head_view = [&](const KvCache& cache, int kvh) {
    return KvHeadView{cache.k_type(), cache.key_data(il, kvh), cache.value_data(il, kvh), hk, hv, cache.v_type()};
  };
  auto first_key = [&](int p) { return L.sliding ? std::max(0, p - c.sliding_window + 1) : 0; };
  {
    // Blocks of consecutive positions of one sequence (a decode step: one position), each
    // block's rows (positions × the group's heads, ≤ 32) attending together so that every
    // cached key is converted once per block (attend_rows' tiles and online softmax); a row
    // gets the same bits in a decode step as in a prompt batch.
    const int per_block = std::max(1, 32 / group);
    std::vector<std::pair<int, int>> blocks;  // [t0, t1)
    for (int t0 = 0; t0 < n;) {
      int t1 = t0 + 1;
      while (t1 < n && t1 - t0 < per_block && slots[t1].cache == slots[t0].cache) ++t1;
      blocks.emplace_back(t0, t1);
      t0 = t1;
    }
    // The rows of a (block, KV head) job, gathered from the query heads, and their outputs.
    auto gather = [&](int t0, int t1, int kvh, float* qr, int* lo, int* hi) {
      for (int t = t0; t < t1; ++t)
        for (int g = 0; g < group; ++g) {
          const int r = (t - t0) * group + g;
          std::copy_n(q + t * q_w + (int64_t(kvh) * group + g) * hk, hk, qr + int64_t(r) * hk);
          hi[r] = slots[t].pos;
          lo[r] = first_key(slots[t].pos);
        }
    };
    auto scatter = [&](int t0, int t1, int kvh, const float* orow) {
      for (int t = t0; t < t1; ++t)
        std::copy_n(orow + int64_t((t - t0) * group) * hv, int64_t(group) * hv, o + t * o_w + int64_t(kvh) * group * hv);
    };
    const int64_t jobs = int64_t(blocks.size()) * L.n_head_kv;
    if (jobs >= 2 * int64_t(pool.size())) {
      pool.for_each(jobs, [&](int64_t job, int) {
        const auto [t0, t1] = blocks[size_t(job / L.n_head_kv)];
        const int kvh = int(job % L.n_head_kv), rows = (t1 - t0) * group;
        thread_local Buf qb, ob, scratch;
        thread_local std::vector<int> lo, hi;
        lo.resize(size_t(rows));
        hi.resize(size_t(rows));
        float* qr = take(qb, int64_t(rows) * hk);
        float* orow = take(ob, int64_t(rows) * hv);
        gather(t0, t1, kvh, qr, lo.data(), hi.data());
        attend_rows(qr, rows, lo.data(), hi.data(), head_view(*slots[t0].cache, kvh), shape, orow,
                    take(scratch, int64_t(attend_rows_scratch(rows, shape))));
        scatter(t0, t1, kvh, orow);
      });
    } else {
      // Too few (block, head) jobs to keep every thread busy (a decode step of a model with few
      // KV heads): each job also takes one chunk of keys, and the chunks' partial softmax states
      // are merged in order afterwards — the arithmetic of attend_rows, so the same bits.
      std::vector<AttentionPart>& parts = ws.attn_parts;
      parts.clear();
      int64_t floats = 0, ints = 0;
      for (const auto& [t0, t1] : blocks)
        for (int kvh = 0; kvh < L.n_head_kv; ++kvh) {
          int jmin = slots[t1 - 1].pos, jmax = 0;
          for (int t = t0; t < t1; ++t) {
            jmin = std::min(jmin, first_key(slots[t].pos));
            jmax = std::max(jmax, slots[t].pos);
          }
          const int rows = (t1 - t0) * group;
          for (int c0 = jmin / kAttendChunk * kAttendChunk; c0 <= jmax; c0 += kAttendChunk) {
            parts.push_back({t0, t1, kvh, c0, floats, ints});
            floats += int64_t(rows) * (hk + hv + 2);
            ints += 2 * int64_t(rows);
          }
        }
      float* part = take(ws.attn_part, floats);
      if (ws.attn_bounds.size() < size_t(ints)) ws.attn_bounds.resize(size_t(ints));
      pool.for_each(int64_t(parts.size()), [&](int64_t job, int) {
        const AttentionPart& p = parts[size_t(job)];
        const int rows = (p.t1 - p.t0) * group;
        float* qr = part + p.at;
        int* lo = ws.attn_bounds.data() + p.bound;
        int* hi = lo + rows;
        float* out_p = qr + int64_t(rows) * hk;
        float* m = out_p + int64_t(rows) * hv;
        thread_local Buf scratch;
        gather(p.t0, p.t1, p.kvh, qr, lo, hi);
        attend_rows_chunk(qr, rows, lo, hi, head_view(*slots[p.t0].cache, p.kvh), shape, p.c0, out_p, m, m + rows,
                          take(scratch, int64_t(attend_chunk_scratch(shape))));
      });
      // Merge each (block, head)'s chunks in order into its first chunk's state.
      for (size_t i = 0; i < parts.size();) {
        const AttentionPart& first = parts[i];
        const int rows = (first.t1 - first.t0) * group;
        auto out_of = [&](const AttentionPart& p) { return part + p.at + int64_t(rows) * hk; };
        float* out0 = out_of(first);
        float* m0 = out0 + int64_t(rows) * hv;
        size_t e = i + 1;
        for (; e < parts.size() && parts[e].t0 == first.t0 && parts[e].kvh == first.kvh; ++e) {
          const float* oe = out_of(parts[e]);
          const float* me = oe + int64_t(rows) * hv;
          attend_merge(rows, hv, out0, m0, m0 + rows, oe, me, me + rows);
        }
        attend_finish(rows, hv, out0, m0 + rows);
        scatter(first.t0, first.t1, first.kvh, out0);
        i = e;
      }
    }
  }
  project(pool, lw.wo, lora.with(LoraTarget::attn_output), o, n, out, ws);
}

// The adapter targets of one gated FFN: the dense one, an expert's, or the shared expert's.
struct FfnTargets {
  LoraTarget gate, up, down;
  int expert = -1;
};
constexpr FfnTargets kDenseFfn{LoraTarget::ffn_gate, LoraTarget::ffn_up, LoraTarget::ffn_down};
constexpr FfnTargets kSharedExpertFfn{LoraTarget::ffn_gate_shexp, LoraTarget::ffn_up_shexp, LoraTarget::ffn_down_shexp};

// Gated FFN y = down(act(gate·x) ⊙ up·x) for n rows of x.
void gated_ffn(ThreadPool& pool, const ModelConfig& c, const WeightView& gate, const WeightView& up,
               const WeightView& down, const LoraUse& lora, const FfnTargets& targets, const float* x, int n,
               float* y, Workspace& ws) {
  const int64_t ff = down.cols;
  float* g = take(ws.g, n * ff);
  float* u = take(ws.u, n * ff);
  if (gate.empty()) {  // fused: up gives [gate | up] per row
    float* gu = take(ws.gu, n * 2 * ff);
    project(pool, up, lora.with(targets.up, targets.expert), x, n, gu, ws);
    for (int t = 0; t < n; ++t) {
      std::copy(gu + t * 2 * ff, gu + t * 2 * ff + ff, g + t * ff);
      std::copy(gu + t * 2 * ff + ff, gu + (t + 1) * 2 * ff, u + t * ff);
    }
  } else {
    project(pool, gate, lora.with(targets.gate, targets.expert), x, n, g, ws);
    project(pool, up, lora.with(targets.up, targets.expert), x, n, u, ws);
  }
  pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
    if (c.activation == FfnActivation::GeLU)
      geglu(g + b * ff, u + b * ff, (e - b) * ff);
    else
      swiglu(g + b * ff, u + b * ff, (e - b) * ff);
  });
  project(pool, down, lora.with(targets.down, targets.expert), g, n, y, ws);
}

// Mixture of experts: softmax over the router logits, keep the top k, renormalise their
// weights to sum 1, and run only the chosen experts (tokens grouped by expert).
void moe_ffn(ThreadPool& pool, const ModelConfig& c, const LayerWeights& lw, const LoraUse& lora, const float* x,
             int n, float* y, Workspace& ws) {
  const int E = c.n_embd, n_exp = c.n_expert, k = c.n_expert_used;
  float* probs = take(ws.probs, int64_t(n) * n_exp);
  project(pool, lw.router, lora.with(LoraTarget::ffn_gate_inp), x, n, probs, ws);
  std::vector<std::vector<std::pair<int, float>>>& routed = ws.routed;  // expert -> (token, weight)
  routed.resize(n_exp);
  for (auto& r : routed) r.clear();
  std::vector<int> order(n_exp);
  for (int t = 0; t < n; ++t) {
    float* p = probs + int64_t(t) * n_exp;
    softmax(p, n_exp);
    for (int e = 0; e < n_exp; ++e) order[e] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    float sum = 0;
    for (int i = 0; i < k; ++i) sum += p[order[i]];
    sum = std::max(sum, 6.103515625e-5f);
    for (int i = 0; i < k; ++i) routed[order[i]].push_back({t, p[order[i]] / sum});
  }
  std::fill(y, y + int64_t(n) * E, 0.0f);
  for (int e = 0; e < n_exp; ++e) {
    const int m = static_cast<int>(routed[e].size());
    if (m == 0) continue;
    float* xe = take(ws.xe, int64_t(m) * E);
    float* ye = take(ws.ye, int64_t(m) * E);
    for (int i = 0; i < m; ++i) std::copy_n(x + int64_t(routed[e][i].first) * E, E, xe + int64_t(i) * E);
    LoraUse expert_lora = lora;  // the gathered rows carry their tokens' adapters
    if (lora.rows) {
      ws.expert_lora_rows.resize(size_t(m));
      for (int i = 0; i < m; ++i) ws.expert_lora_rows[size_t(i)] = lora.rows[routed[e][i].first];
      expert_lora.rows = ws.expert_lora_rows.data();
    }
    gated_ffn(pool, c, lw.gate_exps.expert(e), lw.up_exps.expert(e), lw.down_exps.expert(e), expert_lora,
              {LoraTarget::ffn_gate_exps, LoraTarget::ffn_up_exps, LoraTarget::ffn_down_exps, e}, xe, m, ye, ws);
    for (int i = 0; i < m; ++i) {
      float* yt = y + int64_t(routed[e][i].first) * E;
      const float wt = routed[e][i].second;
      for (int d = 0; d < E; ++d) yt[d] += wt * ye[int64_t(i) * E + d];
    }
  }
  if (c.n_ff_shared > 0) {
    float* ys = take(ws.ys, int64_t(n) * E);
    gated_ffn(pool, c, lw.gate_shexp, lw.up_shexp, lw.down_shexp, lora, kSharedExpertFfn, x, n, ys, ws);
    for (int64_t i = 0; i < int64_t(n) * E; ++i) y[i] += ys[i];
  }
}

// The embedding row of `token` plus each adapter's scale·B·A[token] (token_embd adapters
// store A with one row of rank values per token).
void add_embedding_adapters(ThreadPool& pool, const LoraSet* set, int32_t token, int64_t width, float* row,
                            Workspace& ws) {
  if (!set) return;
  for (const auto& [adapter, user_scale] : set->adapters) {
    if (!adapter || user_scale == 0.0f) continue;
    const LoraPair& p = adapter->impl().token_embd;
    if (!p.present()) continue;
    float* a_row = take(ws.lora_ax, p.rank);
    float* delta = take(ws.lora_bax, width);
    get_row(p.a, token, a_row);
    matmul(pool, p.b, a_row, 1, delta);
    const float scale = user_scale * p.scale;
    for (int64_t d = 0; d < width; ++d) row[d] += scale * delta[d];
  }
}

// h += scale · (post_norm(branch)), the residual connection with the optional extras.
void add_branch(ThreadPool& pool, const ModelConfig& c, const float* post_norm, float* branch, int n, float* h) {
  const int E = c.n_embd;
  if (post_norm) rmsnorm_rows(pool, branch, post_norm, branch, n, E, c.rms_eps);
  for (int64_t i = 0; i < int64_t(n) * E; ++i) h[i] += c.residual_scale == 1.0f ? branch[i] : c.residual_scale * branch[i];
}

}  // namespace

void Model::forward(ThreadPool& pool, KvCache& cache, const int32_t* tokens, int n, int pos0,
                    float* logits, bool all_logits, const LoraSet* lora) const {
  forward(pool, {SequenceBatch{&cache, tokens, n, pos0, logits, all_logits, lora}});
}

void Model::forward(ThreadPool& pool, const std::vector<SequenceBatch>& batch) const {
  const ModelConfig& c = *config_;
  const Weights& w = *weights_;
  const int E = c.n_embd;

  // Lay the sequences' tokens out one after another; check each before touching a cache.
  std::vector<int32_t> tokens;
  std::vector<TokenSlot> slots;
  std::vector<int> out_rows;  // batch rows whose logits are wanted, in output order
  std::vector<const LoraSet*> row_lora;  // each token's adapters (its sequence's)
  bool any_lora = false;
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
      const bool adapted = sb.lora && !sb.lora->empty();
      if (adapted && t == 0)
        for (const auto& [adapter, scale] : sb.lora->adapters)
          if (adapter && (!adapter->impl().bound || adapter->impl().layers.size() != size_t(c.n_layer)))
            throw Error("forward: adapter " + adapter->path() + " was not loaded for this model");
      row_lora.push_back(adapted ? sb.lora : nullptr);
      any_lora = any_lora || adapted;
    }
  }
  if (tokens.empty()) throw Error("forward: no tokens to evaluate");
  const int n = static_cast<int>(tokens.size());

  thread_local Workspace ws;
  float* h = take(ws.h, int64_t(n) * E);
  float* a = take(ws.a, int64_t(n) * E);
  float* branch = take(ws.branch, int64_t(n) * E);
  if (any_lora) ws.lora_rows = row_lora;
  const LoraUse lora{any_lora ? ws.lora_rows.data() : nullptr};
  for (int t = 0; t < n; ++t) {
    float* ht = h + int64_t(t) * E;
    get_row(w.token_embd, tokens[t], ht);
    if (lora.rows) add_embedding_adapters(pool, lora.rows[t], tokens[t], E, ht, ws);
    if (c.embd_scale != 1.0f)
      for (int d = 0; d < E; ++d) ht[d] *= c.embd_scale;
  }

  for (int il = 0; il < c.n_layer; ++il) {
    const LayerWeights& lw = w.layers[il];
    LoraUse layer_lora = lora;
    layer_lora.layer = il;
    rmsnorm_rows(pool, h, lw.attn_norm, a, n, E, c.rms_eps);
    attention(pool, c, w, il, layer_lora, slots, a, n, branch, ws);
    add_branch(pool, c, lw.post_attn_norm, branch, n, h);

    rmsnorm_rows(pool, h, lw.ffn_norm, a, n, E, c.rms_eps);
    if (c.n_expert > 0)
      moe_ffn(pool, c, lw, layer_lora, a, n, branch, ws);
    else
      gated_ffn(pool, c, lw.gate, lw.up, lw.down, layer_lora, kDenseFfn, a, n, branch, ws);
    add_branch(pool, c, lw.post_ffn_norm, branch, n, h);
  }

  // Final norm and output projection for the rows whose logits are wanted only.
  const int m = static_cast<int>(out_rows.size());
  for (int i = 0; i < m; ++i) std::copy_n(h + int64_t(out_rows[i]) * E, E, branch + int64_t(i) * E);
  rmsnorm_rows(pool, branch, w.output_norm, a, m, E, c.rms_eps);
  float* out = take(ws.out, int64_t(m) * c.n_vocab);
  LoraUse output_lora = lora;
  if (lora.rows) {
    for (int i = 0; i < m; ++i) ws.lora_rows[size_t(i)] = row_lora[size_t(out_rows[i])];
    output_lora.rows = ws.lora_rows.data();
  }
  project(pool, w.output, output_lora, a, m, out, ws);
  for (int64_t i = 0; i < int64_t(m) * c.n_vocab; ++i) {
    float& x = out[i];
    if (c.logit_scale != 1.0f) x *= 1.0f / c.logit_scale;
    if (c.final_softcap > 0) x = c.final_softcap * std::tanh(x / c.final_softcap);
  }
  int next = 0;
  for (const SequenceBatch& sb : batch) {
    const int rows = sb.all_logits ? sb.n : 1;
    std::copy_n(out + int64_t(next) * c.n_vocab, int64_t(rows) * c.n_vocab, sb.logits);
    next += rows;
  }
  // All-logits passes over long prompts leave a large buffer behind; do not keep it.
  if (ws.out.size() > (size_t(1) << 24)) Buf().swap(ws.out);
}

}  // namespace slm
