// slm convert against ../shared/hf: every folder converts to the tensors (names, types, shapes,
// sha256 of the data) and metadata keys of its REF.json — the conversion llama.cpp's
// convert_hf_to_gguf.py makes — and the converted file gives the reference logits in slm.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/shared.h"
#include "convert/bpe_pre.h"
#include "convert/convert.h"
#include "convert/safetensors.h"
#include "convert/sha256.h"
#include "gguf/gguf.h"
#include "kernels/thread_pool.h"
#include "model/config.h"
#include "model/reference_check.h"
#include "slm/error.h"
#include "slm/model.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace slm {
namespace {

json load_json(const std::string& path) { return json::parse(test::read_file(path)); }

std::vector<std::string> hf_folders() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(test::shared("hf"), ec))
    if (fs::is_regular_file(e.path() / "REF.json")) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/slm_convert_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::string convert_to(const std::string& folder, const std::string& outtype, const fs::path& dir) {
  convert::ConvertOptions o;
  o.dir = test::shared("hf/" + folder);
  o.out = (dir / (folder + "-" + outtype + ".gguf")).string();
  o.outtype = outtype;
  o.threads = 2;
  convert::convert_hf(o);
  return o.out;
}

// A metadata value of the converted file equals REF's JSON value (floats as float32).
void expect_value_eq(const std::string& key, const GgufValue& got, const json& want) {
  if (want.is_boolean()) {
    ASSERT_EQ(got.type, GgufType::BOOL) << key;
    EXPECT_EQ(got.u != 0, want.get<bool>()) << key;
  } else if (want.is_number_integer()) {
    ASSERT_TRUE(got.is_integer()) << key << " is " << gguf_type_name(got.type);
    EXPECT_EQ(got.as_int(), want.get<int64_t>()) << key;
  } else if (want.is_number_float()) {
    ASSERT_TRUE(got.is_float()) << key << " is " << gguf_type_name(got.type);
    EXPECT_EQ(static_cast<float>(got.f), static_cast<float>(want.get<double>())) << key;
  } else if (want.is_string()) {
    ASSERT_EQ(got.type, GgufType::STRING) << key;
    EXPECT_EQ(got.str, want.get<std::string>()) << key;
  } else if (want.is_array()) {
    ASSERT_EQ(got.type, GgufType::ARRAY) << key;
    ASSERT_EQ(got.arr.size(), want.size()) << key;
    for (size_t i = 0; i < want.size(); ++i) expect_value_eq(key + "[" + std::to_string(i) + "]", got.arr[i], want[i]);
  } else {
    ADD_FAILURE() << key << ": REF value of unexpected kind";
  }
}

// "= ../../fixtures/X.gguf (512 values) except [0] = -1000.0, [1] = 3": the array equals that
// file's, but for the listed entries.
void expect_array_from_file(const std::string& key, const GgufValue& got, const std::string& ref, const fs::path& folder) {
  std::smatch m;
  ASSERT_TRUE(std::regex_search(ref, m, std::regex(R"(^= (\S+) \((\d+) values\))"))) << key << ": " << ref;
  auto other = GgufFile::open((folder / m[1].str()).string());
  const GgufValue* want = other->find(key);
  ASSERT_NE(want, nullptr) << key << " missing in " << m[1];
  ASSERT_EQ(got.type, GgufType::ARRAY) << key;
  ASSERT_EQ(got.arr.size(), std::stoul(m[2].str())) << key;
  ASSERT_EQ(want->arr.size(), got.arr.size()) << key;
  std::map<size_t, double> except;
  const std::string rest = ref.substr(m[0].length());
  std::regex item(R"(\[(\d+)\] = (-?[0-9.eE+-]+))");
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), item); it != std::sregex_iterator(); ++it)
    except[std::stoul((*it)[1].str())] = std::stod((*it)[2].str());
  size_t diffs = 0;
  for (size_t i = 0; i < got.arr.size(); ++i) {
    const GgufValue& g = got.arr[i];
    ASSERT_EQ(g.type, want->arr[i].type) << key << "[" << i << "]";
    if (except.count(i)) {
      EXPECT_EQ(g.as_double(), except[i]) << key << "[" << i << "]";
    } else if (g.type == GgufType::STRING) {
      diffs += g.str != want->arr[i].str;
    } else {
      diffs += g.as_double() != want->arr[i].as_double();
    }
  }
  EXPECT_EQ(diffs, 0u) << key << ": entries differ from " << m[1];
}

class ConvertRef : public ::testing::TestWithParam<std::string> {};

TEST_P(ConvertRef, TensorsAndMetadataMatchTheReference) {
  const std::string folder = GetParam();
  const fs::path dir = test::shared("hf/" + folder);
  const json ref = load_json((dir / "REF.json").string());
  TempDir tmp;
  const std::string out = convert_to(folder, ref["outtype"].get<std::string>(), tmp.path);
  auto f = GgufFile::open(out);

  // Tensors: exactly REF's, with its types, shapes and bytes.
  std::set<std::string> names;
  for (const GgufTensor& t : f->tensors()) names.insert(t.name);
  std::set<std::string> want_names;
  for (auto& [name, v] : ref["tensors"].items()) want_names.insert(name);
  EXPECT_EQ(names, want_names);
  for (auto& [name, v] : ref["tensors"].items()) {
    const GgufTensor* t = f->find_tensor(name);
    if (!t) continue;
    EXPECT_STREQ(type_name(t->type), v[0].get<std::string>().c_str()) << name;
    std::vector<int64_t> ne(t->ne, t->ne + t->n_dims);
    EXPECT_EQ(ne, v[1].get<std::vector<int64_t>>()) << name;
    EXPECT_EQ(convert::sha256_hex(t->data, t->nbytes), v[2].get<std::string>()) << name;
  }
  if (ref.contains("generated_tensors"))
    for (auto& [name, vals] : ref["generated_tensors"].items()) {
      const GgufTensor* t = f->find_tensor(name);
      ASSERT_NE(t, nullptr) << name;
      ASSERT_EQ(t->n_elements(), static_cast<int64_t>(vals.size()));
      const float* x = reinterpret_cast<const float*>(t->data);
      for (size_t i = 0; i < vals.size(); ++i) EXPECT_EQ(x[i], vals[i].get<float>()) << name << "[" << i << "]";
    }

  // Metadata: every key of REF with its value; no key REF lacks (the informational general.*
  // keys — name, size label, sampling defaults — are not compared).
  auto informational = [](const std::string& k) {
    return k.rfind("general.", 0) == 0 && k != "general.architecture" && k != "general.file_type" &&
           k != "general.quantization_version";
  };
  const json& meta = ref["metadata"];
  for (auto& [key, want] : meta.items()) {
    if (informational(key)) continue;
    const GgufValue* got = f->find(key);
    if (!got) {
      ADD_FAILURE() << "missing key " << key;
      continue;
    }
    if (want.is_string() && want.get<std::string>().rfind("= ", 0) == 0) {
      const std::string s = want.get<std::string>();
      if (s.find("tokenizer_config.json chat_template") != std::string::npos) {
        const json tc = load_json((dir / "tokenizer_config.json").string());
        EXPECT_EQ(got->str, tc["chat_template"].get<std::string>()) << key;
      } else {
        expect_array_from_file(key, *got, s, dir);
      }
      continue;
    }
    expect_value_eq(key, *got, want);
  }
  for (const auto& [key, v] : f->metadata())
    if (!informational(key) && !meta.contains(key)) ADD_FAILURE() << "extra key " << key;
}

// The converted file runs in slm and gives the reference logits on the fixture's input.
void expect_reference_logits(const std::string& folder, const std::string& outtype) {
  const fs::path dir = test::shared("hf/" + folder);
  const json ref = load_json((dir / "REF.json").string());
  TempDir tmp;
  const std::string out = convert_to(folder, outtype, tmp.path);
  auto model = Model::load(out);
  std::vector<std::string> fixtures;
  if (ref.contains("fixtures") && ref["fixtures"].is_array())
    fixtures = ref["fixtures"].get<std::vector<std::string>>();
  else fixtures = {ref["fixture"].get<std::string>()};
  for (const std::string& fx : fixtures) {
    const json j = load_json(test::shared("fixtures/" + fx + ".json"));
    std::string logits_file;
    if (ref["exact"].get<bool>() && outtype == ref["outtype"].get<std::string>())
      logits_file = test::shared("fixtures/" + j["logits"].get<std::string>());
    else
      logits_file = (dir / ref["logits"][outtype].get<std::string>()).string();
    const std::vector<int32_t> ids = j["input_ids"].get<std::vector<int32_t>>();
    const int n = static_cast<int>(ids.size()), V = model->n_vocab();
    const std::vector<float> want = test::read_f32(logits_file);
    ASSERT_EQ(want.size(), static_cast<size_t>(n) * V) << logits_file;
    ThreadPool pool(2);
    KvCache cache(model->config(), j["n_ctx"].get<int>());
    std::vector<float> got(want.size());
    model->forward(pool, cache, ids.data(), n, 0, got.data(), true);
    const bool gemma = model->config().arch.rfind("gemma", 0) == 0;
    const std::string kind = outtype == "f32" ? "F32" : "BF16";
    const double max_abs = test::expect_logits_match(kind, gemma, {}, got, want, n, V, j["stats"]["logits_std"].get<float>());
    std::printf("%s %s on %s: max |delta| %.3g\n", folder.c_str(), outtype.c_str(), fx.c_str(), max_abs);
  }
}

TEST_P(ConvertRef, ConvertedFileGivesTheReferenceLogits) {
  const std::string folder = GetParam();
  const json ref = load_json(test::shared("hf/" + folder + "/REF.json"));
  const bool has_fixture = (ref.contains("fixture") && ref["fixture"].is_string()) ||
                           (ref.contains("fixtures") && ref["fixtures"].is_array());
  if (!has_fixture) GTEST_SKIP() << "no fixture: tokenizer-only folder";
  std::vector<std::string> outtypes;
  if (ref.contains("logits"))
    for (auto& [t, file] : ref["logits"].items()) outtypes.push_back(t);
  if (ref["exact"].get<bool>()) outtypes.push_back(ref["outtype"].get<std::string>());
  std::sort(outtypes.begin(), outtypes.end());
  outtypes.erase(std::unique(outtypes.begin(), outtypes.end()), outtypes.end());
  for (const std::string& t : outtypes) {
    SCOPED_TRACE(t);
    expect_reference_logits(folder, t);
  }
}

INSTANTIATE_TEST_SUITE_P(Hf, ConvertRef, ::testing::ValuesIn(hf_folders()), test::ParamName());

// ---- bad checkpoints --------------------------------------------------------------------

// A safetensors image: header JSON then data.
std::string safetensors_image(const json& header, const std::string& data) {
  std::string h = header.dump();
  while ((h.size() + 8) % 8) h += ' ';
  std::string out(8, '\0');
  const uint64_t n = h.size();
  std::memcpy(out.data(), &n, 8);
  return out + h + data;
}

std::string error_of(const std::string& image) {
  try {
    convert::SafetensorsSet::from_memory(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "x.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ConvertSafetensors, RefusesBrokenHeadersWithOneLine) {
  const std::string data(16, '\0');
  auto one = [](const char* dtype, json shape, json off) {
    return json{{"w", {{"dtype", dtype}, {"shape", shape}, {"data_offsets", off}}}};
  };
  EXPECT_EQ(error_of(safetensors_image(one("F32", {2, 2}, {0, 16}), data)), "");
  EXPECT_NE(error_of("abc").find("too short"), std::string::npos);
  std::string huge(16, '\0');
  huge[0] = '\xff';
  huge[7] = '\x7f';
  EXPECT_NE(error_of(huge).find("header length"), std::string::npos);
  EXPECT_NE(error_of(safetensors_image(one("F32", {2, 2}, {0, 32}), data)).find("outside the data"), std::string::npos);
  EXPECT_NE(error_of(safetensors_image(one("F32", {2, 3}, {0, 16}), data)).find("need"), std::string::npos);
  EXPECT_NE(error_of(safetensors_image(one("F8_E4M3", {16}, {0, 16}), data)).find("FP8"), std::string::npos);
  EXPECT_NE(error_of(safetensors_image(one("I64", {2}, {0, 16}), data)).find("not supported"), std::string::npos);
  EXPECT_NE(error_of(safetensors_image(one("F32", {-2, 2}, {0, 16}), data)).find("shape"), std::string::npos);
  json two = {{"a", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {0, 8}}}},
              {"b", {{"dtype", "F32"}, {"shape", {2}}, {"data_offsets", {4, 12}}}}};
  EXPECT_NE(error_of(safetensors_image(two, data)).find("overlap"), std::string::npos);
  EXPECT_NE(error_of(safetensors_image(json::array({1, 2}), data)).find("not a JSON object"), std::string::npos);
  std::string bad = safetensors_image(one("F32", {2, 2}, {0, 16}), data);
  bad[9] = '{';  // breaks the JSON
  EXPECT_NE(error_of(bad).find("not valid JSON"), std::string::npos);
  for (const std::string& e : {error_of("abc"), error_of(bad)}) EXPECT_EQ(e.find('\n'), std::string::npos);
  // 200,000 levels of nesting would overflow the stack of any recursive walk: refused while parsing.
  std::string deep = "{\"__metadata__\":" + std::string(200000, '[') + std::string(200000, ']') + "}";
  while ((deep.size() + 8) % 8) deep += ' ';
  std::string deep_image(8, '\0');
  const uint64_t n = deep.size();
  std::memcpy(deep_image.data(), &n, 8);
  EXPECT_NE(error_of(deep_image + deep).find("nested deeper than 64"), std::string::npos);
}

// Copies a shared folder into a temporary one, where a test may break it.
fs::path copy_folder(const std::string& folder, const fs::path& to) {
  const fs::path dst = to / folder;
  fs::create_directories(dst);
  fs::copy(test::shared("hf/" + folder), dst, fs::copy_options::recursive);
  for (const auto& e : fs::recursive_directory_iterator(dst))
    fs::permissions(e.path(), fs::perms::owner_write, fs::perm_options::add);
  fs::permissions(dst, fs::perms::owner_all, fs::perm_options::add);
  return dst;
}

std::string convert_error(const fs::path& dir, const fs::path& out) {
  convert::ConvertOptions o;
  o.dir = dir.string();
  o.out = out.string();
  try {
    convert::convert_hf(o);
  } catch (const Error& e) {
    EXPECT_FALSE(fs::exists(out)) << "a failed conversion left " << out;
    EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
    return e.what();
  }
  return "";
}

TEST(ConvertErrors, BadFoldersGetOneLineNamingTheProblem) {
  TempDir tmp;
  const fs::path out = tmp.path / "out.gguf";
  // config.json disagrees with the weights: the tensor is named.
  {
    const fs::path d = copy_folder("llama", tmp.path / "a");
    json cfg = load_json((d / "config.json").string());
    cfg["intermediate_size"] = 512;
    std::ofstream(d / "config.json") << cfg.dump();
    const std::string e = convert_error(d, out);
    EXPECT_NE(e.find("mlp."), std::string::npos) << e;
    EXPECT_NE(e.find("config.json implies"), std::string::npos) << e;
  }
  // An architecture slm does not convert.
  {
    const fs::path d = copy_folder("llama", tmp.path / "b");
    json cfg = load_json((d / "config.json").string());
    cfg["architectures"] = {"BertModel"};
    std::ofstream(d / "config.json") << cfg.dump();
    EXPECT_NE(convert_error(d, out).find("BertModel is not one slm converts"), std::string::npos);
  }
  // A shard the index names is missing.
  {
    const fs::path d = copy_folder("mixtral", tmp.path / "c");
    fs::remove(d / "model-00002-of-00003.safetensors");
    EXPECT_NE(convert_error(d, out).find("model-00002-of-00003.safetensors"), std::string::npos);
  }
  // A layer more in config.json than in the weights.
  {
    const fs::path d = copy_folder("gemma", tmp.path / "d");
    json cfg = load_json((d / "config.json").string());
    cfg["num_hidden_layers"] = 3;
    std::ofstream(d / "config.json") << cfg.dump();
    EXPECT_NE(convert_error(d, out).find("layer 2 has no"), std::string::npos);
  }
  // A config.json nested 100,000 levels deep.
  {
    const fs::path d = copy_folder("llama", tmp.path / "e");
    std::ofstream(d / "tokenizer_config.json") << "{\"x\":" << std::string(100000, '[') << std::string(100000, ']') << "}";
    const std::string e = convert_error(d, out);
    EXPECT_NE(e.find("tokenizer_config.json"), std::string::npos) << e;
    EXPECT_NE(e.find("nested deeper than 64"), std::string::npos) << e;
  }
  // Not a folder at all.
  EXPECT_NE(convert_error(tmp.path / "nope", out).find("not a folder"), std::string::npos);
}

// tokenizer_config.json may carry a list of named templates (Cohere, Hermes style): the
// "default" one is tokenizer.chat_template, the others tokenizer.chat_template.NAME, and their
// names tokenizer.chat_templates, as gguf-py writes them.
TEST(ConvertVocab, NamedChatTemplatesGetTheirOwnKeys) {
  TempDir tmp;
  const fs::path d = copy_folder("gemma", tmp.path / "n");
  json tcfg = load_json((d / "tokenizer_config.json").string());
  tcfg["chat_template"] = json::array({{{"name", "default"}, {"template", "{{ 'A' }}"}},
                                       {{"name", "tool-use"}, {"template", "{{ 'B' }}"}},
                                       {{"name", "rag"}, {"template", "{{ 'C' }}"}}});
  std::ofstream(d / "tokenizer_config.json") << tcfg.dump();
  convert::ConvertOptions o;
  o.dir = d.string();
  o.out = (tmp.path / "n.gguf").string();
  o.vocab_only = true;
  convert::convert_hf(o);
  auto f = GgufFile::open(o.out);
  EXPECT_EQ(f->get_string("tokenizer.chat_template"), "{{ 'A' }}");
  EXPECT_EQ(f->get_string("tokenizer.chat_template.tool_use"), "{{ 'B' }}");
  EXPECT_EQ(f->get_string("tokenizer.chat_template.rag"), "{{ 'C' }}");
  EXPECT_EQ(f->get_string_array("tokenizer.chat_templates"), (std::vector<std::string>{"tool_use", "rag"}));
  EXPECT_EQ(f->tensors().size(), 0u);
}

TEST(ConvertCli, ConvertsAndRefusesWithExitCodes) {
  TempDir tmp;
  const std::string out = (tmp.path / "g.gguf").string();
  int rc = -1;
  test::run_cmd(test::slm_bin() + " convert " + test::shared("hf/gemma") + " -o " + out + " --outtype q8_0 2>&1", &rc);
  EXPECT_EQ(rc, 0);
  auto f = GgufFile::open(out);
  EXPECT_EQ(f->get_int("general.file_type"), 7);
  EXPECT_STREQ(type_name(f->find_tensor("blk.0.ffn_up.weight")->type), "Q8_0");
  EXPECT_STREQ(type_name(f->find_tensor("blk.0.attn_norm.weight")->type), "F32");
  const std::string err = test::run_cmd(test::slm_bin() + " convert " + test::shared("hf/gemma") + " -o " + out +
                                            " --outtype q9_9 2>&1", &rc);
  EXPECT_NE(rc, 0);
  EXPECT_NE(err.find("slm: error:"), std::string::npos) << err;
}


// ---- PEFT adapters ----------------------------------------------------------------------

namespace peft {

// The HF module a GGUF adapter target adapts, for the fixtures' families.
std::string hf_module(const std::string& target, const std::string& arch) {
  std::smatch m;
  EXPECT_TRUE(std::regex_match(target, m, std::regex(R"(blk\.(\d+)\.(\w+)\.weight)"))) << target;
  const std::map<std::string, std::string> names = {
      {"attn_q", "self_attn.q_proj"},   {"attn_k", "self_attn.k_proj"}, {"attn_v", "self_attn.v_proj"},
      {"attn_output", "self_attn.o_proj"}, {"attn_qkv", "self_attn.qkv_proj"}, {"ffn_gate", "mlp.gate_proj"},
      {"ffn_up", arch == "phi3" ? "mlp.gate_up_proj" : "mlp.up_proj"}, {"ffn_down", "mlp.down_proj"}};
  return "base_model.model.model.layers." + m[1].str() + "." + names.at(m[2].str());
}

// Builds a PEFT folder from a GGUF adapter by undoing the format's transforms by hand:
// lora_a ne [n_in, r] is lora_A [r, n_in] (same bytes); lora_b ne [r, n_out] is lora_B
// [n_out, r], with Llama-style q/k rows taken back from GGUF's interleaved rotary pairs to HF's
// half-split order.
void write_peft_folder(const GgufFile& adapter, const ModelConfig& base, const fs::path& dir, bool rslora) {
  fs::create_directories(dir);
  const bool permute = base.arch == "llama" || base.arch == "granite" || base.arch == "granitemoe";
  json header = json::object();
  std::string data;
  int64_t rank = 0;
  for (const GgufTensor& t : adapter.tensors()) {
    const bool is_b = t.name.size() > 7 && t.name.substr(t.name.size() - 7) == ".lora_b";
    const std::string target = t.name.substr(0, t.name.size() - 7);
    const std::string module = hf_module(target, base.arch);
    std::string bytes(reinterpret_cast<const char*>(t.data), t.nbytes);
    const std::string kind = target.substr(target.find('.', 4) + 1);
    if (is_b && permute && (kind == "attn_q.weight" || kind == "attn_k.weight")) {
      const int64_t layer = std::stoll(target.substr(4));
      const int64_t heads = kind == "attn_q.weight" ? base.layers[layer].n_head : base.layers[layer].n_head_kv;
      const int64_t rows = t.ne[1], row_bytes = t.nbytes / rows, per = rows / heads, half = per / 2;
      std::string hf(bytes.size(), '\0');
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t i = 0; i < half; ++i)
          for (int64_t j = 0; j < 2; ++j)
            std::memcpy(&hf[(h * per + j * half + i) * row_bytes], &bytes[(h * per + 2 * i + j) * row_bytes], row_bytes);
      bytes = hf;
    }
    if (!is_b) rank = t.ne[1];
    const std::string dtype = t.type == GgmlType::F16 ? "F16" : "F32";
    header[module + (is_b ? ".lora_B.weight" : ".lora_A.weight")] = {
        {"dtype", dtype}, {"shape", {t.ne[1], t.ne[0]}}, {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
  std::ofstream(dir / "adapter_model.safetensors", std::ios::binary) << safetensors_image(header, data);
  const double alpha = adapter.get_f32("adapter.lora.alpha");
  json cfg = {{"peft_type", "LORA"}, {"r", rank}, {"lora_alpha", rslora ? alpha / std::sqrt(double(rank)) : alpha},
              {"use_rslora", rslora}, {"use_dora", false}, {"rank_pattern", json::object()},
              {"alpha_pattern", json::object()}, {"target_modules", {"q_proj", "k_proj"}}};
  std::ofstream(dir / "adapter_config.json") << cfg.dump(2);
}

}  // namespace peft

class ConvertPeft : public ::testing::TestWithParam<std::string> {};

// A fixture adapter taken to PEFT form and converted back is the same GGUF adapter, bit for
// bit, with the base given as its GGUF file.
TEST_P(ConvertPeft, RoundTripsAFixtureAdapter) {
  const json fx = load_json(test::shared("fixtures/lora/" + GetParam() + ".json"));
  const std::string base_file = test::shared("fixtures/" + fx["base_file"].get<std::string>());
  auto base_gguf = GgufFile::open(base_file);
  const ModelConfig base = ModelConfig::from_gguf(*base_gguf);
  const std::string adapter_file = test::shared("fixtures/lora/" + fx["adapters"][0]["file"].get<std::string>());
  auto adapter = GgufFile::open(adapter_file);
  for (bool rslora : {false, true}) {
    SCOPED_TRACE(rslora ? "rslora" : "lora");
    TempDir tmp;
    peft::write_peft_folder(*adapter, base, tmp.path / "peft", rslora);
    convert::LoraConvertOptions o;
    o.adapter_dir = (tmp.path / "peft").string();
    o.base = base_file;
    o.out = (tmp.path / "a.gguf").string();
    o.outtype = adapter->tensors()[0].type == GgmlType::F16 ? "f16" : "f32";
    convert::convert_peft_lora(o);
    auto got = GgufFile::open(o.out);
    EXPECT_EQ(got->get_string("general.type"), "adapter");
    EXPECT_EQ(got->get_string("adapter.type"), "lora");
    EXPECT_EQ(got->get_string("general.architecture"), adapter->get_string("general.architecture"));
    EXPECT_NEAR(got->get_f32("adapter.lora.alpha"), adapter->get_f32("adapter.lora.alpha"),
                1e-6 * adapter->get_f32("adapter.lora.alpha"));
    ASSERT_EQ(got->tensors().size(), adapter->tensors().size());
    for (const GgufTensor& want : adapter->tensors()) {
      const GgufTensor* t = got->find_tensor(want.name);
      ASSERT_NE(t, nullptr) << want.name;
      EXPECT_EQ(t->type, want.type) << want.name;
      EXPECT_EQ(std::vector<int64_t>(t->ne, t->ne + t->n_dims), std::vector<int64_t>(want.ne, want.ne + want.n_dims));
      ASSERT_EQ(t->nbytes, want.nbytes);
      EXPECT_EQ(std::memcmp(t->data, want.data, want.nbytes), 0) << want.name << " differs";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ConvertPeft,
                         ::testing::Values("llama-f32-lora-all", "phi3-long-f32-lora-all", "granite-q4_k_m-lora-all",
                                           "gemma2-f32-lora-all"),
                         test::ParamName());

TEST(ConvertPeft, RefusesWhatTheFormatCannotHold) {
  TempDir tmp;
  const std::string base = test::shared("fixtures/llama-f32.gguf");
  auto base_gguf = GgufFile::open(base);
  auto adapter = GgufFile::open(test::shared("fixtures/lora/llama-f32-lora-all.adapter0.gguf"));
  const fs::path dir = tmp.path / "peft";
  peft::write_peft_folder(*adapter, ModelConfig::from_gguf(*base_gguf), dir, false);
  auto error = [&](const std::function<void(json&)>& edit) {
    json cfg = load_json((dir / "adapter_config.json").string());
    const json saved = cfg;
    edit(cfg);
    std::ofstream(dir / "adapter_config.json") << cfg.dump();
    std::string e;
    try {
      convert::LoraConvertOptions o{dir.string(), base, (tmp.path / "x.gguf").string(), "f32"};
      convert::convert_peft_lora(o);
    } catch (const Error& err) {
      e = err.what();
    }
    std::ofstream(dir / "adapter_config.json") << saved.dump();
    if (!e.empty()) {
      EXPECT_FALSE(fs::exists(tmp.path / "x.gguf"));
    }
    return e;
  };
  EXPECT_NE(error([](json& c) { c["use_dora"] = true; }).find("DoRA"), std::string::npos);
  EXPECT_NE(error([](json& c) { c["rank_pattern"] = {{"q_proj", 8}}; }).find("rank_pattern"), std::string::npos);
  EXPECT_NE(error([](json& c) { c["peft_type"] = "IA3"; }).find("only LORA"), std::string::npos);
  EXPECT_NE(error([](json& c) { c["r"] = 5; }).find("differs from adapter_config.json's r"), std::string::npos);
  EXPECT_EQ(error([](json&) {}), "");
}


// ---- naming the BPE pre-tokenizer by the reference's check hash ---------------------------

// llama.cpp's test vocabularies were written by its converter from the real tokenizers: the
// ids slm's tokenizer gives the check text must hash to the digest the reference lists under
// the very name each file carries. Regexes alone cannot tell refact from starcoder; this can.
TEST(ConvertPreHash, SharedBpeVocabulariesHashToTheirOwnName) {
  int checked = 0;
  for (const char* name : {"llama-bpe", "gpt-2", "starcoder", "refact", "falcon", "mpt", "deepseek-llm", "deepseek-coder"}) {
    const std::string path = test::shared(std::string("vocab/ggml-vocab-") + name + ".gguf");
    if (!fs::exists(path)) continue;
    SCOPED_TRACE(name);
    auto f = GgufFile::open(path);
    const std::string hash = convert::check_hash_of(path);
    const char* pre = convert::pre_for_check_hash(hash);
    ASSERT_NE(pre, nullptr) << "hash " << hash << " is not one the reference knows";
    EXPECT_EQ(std::string(pre), f->get_string("tokenizer.ggml.pre"));
    ++checked;
  }
  EXPECT_GE(checked, 4);
  std::printf("%d vocabularies hash to their own pre-tokenizer name\n", checked);
}

// The Python list form the reference hashes, checked against a digest computed by hand
// (sha256 of the ASCII text "[1, 22, 333]").
TEST(ConvertPreHash, HashesThePythonListOfIds) {
  EXPECT_EQ(convert::check_hash({}), "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945");
  EXPECT_EQ(convert::check_hash({1, 22, 333}),
            convert::sha256_hex(reinterpret_cast<const uint8_t*>("[1, 22, 333]"), 12));
}

}  // namespace
}  // namespace slm
