// The vocabulary half of `slm convert`: tokenizer.model / tokenizer.json / tokenizer_config.json
// → GGUF tokenizer metadata. The truth is independent of slm: the fixture GGUFs REF.json names
// (made by llama.cpp's converter), llama.cpp's ggml-vocab-llama-bpe.gguf, REF.json's keys, and
// hand-built inputs whose expected result follows from the reference's documented rules.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <unistd.h>

#include "common/shared.h"
#include "convert/hf_vocab.h"
#include "convert/sentencepiece_model.h"
#include "gguf/gguf.h"
#include "slm/error.h"

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace slm {
namespace {

using convert::HfVocab;
using convert::read_hf_vocab;
using convert::SpPiece;

// ---- helpers ----

json load_json(const std::string& path) { return json::parse(test::read_file(path)); }

void write_file(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f << s;
  ASSERT_TRUE(f.good()) << p;
}

// A scratch folder, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("slm_vocab_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
  void write(const std::string& name, const std::string& text) const { write_file(path / name, text); }
  void write(const std::string& name, const json& j) const { write_file(path / name, j.dump()); }
};

// The message of the slm::Error `f` throws ("" and a test failure when it throws nothing).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-slm exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

int64_t config_vocab_size(const json& config) {
  return config.contains("vocab_size") && config["vocab_size"].is_number_integer() ? config["vocab_size"].get<int64_t>()
                                                                                    : 0;
}

// ---- protobuf encoding, to build SentencePiece models by hand ----

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void put_tag(std::string& out, uint32_t field, unsigned wire) { put_varint(out, (uint64_t{field} << 3) | wire); }
void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_tag(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_fixed32(std::string& out, uint32_t field, uint32_t bits) {
  put_tag(out, field, 5);
  for (int i = 0; i < 4; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
}
void put_float(std::string& out, uint32_t field, float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  put_fixed32(out, field, bits);
}

// One ModelProto.pieces entry; type 0 leaves the field out (NORMAL by default).
std::string piece_msg(const std::string& text, float score, int type) {
  std::string m;
  put_bytes(m, 1, text);
  put_float(m, 2, score);
  if (type) {
    put_tag(m, 3, 0);
    put_varint(m, static_cast<uint64_t>(type));
  }
  return m;
}

std::string model_proto(const std::vector<SpPiece>& pieces) {
  std::string out;
  for (const SpPiece& p : pieces) put_bytes(out, 1, piece_msg(p.piece, p.score, p.type));
  return out;
}

std::vector<SpPiece> parse(const std::string& bytes, const std::string& name = "test.model") {
  return convert::parse_sentencepiece_model(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), name);
}

// ---- SentencePiece model reader ----

TEST(VocabSentencePiece, ReadsPiecesScoresAndTypes) {
  std::string proto;
  put_bytes(proto, 2, "trainer spec bytes");  // other ModelProto fields are skipped
  put_bytes(proto, 1, piece_msg("<unk>", 0, 2));
  put_bytes(proto, 1, piece_msg("<s>", 0, 3));
  put_bytes(proto, 1, piece_msg("\xE2\x96\x81the", -1.5f, 0));
  put_bytes(proto, 1, piece_msg("<0x0A>", 0, 6));
  put_bytes(proto, 1, piece_msg("<user>", 0, 4));
  put_bytes(proto, 1, piece_msg("<unused0>", 0, 5));
  put_bytes(proto, 3, std::string("\x0a\x03nmt", 5));
  const std::vector<SpPiece> p = parse(proto);
  ASSERT_EQ(p.size(), 6u);
  EXPECT_EQ(p[0].piece, "<unk>");
  EXPECT_EQ(p[0].type, 2);
  EXPECT_EQ(p[1].type, 3);
  EXPECT_EQ(p[2].piece, "\xE2\x96\x81the");
  EXPECT_FLOAT_EQ(p[2].score, -1.5f);
  EXPECT_EQ(p[2].type, 1);  // absent type field: NORMAL
  EXPECT_EQ(p[3].type, 6);
  EXPECT_EQ(p[4].type, 4);
  EXPECT_EQ(p[5].type, 5);
}

TEST(VocabSentencePiece, SkipsUnknownFieldsOfEveryWireType) {
  std::string piece;
  put_tag(piece, 9, 0);
  put_varint(piece, 300);  // varint
  put_tag(piece, 10, 1);
  piece += std::string(8, '\x7f');  // fixed64
  put_bytes(piece, 11, "nested");   // length-delimited
  put_fixed32(piece, 12, 0xdeadbeef);
  piece += piece_msg("abc", 2.0f, 0);
  std::string proto;
  put_tag(proto, 7, 0);
  put_varint(proto, uint64_t{1} << 63);  // a 10-byte varint
  put_tag(proto, 8, 1);
  proto += std::string(8, '\0');
  put_fixed32(proto, 6, 1);
  put_bytes(proto, 1, piece);
  const std::vector<SpPiece> p = parse(proto);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].piece, "abc");
  EXPECT_FLOAT_EQ(p[0].score, 2.0f);
}

TEST(VocabSentencePiece, RejectsMalformedFiles) {
  const std::string good = model_proto({{"a", 0, 1}, {"b", 0, 1}});
  struct Case {
    std::string what, bytes, expect;
  };
  std::string group;
  put_tag(group, 5, 3);
  std::string long_len;
  put_tag(long_len, 1, 2);
  put_varint(long_len, 1000);
  long_len += "abc";
  std::string bad_utf8 = model_proto({{"\xC3\x28", 0, 1}});
  std::string overlong = model_proto({{"\xC0\xAF", 0, 1}});
  std::string surrogate = model_proto({{"\xED\xA0\x80", 0, 1}});
  std::string bad_type = model_proto({{"a", 0, 9}});
  std::string dup = model_proto({{"a", 0, 1}, {"a", 0, 1}});
  std::string empty_piece = model_proto({{"", 0, 1}});
  std::string wrong_wire;
  put_tag(wrong_wire, 1, 0);
  put_varint(wrong_wire, 5);
  std::string score_wire;
  {
    std::string m;
    put_bytes(m, 1, "a");
    put_tag(m, 2, 0);  // score as a varint
    put_varint(m, 1);
    put_bytes(score_wire, 1, m);
  }
  std::string ten_bytes_plus;
  put_tag(ten_bytes_plus, 7, 0);
  ten_bytes_plus += std::string(10, '\xff') + '\x01';
  const std::vector<Case> cases = {
      {"empty", "", "empty"},
      {"truncated varint", std::string("\x0a\x80", 2), "truncated varint"},
      {"truncated file", good.substr(0, good.size() - 1), "past the end"},
      {"length past end", long_len, "past the end"},
      {"group", group, "group"},
      {"end group", std::string("\x0c", 1), "group"},
      {"wire type 7", std::string("\x0f", 1), "wire type"},
      {"field 0", std::string("\x02\x00", 2), "field number"},
      {"invalid UTF-8", bad_utf8, "UTF-8"},
      {"overlong UTF-8", overlong, "UTF-8"},
      {"surrogate", surrogate, "UTF-8"},
      {"unknown type", bad_type, "type"},
      {"duplicate", dup, "repeats"},
      {"empty piece", empty_piece, "empty"},
      {"pieces not length-delimited", wrong_wire, "wire type"},
      {"score not fixed32", score_wire, "wire type"},
      {"varint over 10 bytes", ten_bytes_plus, "varint"},
      {"no pieces", std::string("\x10\x01", 2), "no pieces"},
      {"garbage", std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 12), "varint"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string msg = error_of([&] { parse(c.bytes, "dir/tokenizer.model"); });
    EXPECT_NE(msg.find("dir/tokenizer.model: "), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(VocabSentencePiece, RefusesMoreThanTheLimitBeforeAllocating) {
  // 2^22 + 1 one-byte pieces: refused while counting, before any piece is built.
  const std::string one = [] {
    std::string s;
    put_bytes(s, 1, piece_msg("x", 0, 0).substr(0, 3));  // just the text field
    return s;
  }();
  std::string proto;
  proto.reserve(one.size() * (convert::kMaxSentencePieces + 1));
  for (size_t i = 0; i <= convert::kMaxSentencePieces; ++i) proto += one;
  const std::string msg = error_of([&] { parse(proto); });
  EXPECT_NE(msg.find("more than 4194304 pieces"), std::string::npos) << msg;
}

TEST(VocabSentencePiece, TruncatedRealModelNamesTheFile) {
  const std::string src = test::shared("hf/llama/tokenizer.model");
  if (!fs::exists(src)) GTEST_SKIP() << "no " << src;
  const std::string bytes = test::read_file(src);
  EXPECT_EQ(parse(bytes).size(), 512u);
  TempDir d;
  d.write("tokenizer.model", bytes.substr(0, bytes.size() / 2 + 3));
  const std::string path = (d.path / "tokenizer.model").string();
  const std::string msg = error_of([&] { convert::read_sentencepiece_model(path); });
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
  EXPECT_NE(error_of([&] { convert::read_sentencepiece_model((d.path / "missing.model").string()); }).find("missing.model"),
            std::string::npos);
}

TEST(VocabSentencePiece, Utf8Validation) {
  EXPECT_TRUE(convert::is_valid_utf8(""));
  EXPECT_TRUE(convert::is_valid_utf8("plain \xE2\x96\x81 \xF0\x9F\xA6\x99 \xC3\xA9"));
  EXPECT_FALSE(convert::is_valid_utf8("\x80"));
  EXPECT_FALSE(convert::is_valid_utf8("\xE2\x96"));          // truncated
  EXPECT_FALSE(convert::is_valid_utf8("\xE0\x80\x80"));      // overlong
  EXPECT_FALSE(convert::is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(convert::is_valid_utf8("\xF5\x80\x80\x80"));
}

// ---- SentencePiece folders of ../shared/hf against their reference conversions ----

// "= ../../fixtures/X.gguf (512 values) except [0] = -1000.0, [1] = 3": the file and the
// differing entries.
struct ArrayRef {
  std::string gguf;
  std::map<size_t, double> except;
};
ArrayRef parse_array_ref(const std::string& folder, const std::string& s) {
  ArrayRef r;
  static const std::regex head(R"(^= (\S+) \((\d+) values\)(.*)$)");
  std::smatch m;
  if (!std::regex_match(s, m, head)) {
    ADD_FAILURE() << "unexpected REF.json array value: " << s;
    return r;
  }
  r.gguf = (fs::path(folder) / m[1].str()).lexically_normal().string();
  const std::string rest = m[3].str();
  static const std::regex item(R"(\[(\d+)\] = ([-+0-9.eE]+))");
  for (auto it = std::sregex_iterator(rest.begin(), rest.end(), item); it != std::sregex_iterator(); ++it)
    r.except[std::stoul((*it)[1].str())] = std::stod((*it)[2].str());
  return r;
}

// REF.json's tokenizer.ggml.<typ>_token_id and add_<typ>_token keys, in file order. Gemma's
// eot id and add_space_prefix are family quirks the caller adds, not read_hf_vocab's.
void expected_specials(const ordered_json& meta, std::vector<std::pair<std::string, int64_t>>& ids,
                       std::vector<std::pair<std::string, bool>>& adds) {
  static const std::regex id_key(R"(^tokenizer\.ggml\.(\w+)_token_id$)");
  static const std::regex add_key(R"(^tokenizer\.ggml\.add_(\w+)_token$)");
  for (const auto& [k, v] : meta.items()) {
    std::smatch m;
    if (std::regex_match(k, m, id_key) && m[1] != "eot") ids.emplace_back(m[1], v.get<int64_t>());
    if (std::regex_match(k, m, add_key)) adds.emplace_back(m[1], v.get<bool>());
  }
}

class VocabSpFolder : public ::testing::TestWithParam<std::string> {};

TEST_P(VocabSpFolder, MatchesReferenceConversion) {
  const std::string folder = test::shared("hf/" + GetParam());
  if (!fs::exists(folder + "/REF.json")) GTEST_SKIP() << "no " << folder;
  const ordered_json ref = ordered_json::parse(test::read_file(folder + "/REF.json"));
  const ordered_json& meta = ref["metadata"];
  const json config = load_json(folder + "/config.json");

  const HfVocab v = read_hf_vocab(folder, config, config_vocab_size(config), "");
  EXPECT_EQ(v.model, meta["tokenizer.ggml.model"].get<std::string>());
  EXPECT_EQ(v.pre, meta["tokenizer.ggml.pre"].get<std::string>());
  EXPECT_TRUE(v.merges.empty());

  const ArrayRef tok_ref = parse_array_ref(folder, meta["tokenizer.ggml.tokens"].get<std::string>());
  const ArrayRef score_ref = parse_array_ref(folder, meta["tokenizer.ggml.scores"].get<std::string>());
  const ArrayRef type_ref = parse_array_ref(folder, meta["tokenizer.ggml.token_type"].get<std::string>());
  ASSERT_TRUE(tok_ref.except.empty());
  const auto gguf = GgufFile::open(tok_ref.gguf);
  const std::vector<std::string> tokens = gguf->get_string_array("tokenizer.ggml.tokens");
  std::vector<float> scores = GgufFile::open(score_ref.gguf)->get_f32_array("tokenizer.ggml.scores");
  std::vector<int64_t> types = GgufFile::open(type_ref.gguf)->get_int_array("tokenizer.ggml.token_type");
  for (const auto& [i, x] : score_ref.except) scores.at(i) = static_cast<float>(x);
  for (const auto& [i, x] : type_ref.except) types.at(i) = static_cast<int64_t>(x);

  EXPECT_EQ(v.tokens, tokens);
  ASSERT_EQ(v.scores.size(), scores.size());
  for (size_t i = 0; i < scores.size(); ++i) EXPECT_EQ(v.scores[i], scores[i]) << "score of token " << i;
  ASSERT_EQ(v.types.size(), types.size());
  for (size_t i = 0; i < types.size(); ++i) EXPECT_EQ(v.types[i], types[i]) << "type of token " << i;

  std::vector<std::pair<std::string, int64_t>> ids;
  std::vector<std::pair<std::string, bool>> adds;
  expected_specials(meta, ids, adds);
  EXPECT_EQ(v.special_ids, ids);
  EXPECT_EQ(v.add_special, adds);

  if (meta.contains("tokenizer.chat_template")) {
    const json tc = load_json(folder + "/tokenizer_config.json");
    ASSERT_TRUE(v.chat_template.has_value());
    EXPECT_EQ(*v.chat_template, tc["chat_template"].get<std::string>());
  } else {
    EXPECT_FALSE(v.chat_template.has_value());
  }
}

INSTANTIATE_TEST_SUITE_P(VocabShared, VocabSpFolder,
                         ::testing::Values("gemma", "gemma2", "gemma3", "granite", "granitemoe", "llama", "llama-tied",
                                           "mixtral", "openelm", "phi3"),
                         test::ParamName());

// ---- the real Llama 3 tokenizer ----

TEST(VocabLlama3Bpe, MatchesLlamaCppVocab) {
  const std::string folder = test::shared("hf/llama3-bpe");
  const std::string ref_path = test::shared("vocab/ggml-vocab-llama-bpe.gguf");
  if (!fs::exists(folder + "/tokenizer.json") || !fs::exists(ref_path)) GTEST_SKIP() << "no " << folder;
  const json config = load_json(folder + "/config.json");

  const auto t0 = std::chrono::steady_clock::now();
  const HfVocab v = read_hf_vocab(folder, config, config_vocab_size(config), "");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
#ifdef NDEBUG
  EXPECT_LT(seconds, 2.0) << "reading the 128k-token tokenizer.json";
#endif
  std::printf("llama3-bpe vocabulary read in %.3f s\n", seconds);

  const auto ref = GgufFile::open(ref_path);
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "llama-bpe");
  EXPECT_EQ(v.tokens, ref->get_string_array("tokenizer.ggml.tokens"));
  const std::vector<int64_t> types = ref->get_int_array("tokenizer.ggml.token_type");
  ASSERT_EQ(v.types.size(), types.size());
  for (size_t i = 0; i < types.size(); ++i) ASSERT_EQ(v.types[i], types[i]) << "type of token " << i;
  EXPECT_EQ(v.merges, ref->get_string_array("tokenizer.ggml.merges"));
  EXPECT_TRUE(v.scores.empty());

  const std::vector<std::pair<std::string, int64_t>> ids = {{"bos", 128000}, {"eos", 128001}};
  const std::vector<std::pair<std::string, bool>> adds = {{"bos", true}, {"sep", false}};
  EXPECT_EQ(v.special_ids, ids);
  EXPECT_EQ(v.add_special, adds);
  const json tc = load_json(folder + "/tokenizer_config.json");
  ASSERT_TRUE(v.chat_template.has_value());
  EXPECT_EQ(*v.chat_template, tc["chat_template"].get<std::string>());
}

TEST(VocabLlama3Bpe, AlteredRegexIsUnknownUnlessOverridden) {
  const std::string folder = test::shared("hf/llama3-bpe");
  if (!fs::exists(folder + "/tokenizer.json")) GTEST_SKIP() << "no " << folder;
  TempDir d;
  for (const char* f : {"config.json", "tokenizer_config.json", "special_tokens_map.json"})
    fs::copy_file(folder + "/" + f, d.path / f);
  std::string tj = test::read_file(folder + "/tokenizer.json");
  const std::string from = R"(\\p{N}{1,3})", to = R"(\\p{N}{1,4})";
  const size_t at = tj.find(from);
  ASSERT_NE(at, std::string::npos);
  tj.replace(at, from.size(), to);
  d.write("tokenizer.json", tj);
  const json config = load_json(folder + "/config.json");

  const std::string msg = error_of([&] { read_hf_vocab(d.str(), config, 128256, ""); });
  EXPECT_NE(msg.find((d.path / "tokenizer.json").string() + ": unknown pre-tokenizer"), std::string::npos) << msg;
  EXPECT_NE(msg.find("{1,4}"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--pre NAME"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);

  const HfVocab v = read_hf_vocab(d.str(), config, 128256, "llama-bpe");
  EXPECT_EQ(v.pre, "llama-bpe");
  EXPECT_EQ(v.tokens.size(), 128256u);
}

// ---- small synthetic tokenizer.json folders ----

json tiny_tokenizer_json(const json& pre_tokenizer) {
  return json{
      {"added_tokens",
       json::array({json{{"id", 5}, {"content", "<|endoftext|>"}, {"special", true}},
                    json{{"id", 6}, {"content", "<|im_start|>"}, {"special", false}},
                    json{{"id", 7}, {"content", "\xE2\x96\x81hi"}, {"special", false}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"post_processor", nullptr},
      {"model",
       json{{"type", "BPE"},
            {"vocab", json{{"a", 0}, {"b", 1}, {"ab", 2}, {"\xC4\xA0", 3}, {"\xC4\xA0" "a", 4}}},
            {"merges", json::array({"a b", "\xC4\xA0 a"})}}}};
}

json byte_level(bool use_regex) {
  return json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}
json split(const std::string& regex) {
  return json{{"type", "Split"}, {"pattern", json{{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}
json sequence(std::vector<json> steps) { return json{{"type", "Sequence"}, {"pretokenizers", steps}}; }

const char* const kQwen2Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

HfVocab tiny_vocab(const json& pre_tokenizer, const std::string& pre_override = "", int64_t vocab_size = 0) {
  TempDir d;
  d.write("tokenizer.json", tiny_tokenizer_json(pre_tokenizer));
  return read_hf_vocab(d.str(), json::object(), vocab_size, pre_override);
}

TEST(VocabBpe, TokensTypesAndMerges) {
  const HfVocab v = tiny_vocab(byte_level(true), "", 10);
  EXPECT_EQ(v.model, "gpt2");
  EXPECT_EQ(v.pre, "gpt-2");
  const std::vector<std::string> tokens = {"a", "b", "ab", "\xC4\xA0", "\xC4\xA0" "a",
                                           "<|endoftext|>", "<|im_start|>", " hi", "[PAD8]", "[PAD9]"};
  EXPECT_EQ(v.tokens, tokens);
  // <|im_start|> is not marked special but looks it: control; ▁hi is user-defined, ▁ → space.
  const std::vector<int32_t> types = {1, 1, 1, 1, 1, 3, 3, 4, 5, 5};
  EXPECT_EQ(v.types, types);
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "\xC4\xA0 a"}));
  EXPECT_TRUE(v.scores.empty());
  // Without a vocab_size, the vocabulary is as large as its distinct texts.
  EXPECT_EQ(tiny_vocab(byte_level(true)).tokens.size(), 8u);
}

TEST(VocabBpe, DetectsKnownPreTokenizers) {
  EXPECT_EQ(tiny_vocab(sequence({split(kQwen2Regex), byte_level(false)})).pre, "qwen2");
  EXPECT_EQ(tiny_vocab(sequence({json{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)})).pre,
            "starcoder");
  EXPECT_EQ(tiny_vocab(sequence({split("[\r\n]"), split(R"(\s?\p{L}+)"), split(R"(\s?\p{P}+)"),
                                 split("[\xE4\xB8\x80-\xE9\xBE\xA5\xE0\xA0\x80-\xE4\xB8\x80\xEA\xB0\x80-\xED\x9F\xBF]+"),
                                 json{{"type", "Digits"}, {"individual_digits", true}}, byte_level(false)}))
                .pre,
            "deepseek-coder");
}

TEST(VocabBpe, UnknownPreTokenizerNeedsOverride) {
  TempDir d;
  d.write("tokenizer.json", tiny_tokenizer_json(sequence({split(R"(\w+|\s+)"), byte_level(false)})));
  const std::string msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
  EXPECT_NE(msg.find((d.path / "tokenizer.json").string() + ": unknown pre-tokenizer \"\\w+|\\s+\""), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("--pre NAME"), std::string::npos) << msg;
  EXPECT_EQ(read_hf_vocab(d.str(), json::object(), 0, "gpt-2").pre, "gpt-2");
  const std::string bad = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, "no-such-pre"); });
  EXPECT_NE(bad.find("no-such-pre"), std::string::npos) << bad;

  // Other step kinds are named too.
  d.write("tokenizer.json", tiny_tokenizer_json(json{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}}));
  EXPECT_NE(error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); }).find("<Metaspace>"), std::string::npos);
}

TEST(VocabBpe, MergesInPairForm) {
  TempDir d;
  json tj = tiny_tokenizer_json(byte_level(true));
  tj["model"]["merges"] = json::array({json::array({"a", "b"}), json::array({"a b", "c"})});
  d.write("tokenizer.json", tj);
  const HfVocab v = read_hf_vocab(d.str(), json::object(), 0, "");
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "a\xC4\xA0" "b c"}));
}

TEST(VocabBpe, MergesOfWrongFormAreErrors) {
  for (const json& merges : {json::array({1, 2}), json::array({json::array({"a", "b", "c"})}),
                             json::array({"a b", json::array({"a", "b"})}), json::array({json::array({"a", 1})}),
                             json("a b")}) {
    SCOPED_TRACE(merges.dump());
    TempDir d;
    json tj = tiny_tokenizer_json(byte_level(true));
    tj["model"]["merges"] = merges;
    d.write("tokenizer.json", tj);
    const std::string msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
    EXPECT_EQ(msg.rfind((d.path / "tokenizer.json").string() + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find("merges"), std::string::npos) << msg;
  }
}

TEST(VocabBpe, WrongTypesAreSlmErrorsNamingTheFile) {
  const auto expect_error = [](const std::function<void(json&)>& edit, const std::string& want) {
    TempDir d;
    json tj = tiny_tokenizer_json(byte_level(true));
    edit(tj);
    d.write("tokenizer.json", tj);
    const std::string msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
    EXPECT_EQ(msg.rfind((d.path / "tokenizer.json").string() + ": ", 0), 0u) << msg;
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
  };
  expect_error([](json& j) { j["model"]["vocab"] = json::array(); }, "model.vocab");
  expect_error([](json& j) { j["model"]["vocab"]["a"] = "zero"; }, "integer");
  expect_error([](json& j) { j["model"]["vocab"]["a"] = -3; }, "token id");
  expect_error([](json& j) { j["model"]["type"] = "WordPiece"; }, "WordPiece");
  expect_error([](json& j) { j["model"] = 7; }, "model");
  expect_error([](json& j) { j["added_tokens"][0]["content"] = 12; }, "content");
  expect_error([](json& j) { j["added_tokens"][0]["id"] = 1e3; }, "added_tokens id");
  expect_error([](json& j) { j["post_processor"] = json{{"type", "TemplateProcessing"}, {"single", "x"}}; }, "single");
  expect_error([](json& j) { j["pre_tokenizer"] = json{{"type", "Sequence"}, {"pretokenizers", 3}}; }, "pretokenizers");
  expect_error([](json& j) { j = json::array(); }, "object");

  TempDir d;
  d.write("tokenizer.json", std::string("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0"));  // truncated
  const std::string msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
  EXPECT_NE(msg.find((d.path / "tokenizer.json").string() + ": invalid JSON"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST(VocabBpe, VocabSizeBelowAnIdIsAnError) {
  TempDir d;
  d.write("tokenizer.json", tiny_tokenizer_json(byte_level(true)));
  const std::string msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 6, ""); });
  EXPECT_NE(msg.find("token id 7"), std::string::npos) << msg;
}

TEST(VocabBpe, NoTokenizerFiles) {
  TempDir d;
  const std::string msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
  EXPECT_EQ(msg, d.str() + ": no tokenizer.model or tokenizer.json");
}

// ---- special tokens ----

TEST(VocabSpecial, NegativeIdIsAnError) {
  TempDir d;
  d.write("tokenizer.json", tiny_tokenizer_json(byte_level(true)));
  const std::string msg = error_of([&] { read_hf_vocab(d.str(), json{{"bos_token_id", -1}}, 0, ""); });
  EXPECT_NE(msg.find((d.path / "config.json").string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("bos"), std::string::npos) << msg;
}

TEST(VocabSpecial, TokenizerConfigThenConfigFirstWins) {
  TempDir d;
  d.write("tokenizer.json", tiny_tokenizer_json(byte_level(true)));
  d.write("tokenizer_config.json", json{{"eos_token", json{{"content", "<|endoftext|>"}}},
                                        {"pad_token", "<|im_start|>"},
                                        {"add_eos_token", true},
                                        {"add_bos_token", false},
                                        {"chat_template", "{{ messages }}"}});
  const json config = {{"bos_token_id", 2}, {"eos_token_id", 1}, {"pad_token_id", nullptr}, {"unk_token_id", 99},
                       {"cls_token_id", 4}};
  const HfVocab v = read_hf_vocab(d.str(), config, 0, "");
  // The tokenizer_config entries come first (eos, pad), then config.json's in type order;
  // gpt2 vocabularies get no range check; cls has no GGUF key.
  const std::vector<std::pair<std::string, int64_t>> ids = {{"eos", 5}, {"pad", 6}, {"bos", 2}, {"unk", 99}};
  EXPECT_EQ(v.special_ids, ids);
  const std::vector<std::pair<std::string, bool>> adds = {{"bos", false}, {"eos", true}};
  EXPECT_EQ(v.add_special, adds);
  EXPECT_EQ(v.chat_template, std::optional<std::string>("{{ messages }}"));
}

TEST(VocabSpecial, BertStyleTemplateProcessing) {
  // single: [CLS] A [SEP]; pair: [CLS] A [SEP] B [SEP]. The reference takes CLS as BOS and
  // SEP as EOS, sets add_bos and add_eos, and (a trailing special token being present)
  // leaves add_sep false.
  TempDir d;
  json tj = tiny_tokenizer_json(byte_level(true));
  tj["added_tokens"] = json::array({json{{"id", 5}, {"content", "[CLS]"}, {"special", true}},
                                    json{{"id", 6}, {"content", "[SEP]"}, {"special", true}}});
  const auto st = [](const char* id) { return json{{"SpecialToken", json{{"id", id}, {"type_id", 0}}}}; };
  const auto seq = [](const char* id) { return json{{"Sequence", json{{"id", id}, {"type_id", 0}}}}; };
  tj["post_processor"] = json{{"type", "TemplateProcessing"},
                              {"single", json::array({st("[CLS]"), seq("A"), st("[SEP]")})},
                              {"pair", json::array({st("[CLS]"), seq("A"), st("[SEP]"), seq("B"), st("[SEP]")})}};
  d.write("tokenizer.json", tj);
  d.write("tokenizer_config.json", json{{"cls_token", "[CLS]"}, {"sep_token", "[SEP]"}});
  const HfVocab v = read_hf_vocab(d.str(), json::object(), 0, "");
  const std::vector<std::pair<std::string, int64_t>> ids = {{"bos", 5}, {"eos", 6}, {"sep", 6}};
  EXPECT_EQ(v.special_ids, ids);
  const std::vector<std::pair<std::string, bool>> adds = {{"bos", true}, {"eos", true}, {"sep", false}};
  EXPECT_EQ(v.add_special, adds);
}

TEST(VocabSpecial, RobertaProcessing) {
  TempDir d;
  json tj = tiny_tokenizer_json(byte_level(true));
  tj["post_processor"] = json{{"type", "RobertaProcessing"}, {"sep", json::array({"</s>", 2})}, {"cls", json::array({"<s>", 0})}};
  d.write("tokenizer.json", tj);
  d.write("tokenizer_config.json", json{{"add_sep_token", false}});
  const HfVocab v = read_hf_vocab(d.str(), json::object(), 0, "");
  // A later add_sep_token setting changes the value but keeps the place.
  const std::vector<std::pair<std::string, bool>> adds = {{"bos", true}, {"eos", true}, {"sep", false}};
  EXPECT_EQ(v.add_special, adds);
}

TEST(VocabSpecial, ChatTemplateListAndJinjaFile) {
  TempDir d;
  d.write("tokenizer.json", tiny_tokenizer_json(byte_level(true)));
  d.write("tokenizer_config.json",
          json{{"chat_template", json::array({json{{"name", "tool use"}, {"template", "T"}},
                                              json{{"name", "default"}, {"template", "D"}}})}});
  HfVocab v = read_hf_vocab(d.str(), json::object(), 0, "");
  EXPECT_EQ(v.chat_template, std::optional<std::string>("D"));
  EXPECT_EQ(v.named_chat_templates, (std::vector<std::pair<std::string, std::string>>{{"tool_use", "T"}}));

  d.write("tokenizer_config.json", json{{"bos_token", "a"}});
  d.write("chat_template.jinja", std::string("{{ jinja }}"));
  v = read_hf_vocab(d.str(), json::object(), 0, "");
  EXPECT_EQ(v.chat_template, std::optional<std::string>("{{ jinja }}"));

  d.write("tokenizer_config.json", json{{"chat_template", 5}});  // wrong type: ignored
  EXPECT_FALSE(read_hf_vocab(d.str(), json::object(), 0, "").chat_template.has_value());
}

// ---- synthetic SentencePiece folders ----

std::string small_model() {
  return model_proto({{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}, {"\xE2\x96\x81" "a", -1, 0}, {"<u>", -2, 4},
                      {"<0x41>", 0, 6}, {"<unused0>", 0, 5}});
}

TEST(VocabSpSynthetic, PaddingDroppingAndAddedTokens) {
  TempDir d;
  d.write("tokenizer.model", small_model());
  d.write("added_tokens.json", json{{"<extra>", 8}, {"<far>", 50}});
  d.write("tokenizer_config.json",
          json{{"added_tokens_decoder",
                json{{"3", json{{"content", "\xE2\x96\x81" "b"}, {"special", false}}},
                     {"4", json{{"content", "<|im_end|>"}, {"special", false}}},
                     {"1", json{{"content", "<s>"}, {"special", true}}},
                     {"77", json{{"content", "<beyond>"}, {"special", true}}}}},
               {"add_bos_token", true}});
  const json config = {{"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 40}};
  const HfVocab v = read_hf_vocab(d.str(), config, 10, "");
  EXPECT_EQ(v.model, "llama");
  EXPECT_EQ(v.pre, "default");
  const std::vector<std::string> tokens = {"<unk>", "<s>", "</s>", " b", "<|im_end|>", "<0x41>", "<unused0>",
                                           "[PAD7]", "<extra>", "[PAD9]"};
  EXPECT_EQ(v.tokens, tokens);
  const std::vector<float> scores = {0, -1000, 0, -1000, -1000, 0, 0, -10000, -1000, -10000};
  EXPECT_EQ(v.scores, scores);
  // USER_DEFINED pieces of the model read as NORMAL; added tokens are user-defined unless
  // special or special-looking.
  const std::vector<int32_t> types = {2, 3, 3, 4, 3, 6, 5, 5, 4, 5};
  EXPECT_EQ(v.types, types);
  // pad 40 is past the vocabulary: skipped.
  EXPECT_EQ(v.special_ids, (std::vector<std::pair<std::string, int64_t>>{{"bos", 1}, {"eos", 2}}));
  EXPECT_EQ(v.add_special, (std::vector<std::pair<std::string, bool>>{{"bos", true}}));

  // A vocab_size below the piece count drops the rest; none given: the piece count.
  EXPECT_EQ(read_hf_vocab(d.str(), json::object(), 3, "").tokens.size(), 3u);
  const HfVocab natural = read_hf_vocab(d.str(), json::object(), 0, "");
  EXPECT_EQ(natural.tokens.size(), 7u);
  EXPECT_EQ(natural.types[4], 3);  // <|im_end|> looks special
}

TEST(VocabSpSynthetic, Phi3Rules) {
  // Phi-3's converter: no special-looking promotion, no ▁ normalization, and tokenizer.json's
  // added_tokens are applied too.
  TempDir d;
  d.write("tokenizer.model", small_model());
  d.write("tokenizer_config.json",
          json{{"added_tokens_decoder", json{{"3", json{{"content", "\xE2\x96\x81" "b"}, {"special", false}}},
                                             {"4", json{{"content", "<|im_end|>"}, {"special", false}}}}}});
  d.write("tokenizer.json", json{{"added_tokens", json::array({json{{"id", 6}, {"content", "<|end|>"}, {"special", true}}})}});
  const json config = {{"architectures", json::array({"Phi3ForCausalLM"})}};
  const HfVocab v = read_hf_vocab(d.str(), config, 8, "");
  EXPECT_EQ(v.tokens[3], "\xE2\x96\x81" "b");
  EXPECT_EQ(v.types[3], 4);
  EXPECT_EQ(v.tokens[4], "<|im_end|>");
  EXPECT_EQ(v.types[4], 4);
  EXPECT_EQ(v.tokens[6], "<|end|>");
  EXPECT_EQ(v.types[6], 3);
  EXPECT_EQ(v.scores[6], -1000);
  EXPECT_EQ(v.tokens[7], "[PAD7]");
}

TEST(VocabSpSynthetic, BadInputsNameTheFile) {
  TempDir d;
  d.write("tokenizer.model", std::string("\x0a\x05<unk", 6));  // truncated
  std::string msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
  EXPECT_EQ(msg.rfind((d.path / "tokenizer.model").string() + ": ", 0), 0u) << msg;

  d.write("tokenizer.model", small_model());
  d.write("tokenizer_config.json", json{{"added_tokens_decoder", json{{"3", json{{"content", 3}}}}}});
  msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
  EXPECT_EQ(msg.rfind((d.path / "tokenizer_config.json").string() + ": ", 0), 0u) << msg;

  d.write("tokenizer_config.json", json{{"added_tokens_decoder", json{{"x1", json{{"content", "a"}}}}}});
  msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
  EXPECT_EQ(msg.rfind((d.path / "tokenizer_config.json").string() + ": ", 0), 0u) << msg;

  fs::remove(d.path / "tokenizer_config.json");
  d.write("added_tokens.json", json{{"<x>", "8"}});
  msg = error_of([&] { read_hf_vocab(d.str(), json::object(), 0, ""); });
  EXPECT_EQ(msg.rfind((d.path / "added_tokens.json").string() + ": ", 0), 0u) << msg;

  fs::remove(d.path / "added_tokens.json");
  msg = error_of([&] { read_hf_vocab(d.str(), json{{"eos_token_id", -2}}, 0, ""); });
  EXPECT_NE(msg.find("invalid value for special token type eos: -2"), std::string::npos) << msg;
  msg = error_of([&] { read_hf_vocab(d.str(), json::object(), int64_t{1} << 40, ""); });
  EXPECT_NE(msg.find("vocabulary size"), std::string::npos) << msg;
}

}  // namespace
}  // namespace slm
