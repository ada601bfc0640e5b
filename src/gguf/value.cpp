// GgufValue helpers and GgufFile's typed metadata access.
#include <cmath>
#include <limits>

#include "gguf/gguf.h"

namespace slm {

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UINT8: return "UINT8";
    case GgufType::INT8: return "INT8";
    case GgufType::UINT16: return "UINT16";
    case GgufType::INT16: return "INT16";
    case GgufType::UINT32: return "UINT32";
    case GgufType::INT32: return "INT32";
    case GgufType::FLOAT32: return "FLOAT32";
    case GgufType::BOOL: return "BOOL";
    case GgufType::STRING: return "STRING";
    case GgufType::ARRAY: return "ARRAY";
    case GgufType::UINT64: return "UINT64";
    case GgufType::INT64: return "INT64";
    case GgufType::FLOAT64: return "FLOAT64";
  }
  return "?";
}

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::UINT8: case GgufType::INT8: case GgufType::UINT16: case GgufType::INT16:
    case GgufType::UINT32: case GgufType::INT32: case GgufType::UINT64: case GgufType::INT64:
      return true;
    default:
      return false;
  }
}

static bool is_unsigned(GgufType t) {
  return t == GgufType::UINT8 || t == GgufType::UINT16 || t == GgufType::UINT32 ||
         t == GgufType::UINT64 || t == GgufType::BOOL;
}

int64_t GgufValue::as_int() const {
  if (!is_integer()) throw Error(std::string("value of type ") + gguf_type_name(type) + " is not an integer");
  if (is_unsigned(type)) {
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw Error("integer value " + std::to_string(u) + " is too large");
    return static_cast<int64_t>(u);
  }
  return i;
}

double GgufValue::as_double() const {
  if (is_float()) return f;
  if (is_integer()) return is_unsigned(type) ? static_cast<double>(u) : static_cast<double>(i);
  throw Error(std::string("value of type ") + gguf_type_name(type) + " is not a number");
}

GgufValue GgufValue::make_u32(uint32_t v) { GgufValue x; x.type = GgufType::UINT32; x.u = v; return x; }
GgufValue GgufValue::make_i32(int32_t v) { GgufValue x; x.type = GgufType::INT32; x.i = v; return x; }
GgufValue GgufValue::make_u64(uint64_t v) { GgufValue x; x.type = GgufType::UINT64; x.u = v; return x; }
GgufValue GgufValue::make_f32(float v) { GgufValue x; x.type = GgufType::FLOAT32; x.f = v; return x; }
GgufValue GgufValue::make_bool(bool v) { GgufValue x; x.type = GgufType::BOOL; x.u = v ? 1 : 0; return x; }
GgufValue GgufValue::make_string(std::string v) {
  GgufValue x; x.type = GgufType::STRING; x.str = std::move(v); return x;
}
GgufValue GgufValue::make_array(GgufType elem, std::vector<GgufValue> v) {
  GgufValue x; x.type = GgufType::ARRAY; x.elem_type = elem; x.arr = std::move(v); return x;
}

// ---- typed access ---------------------------------------------------------------------------

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

static std::string actual_type(const GgufValue& v) {
  if (v.type == GgufType::ARRAY) return std::string("ARRAY of ") + gguf_type_name(v.elem_type);
  return gguf_type_name(v.type);
}

[[noreturn]] static void wrong_type(const std::string& path, const std::string& key,
                                    const char* wanted, const GgufValue& v) {
  throw Error(path + ": metadata key '" + key + "' has type " + actual_type(v) + ", wanted " + wanted);
}

const GgufValue& GgufFile::get(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) throw Error(path_ + ": metadata key '" + key + "' is missing");
  return *v;
}

static const GgufValue& get_typed(const GgufFile& f, const std::string& key, const char* wanted) {
  const GgufValue* v = f.find(key);
  if (!v) throw Error(f.path() + ": metadata key '" + key + "' is missing (wanted " + wanted + ")");
  return *v;
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = get_typed(*this, key, "STRING");
  if (v.type != GgufType::STRING) wrong_type(path_, key, "STRING", v);
  return v.str;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue& v = get_typed(*this, key, "an integer");
  if (!v.is_integer()) wrong_type(path_, key, "an integer", v);
  try {
    return v.as_int();
  } catch (const Error& e) {
    throw Error(path_ + ": metadata key '" + key + "': " + e.what());
  }
}

uint32_t GgufFile::get_u32(const std::string& key) const {
  int64_t x = get_int(key);
  if (x < 0 || x > static_cast<int64_t>(std::numeric_limits<uint32_t>::max()))
    throw Error(path_ + ": metadata key '" + key + "' value " + std::to_string(x) + " does not fit UINT32");
  return static_cast<uint32_t>(x);
}

float GgufFile::get_f32(const std::string& key) const {
  const GgufValue& v = get_typed(*this, key, "FLOAT32");
  if (!v.is_float()) wrong_type(path_, key, "FLOAT32", v);
  return static_cast<float>(v.f);
}

bool GgufFile::get_bool(const std::string& key) const {
  const GgufValue& v = get_typed(*this, key, "BOOL");
  if (v.type != GgufType::BOOL) wrong_type(path_, key, "BOOL", v);
  return v.u != 0;
}

const std::vector<GgufValue>& GgufFile::get_array(const std::string& key) const {
  const GgufValue& v = get_typed(*this, key, "ARRAY");
  if (v.type != GgufType::ARRAY) wrong_type(path_, key, "ARRAY", v);
  return v.arr;
}

std::vector<std::string> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = get_typed(*this, key, "ARRAY of STRING");
  if (v.type != GgufType::ARRAY || v.elem_type != GgufType::STRING)
    wrong_type(path_, key, "ARRAY of STRING", v);
  std::vector<std::string> out;
  out.reserve(v.arr.size());
  for (const GgufValue& e : v.arr) out.push_back(e.str);
  return out;
}

std::vector<float> GgufFile::get_f32_array(const std::string& key) const {
  const GgufValue& v = get_typed(*this, key, "ARRAY of FLOAT32");
  if (v.type != GgufType::ARRAY || !(v.elem_type == GgufType::FLOAT32 || v.elem_type == GgufType::FLOAT64))
    wrong_type(path_, key, "ARRAY of FLOAT32", v);
  std::vector<float> out;
  out.reserve(v.arr.size());
  for (const GgufValue& e : v.arr) out.push_back(static_cast<float>(e.f));
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue& v = get_typed(*this, key, "ARRAY of integers");
  if (v.type != GgufType::ARRAY) wrong_type(path_, key, "ARRAY of integers", v);
  GgufValue probe;
  probe.type = v.elem_type;
  if (!probe.is_integer()) wrong_type(path_, key, "ARRAY of integers", v);
  std::vector<int64_t> out;
  out.reserve(v.arr.size());
  try {
    for (const GgufValue& e : v.arr) out.push_back(e.as_int());
  } catch (const Error& e) {
    throw Error(path_ + ": metadata key '" + key + "': " + e.what());
  }
  return out;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& def) const {
  return has(key) ? get_string(key) : def;
}
int64_t GgufFile::get_int_or(const std::string& key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}
float GgufFile::get_f32_or(const std::string& key, float def) const {
  return has(key) ? get_f32(key) : def;
}
bool GgufFile::get_bool_or(const std::string& key, bool def) const {
  return has(key) ? get_bool(key) : def;
}

}  // namespace slm
