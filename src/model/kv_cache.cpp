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

// One head's values at dst (an F32, F16 or Q8_0/Q4_0 row of n values).
void put_head(uint8_t* dst, GgmlType type, int n, const float* src) {
  if (type == GgmlType::F32) {
    std::memcpy(dst, src, size_t(n) * 4);
  } else if (type == GgmlType::F16) {
    uint16_t* d = reinterpret_cast<uint16_t*>(dst);
    int i = 0;
#if defined(__F16C__)
    // Round to nearest even, as f32_to_fp16 does.
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                       _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i < n; ++i) d[i] = f32_to_fp16(src[i]);
  } else {
    quantize_row(type, src, dst, n);  // head sizes are multiples of 32 (checked at creation)
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
    : n_ctx_(n_ctx), k_type_(k_type), v_type_(v_type), head_dim_k_(c.head_dim_k), head_dim_v_(c.head_dim_v) {
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

// Head h's row of position pos starts at (h · n_ctx + pos) rows of head_dim values.
void KvCache::put(std::vector<uint8_t>& data, GgmlType type, int head_dim, int n_head, int pos, const float* src) {
  const size_t rb = row_bytes(type, head_dim);
  for (int h = 0; h < n_head; ++h)
    put_head(data.data() + (size_t(h) * size_t(n_ctx_) + size_t(pos)) * rb, type, head_dim, src + int64_t(h) * head_dim);
}

void KvCache::store(int il, int pos, const float* k, const float* v) {
  if (pos < 0 || pos >= n_ctx_) throw Error("KV cache: position " + std::to_string(pos) + " outside the context of " + std::to_string(n_ctx_));
  Layer& l = layers_[il];
  put(l.k, k_type_, head_dim_k_, l.k_width / head_dim_k_, pos, k);
  put(l.v, v_type_, head_dim_v_, l.v_width / head_dim_v_, pos, v);
}

const void* KvCache::key_data(int il, int head) const {
  return layers_[il].k.data() + size_t(head) * size_t(n_ctx_) * row_bytes(k_type_, head_dim_k_);
}
const void* KvCache::value_data(int il, int head) const {
  return layers_[il].v.data() + size_t(head) * size_t(n_ctx_) * row_bytes(v_type_, head_dim_v_);
}

// Values [first, first + count) of a position's row, gathered head by head.
const float* KvCache::row(const std::vector<uint8_t>& data, GgmlType type, int head_dim, int pos, int first, int count,
                          float* tmp) const {
  if (quantized(type) && first % 32 != 0) throw Error("KV cache: a quantized row is read from a multiple of 32");
  const size_t rb = row_bytes(type, head_dim);
  auto head_row = [&](int h) { return data.data() + (size_t(h) * size_t(n_ctx_) + size_t(pos)) * rb; };
  if (type == GgmlType::F32 && first / head_dim == (first + count - 1) / head_dim)  // within one head
    return reinterpret_cast<const float*>(head_row(first / head_dim)) + first % head_dim;
  float block[32];
  for (int i = first; i < first + count;) {
    const int h = i / head_dim, at = i % head_dim, n = std::min(head_dim - at, first + count - i);
    const uint8_t* r = head_row(h);
    if (type == GgmlType::F32) {
      std::memcpy(tmp + (i - first), reinterpret_cast<const float*>(r) + at, size_t(n) * 4);
    } else if (type == GgmlType::F16) {
      const uint16_t* src = reinterpret_cast<const uint16_t*>(r) + at;
      for (int e = 0; e < n; ++e) tmp[i - first + e] = fp16_to_f32(src[e]);
    } else {  // whole blocks of 32 from `at` (a multiple of 32); a partial last one through `block`
      const int whole = n / 32 * 32;
      if (whole) dequantize_row(type, r + row_bytes(type, at), tmp + (i - first), whole);
      if (whole < n) {
        dequantize_row(type, r + row_bytes(type, at + whole), block, 32);
        std::memcpy(tmp + (i - first) + whole, block, size_t(n - whole) * 4);
      }
    }
    i += n;
  }
  return tmp;
}

const float* KvCache::key(int il, int pos, int first, int count, float* tmp) const {
  return row(layers_[il].k, k_type_, head_dim_k_, pos, first, count, tmp);
}
const float* KvCache::value(int il, int pos, int first, int count, float* tmp) const {
  return row(layers_[il].v, v_type_, head_dim_v_, pos, first, count, tmp);
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
    const int n_head = l.v_width / head_dim_v_;
    const size_t vb = row_bytes(v_type_, head_dim_v_);
    for (int j = 0; j < n; ++j) {  // upwards: a destination row is never a source still to be read
      const float* k = row(l.k, k_type_, head_dim_k_, from + j, 0, l.k_width, tmp.data());
      if (k != tmp.data()) std::memcpy(tmp.data(), k, size_t(l.k_width) * 4);
      rekey(static_cast<int>(il), tmp.data());
      put(l.k, k_type_, head_dim_k_, l.k_width / head_dim_k_, to + j, tmp.data());
      for (int h = 0; h < n_head; ++h) {
        uint8_t* head = l.v.data() + size_t(h) * size_t(n_ctx_) * vb;
        std::memmove(head + size_t(to + j) * vb, head + size_t(from + j) * vb, vb);
      }
    }
  }
}

}  // namespace slm
