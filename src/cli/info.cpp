// slm info FILE [--json]: what a GGUF file holds — metadata, tensor table, totals.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "kernels/tier.h"
#include "model/config.h"
#include "quant/mixture.h"
#include "slm/model.h"

namespace slm::cli {
namespace {

using json = nlohmann::ordered_json;

json value_to_json(const GgufValue& v) {
  switch (v.type) {
    case GgufType::UINT8: case GgufType::UINT16: case GgufType::UINT32: case GgufType::UINT64:
      return v.u;
    case GgufType::INT8: case GgufType::INT16: case GgufType::INT32: case GgufType::INT64:
      return v.i;
    case GgufType::FLOAT32: case GgufType::FLOAT64:
      return v.f;
    case GgufType::BOOL:
      return v.u != 0;
    case GgufType::STRING:
      return v.str;
    case GgufType::ARRAY: {
      json a = json::array();
      for (const GgufValue& e : v.arr) a.push_back(value_to_json(e));
      return a;
    }
  }
  return nullptr;
}

// One line for the text listing: long strings and arrays are abbreviated.
std::string value_summary(const GgufValue& v) {
  auto quote = [](const std::string& s, size_t max) {
    std::string out = json(s.size() > max ? s.substr(0, max) : s).dump(-1, ' ', false,
                                                                         json::error_handler_t::replace);
    if (s.size() > max) out += fmt::format("… ({} bytes)", s.size());
    return out;
  };
  if (v.type == GgufType::STRING) return quote(v.str, 60);
  if (v.type != GgufType::ARRAY) return value_to_json(v).dump();
  std::string out = "[";
  size_t shown = std::min<size_t>(v.arr.size(), 6);
  for (size_t k = 0; k < shown; ++k) {
    if (k) out += ", ";
    out += v.arr[k].type == GgufType::STRING ? quote(v.arr[k].str, 20) : value_summary(v.arr[k]);
  }
  if (v.arr.size() > shown) out += fmt::format(", … {} more", v.arr.size() - shown);
  out += fmt::format("] ({} × {})", v.arr.size(), gguf_type_name(v.elem_type));
  return out;
}

std::string human_bytes(uint64_t b) {
  if (b >= (1ull << 30)) return fmt::format("{:.2f} GiB", b / double(1ull << 30));
  if (b >= (1ull << 20)) return fmt::format("{:.2f} MiB", b / double(1ull << 20));
  if (b >= (1ull << 10)) return fmt::format("{:.2f} KiB", b / double(1ull << 10));
  return fmt::format("{} B", b);
}

std::string shape_str(const GgufTensor& t) {
  std::string s;
  for (uint32_t d = 0; d < t.n_dims; ++d) s += (d ? " × " : "") + std::to_string(t.ne[d]);
  return s;
}

int run_info(const std::string& path, bool as_json) {
  auto f = GgufFile::open(path);
  if (as_json) {
    json j;
    j["version"] = f->version();
    j["alignment"] = f->alignment();
    json md = json::object();
    for (const auto& [k, v] : f->metadata()) md[k] = value_to_json(v);
    j["metadata"] = std::move(md);
    json ts = json::array();
    for (const GgufTensor& t : f->tensors()) {
      json shape = json::array();
      for (uint32_t d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
      ts.push_back({{"name", t.name}, {"type", type_name(t.type)}, {"shape", shape}, {"offset", t.offset}});
    }
    j["tensors"] = std::move(ts);
    fmt::print("{}\n", j.dump(1, ' ', false, json::error_handler_t::replace));
    return 0;
  }

  fmt::print("{}: GGUF v{}, alignment {}, {} metadata keys, {} tensors, {}\n", f->path(), f->version(),
             f->alignment(), f->metadata().size(), f->tensors().size(), human_bytes(f->file_size()));
  uint64_t n_params = 0, n_bytes = 0;
  for (const GgufTensor& t : f->tensors()) n_params += uint64_t(t.n_elements()), n_bytes += t.nbytes;
  if (f->has("general.file_type"))
    fmt::print("file type: {}, {:.2f} bits per weight\n", file_type_name(uint32_t(f->get_int("general.file_type"))),
               n_params ? 8.0 * double(n_bytes) / double(n_params) : 0.0);
  // The family and its switches in words, when this is a model slm can run.
  if (!f->tensors().empty()) {
    try {
      const ModelConfig config = ModelConfig::from_gguf(*f);
      fmt::print("model: {}\n", config.describe());
      fmt::print("KV cache: {} per 1k tokens (f16), {} (f32)\n", human_bytes(KvCache::bytes_for(config, 1024, GgmlType::F16)),
                 human_bytes(KvCache::bytes_for(config, 1024, GgmlType::F32)));
      fmt::print("CPU kernels here: {} (this CPU runs: {})\n", cpu_tier_name(cpu_tier()), cpu_tiers_supported());
    } catch (const Error& e) {
      fmt::print("model: not runnable by slm: {}\n", e.what());
    }
  }
  fmt::print("\nmetadata:\n");
  for (const auto& [k, v] : f->metadata()) fmt::print("  {:<44} {}\n", k, value_summary(v));

  if (!f->tensors().empty()) {
    fmt::print("\ntensors:\n  {:<36} {:<7} {:<24} {:>12} {:>12}\n", "name", "type", "shape", "bytes", "offset");
    for (const GgufTensor& t : f->tensors())
      fmt::print("  {:<36} {:<7} {:<24} {:>12} {:>12}\n", t.name, type_name(t.type), shape_str(t), t.nbytes,
                 t.offset);
  }
  uint64_t params = 0, bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> per_type;  // type -> (tensors, bytes)
  for (const GgufTensor& t : f->tensors()) {
    params += static_cast<uint64_t>(t.n_elements());
    bytes += t.nbytes;
    auto& e = per_type[type_name(t.type)];
    e.first++;
    e.second += t.nbytes;
  }
  std::string p = params >= 1e9 ? fmt::format("{:.2f} B", params / 1e9)
                  : params >= 1e6 ? fmt::format("{:.1f} M", params / 1e6)
                                  : fmt::format("{:.1f} K", params / 1e3);
  fmt::print("\ntotals: {} parameters ({}), {} of tensor data\n", params, p, human_bytes(bytes));
  for (const auto& [name, e] : per_type)
    fmt::print("  {:<7} {:>5} tensors  {}\n", name, e.first, human_bytes(e.second));
  return 0;
}

}  // namespace

Action add_info(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "Show a GGUF file's metadata, tensors and totals");
  auto path = std::make_shared<std::string>();
  auto as_json = std::make_shared<bool>(false);
  auto flag_path = std::make_shared<std::string>();
  sub->add_option("file", *path, "GGUF model file");
  sub->add_option("-m,--model", *flag_path, "GGUF model file (as for every other command)");
  sub->add_flag("--json", *as_json, "Print the complete header as JSON (version, alignment, metadata, tensors)");
  return [path, flag_path, as_json] {
    if (path->empty() == flag_path->empty())
      throw CLI::ValidationError("info", "give the file once: slm info FILE or slm info -m FILE");
    return run_info(path->empty() ? *flag_path : *path, *as_json);
  };
}

}  // namespace slm::cli
