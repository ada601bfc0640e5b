// Context shift: when a sequence fills its context, drop a run of old positions and move the
// newer ones down. A cached key holds RoPE(k, p); rotating it by RoPE at −n_discard (angles
// are linear in the position, and the rotation alone, without LongRoPE's magnitude factor,
// which the key already carries) gives RoPE(k, p − n_discard) — the key it would have had at
// its new position.
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/weights.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {

void Model::shift_cache(KvCache& cache, int n_keep, int n_discard, int n_past) const {
  if (n_keep < 0 || n_discard <= 0 || n_keep + n_discard > n_past || n_past > cache.n_ctx())
    throw Error("context shift: cannot keep " + std::to_string(n_keep) + " and drop " + std::to_string(n_discard) +
                " of " + std::to_string(n_past) + " positions");
  const ModelConfig& c = *config_;
  std::vector<RopeParams> params(c.layers.size());
  for (size_t il = 0; il < c.layers.size(); ++il) {
    params[il] = layer_rope(c, *weights_, static_cast<int>(il), cache.n_ctx());
    params[il].attn_factor = 1.0f;
  }
  cache.move_rows(n_keep + n_discard, n_keep, n_past - n_keep - n_discard, [&](int il, float* key_row) {
    if (c.use_rope) rope(key_row, c.layers[il].n_head_kv, c.head_dim_k, -n_discard, params[il]);
  });
}

}  // namespace slm
