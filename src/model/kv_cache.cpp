#include <unistd.h>

#include <algorithm>
#include <cstring>
#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "model/config.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {

size_t KvCache::bytes_for(const ModelConfig& c, int64_t n_ctx, GgmlType type) {
  const size_t elem = type == GgmlType::F32 ? 4 : 2;
  size_t per_position = 0;
  for (const LayerConfig& L : c.layers) per_position += size_t(L.n_head_kv) * (c.head_dim_k + c.head_dim_v) * elem;
  return per_position * size_t(std::max<int64_t>(0, n_ctx));
}

KvCache::KvCache(const ModelConfig& c, int n_ctx, GgmlType type) : n_ctx_(n_ctx), type_(type) {
  if (n_ctx <= 0) throw Error("KV cache: context size must be positive, got " + std::to_string(n_ctx));
  if (type != GgmlType::F32 && type != GgmlType::F16)
    throw Error(std::string("KV cache: type must be f32 or f16, got ") + type_name(type));
  // Refused before allocating: a cache larger than the machine would only thrash or be killed.
  const size_t need = bytes_for(c, n_ctx, type);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && need > size_t(pages) * size_t(page))
    throw Error("a KV cache for a context of " + std::to_string(n_ctx) + " tokens needs " +
                std::to_string(need >> 20) + " MiB, more than this machine's " +
                std::to_string((size_t(pages) * size_t(page)) >> 20) + " MiB of memory; use a smaller context");
  const size_t elem = type == GgmlType::F32 ? 4 : 2;
  for (const LayerConfig& L : c.layers) {
    Layer l;
    l.k_width = L.n_head_kv * c.head_dim_k;
    l.v_width = L.n_head_kv * c.head_dim_v;
    l.k.resize(size_t(n_ctx) * l.k_width * elem);
    l.v.resize(size_t(n_ctx) * l.v_width * elem);
    layers_.push_back(std::move(l));
  }
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const Layer& l : layers_) b += l.k.size() + l.v.size();
  return b;
}

namespace {
void put(std::vector<uint8_t>& data, GgmlType type, int width, int pos, const float* src) {
  if (type == GgmlType::F32) {
    std::memcpy(data.data() + size_t(pos) * width * 4, src, size_t(width) * 4);
  } else {
    uint16_t* dst = reinterpret_cast<uint16_t*>(data.data()) + size_t(pos) * width;
    int i = 0;
#if defined(__F16C__)
    // Round to nearest even, as f32_to_fp16 does.
    for (; i + 8 <= width; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i < width; ++i) dst[i] = f32_to_fp16(src[i]);
  }
}
}  // namespace

void KvCache::store(int il, int pos, const float* k, const float* v) {
  if (pos < 0 || pos >= n_ctx_) throw Error("KV cache: position " + std::to_string(pos) + " outside the context of " + std::to_string(n_ctx_));
  Layer& l = layers_[il];
  put(l.k, type_, l.k_width, pos, k);
  put(l.v, type_, l.v_width, pos, v);
}

const float* KvCache::row(const std::vector<uint8_t>& data, int width, int pos, int first, int count,
                          float* tmp) const {
  const size_t at = size_t(pos) * width + first;
  if (type_ == GgmlType::F32) return reinterpret_cast<const float*>(data.data()) + at;
  const uint16_t* src = reinterpret_cast<const uint16_t*>(data.data()) + at;
  for (int i = 0; i < count; ++i) tmp[i] = fp16_to_f32(src[i]);
  return tmp;
}

const float* KvCache::key(int il, int pos, int first, int count, float* tmp) const {
  return row(layers_[il].k, layers_[il].k_width, pos, first, count, tmp);
}
const float* KvCache::value(int il, int pos, int first, int count, float* tmp) const {
  return row(layers_[il].v, layers_[il].v_width, pos, first, count, tmp);
}

void KvCache::move_rows(int from, int to, int n, const std::function<void(int il, float* key_row)>& rekey) {
  if (n <= 0) return;
  if (to < 0 || to >= from || from + n > n_ctx_)
    throw Error("KV cache: cannot move " + std::to_string(n) + " rows from " + std::to_string(from) + " to " +
                std::to_string(to) + " in a context of " + std::to_string(n_ctx_));
  const size_t elem = type_ == GgmlType::F32 ? 4 : 2;
  std::vector<float> tmp;
  for (size_t il = 0; il < layers_.size(); ++il) {
    Layer& l = layers_[il];
    tmp.resize(size_t(l.k_width));
    for (int j = 0; j < n; ++j) {  // upwards: a destination row is never a source still to be read
      const float* k = row(l.k, l.k_width, from + j, 0, l.k_width, tmp.data());
      if (k != tmp.data()) std::memcpy(tmp.data(), k, size_t(l.k_width) * 4);
      rekey(static_cast<int>(il), tmp.data());
      put(l.k, type_, l.k_width, to + j, tmp.data());
      std::memmove(l.v.data() + size_t(to + j) * l.v_width * elem, l.v.data() + size_t(from + j) * l.v_width * elem,
                   size_t(l.v_width) * elem);
    }
  }
}

}  // namespace slm
