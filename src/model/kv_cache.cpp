#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "model/config.h"
#include "quant/quant.h"
#include "slm/error.h"
#include "slm/model.h"

namespace slm {

namespace {

bool kv_type_ok(GgmlType t) {
  return t == GgmlType::F32 || t == GgmlType::F16 || t == GgmlType::Q8_0 || t == GgmlType::Q4_0;
}
bool quantized(GgmlType t) { return t == GgmlType::Q8_0 || t == GgmlType::Q4_0; }

void put(std::vector<uint8_t>& data, GgmlType type, int width, int pos, const float* src) {
  uint8_t* row = data.data() + size_t(pos) * row_bytes(type, width);
  if (type == GgmlType::F32) {
    std::memcpy(row, src, size_t(width) * 4);
  } else if (type == GgmlType::F16) {
    uint16_t* dst = reinterpret_cast<uint16_t*>(row);
    int i = 0;
#if defined(__F16C__)
    // Round to nearest even, as f32_to_fp16 does.
    for (; i + 8 <= width; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i < width; ++i) dst[i] = f32_to_fp16(src[i]);
  } else {
    quantize_row(type, src, row, width);  // blocks of 32 never straddle heads (checked at creation)
  }
}

}  // namespace

size_t KvCache::bytes_for(const ModelConfig& c, int64_t n_ctx, GgmlType type) { return bytes_for(c, n_ctx, type, type); }

size_t KvCache::bytes_for(const ModelConfig& c, int64_t n_ctx, GgmlType k_type, GgmlType v_type) {
  size_t per_position = 0;
  for (const LayerConfig& L : c.layers)
    per_position += row_bytes(k_type, int64_t(L.n_head_kv) * c.head_dim_k) + row_bytes(v_type, int64_t(L.n_head_kv) * c.head_dim_v);
  return per_position * size_t(std::max<int64_t>(0, n_ctx));
}

KvCache::KvCache(const ModelConfig& c, int n_ctx, GgmlType type) : KvCache(c, n_ctx, type, type) {}

KvCache::KvCache(const ModelConfig& c, int n_ctx, GgmlType k_type, GgmlType v_type)
    : n_ctx_(n_ctx), k_type_(k_type), v_type_(v_type) {
  if (n_ctx <= 0) throw Error("KV cache: context size must be positive, got " + std::to_string(n_ctx));
  for (auto [t, what, dim] : {std::tuple{k_type, "K", c.head_dim_k}, std::tuple{v_type, "V", c.head_dim_v}}) {
    if (!kv_type_ok(t))
      throw Error(std::string("KV cache: the ") + what + " type must be f32, f16, q8_0 or q4_0, got " + type_name(t));
    if (quantized(t) && dim % 32 != 0)
      throw Error(std::string("KV cache: ") + type_name(t) + " " + what + " needs a head size that is a multiple of 32; " +
                  "this model's is " + std::to_string(dim) + " (use f16)");
  }
  // Refused before allocating: a cache larger than the machine would only thrash or be killed.
  const size_t need = bytes_for(c, n_ctx, k_type, v_type);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0 && need > size_t(pages) * size_t(page))
    throw Error("a KV cache for a context of " + std::to_string(n_ctx) + " tokens needs " +
                std::to_string(need >> 20) + " MiB, more than this machine's " +
                std::to_string((size_t(pages) * size_t(page)) >> 20) + " MiB of memory; use a smaller context");
  for (const LayerConfig& L : c.layers) {
    Layer l;
    l.k_width = L.n_head_kv * c.head_dim_k;
    l.v_width = L.n_head_kv * c.head_dim_v;
    l.k.resize(size_t(n_ctx) * row_bytes(k_type, l.k_width));
    l.v.resize(size_t(n_ctx) * row_bytes(v_type, l.v_width));
    layers_.push_back(std::move(l));
  }
}

size_t KvCache::bytes() const {
  size_t b = 0;
  for (const Layer& l : layers_) b += l.k.size() + l.v.size();
  return b;
}

void KvCache::store(int il, int pos, const float* k, const float* v) {
  if (pos < 0 || pos >= n_ctx_) throw Error("KV cache: position " + std::to_string(pos) + " outside the context of " + std::to_string(n_ctx_));
  Layer& l = layers_[il];
  put(l.k, k_type_, l.k_width, pos, k);
  put(l.v, v_type_, l.v_width, pos, v);
}

const float* KvCache::row(const std::vector<uint8_t>& data, GgmlType type, int width, int pos, int first, int count,
                          float* tmp) const {
  const uint8_t* r = data.data() + size_t(pos) * row_bytes(type, width);
  if (type == GgmlType::F32) return reinterpret_cast<const float*>(r) + first;
  if (type == GgmlType::F16) {
    const uint16_t* src = reinterpret_cast<const uint16_t*>(r) + first;
    for (int i = 0; i < count; ++i) tmp[i] = fp16_to_f32(src[i]);
    return tmp;
  }
  if (first % 32 != 0) throw Error("KV cache: a quantized row is read from a multiple of 32");
  const uint8_t* blocks = r + row_bytes(type, first);
  const int whole = count / 32 * 32;
  if (whole) dequantize_row(type, blocks, tmp, whole);
  if (whole < count) {  // a partial last block
    float last[32];
    dequantize_row(type, blocks + row_bytes(type, whole), last, 32);
    std::memcpy(tmp + whole, last, size_t(count - whole) * 4);
  }
  return tmp;
}

const float* KvCache::key(int il, int pos, int first, int count, float* tmp) const {
  return row(layers_[il].k, k_type_, layers_[il].k_width, pos, first, count, tmp);
}
const float* KvCache::value(int il, int pos, int first, int count, float* tmp) const {
  return row(layers_[il].v, v_type_, layers_[il].v_width, pos, first, count, tmp);
}

void KvCache::move_rows(int from, int to, int n, const std::function<void(int il, float* key_row)>& rekey) {
  if (n <= 0) return;
  if (to < 0 || to >= from || from + n > n_ctx_)
    throw Error("KV cache: cannot move " + std::to_string(n) + " rows from " + std::to_string(from) + " to " +
                std::to_string(to) + " in a context of " + std::to_string(n_ctx_));
  std::vector<float> tmp;
  for (size_t il = 0; il < layers_.size(); ++il) {
    Layer& l = layers_[il];
    tmp.resize(size_t(l.k_width));
    for (int j = 0; j < n; ++j) {  // upwards: a destination row is never a source still to be read
      const float* k = row(l.k, k_type_, l.k_width, from + j, 0, l.k_width, tmp.data());
      if (k != tmp.data()) std::memcpy(tmp.data(), k, size_t(l.k_width) * 4);
      rekey(static_cast<int>(il), tmp.data());
      put(l.k, k_type_, l.k_width, to + j, tmp.data());
      const size_t vb = row_bytes(v_type_, l.v_width);
      std::memmove(l.v.data() + size_t(to + j) * vb, l.v.data() + size_t(from + j) * vb, vb);
    }
  }
}

}  // namespace slm
