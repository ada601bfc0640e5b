// Small hand-made vocabularies written with GgufWriter, where the right tokenization can be
// worked out by hand: SentencePiece merge order (score, then leftmost), byte-level BPE merge
// order (rank, then leftmost), the longest-first special-token partition, and the metadata
// errors that name their key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>

#include "gguf/gguf.h"
#include "slm/error.h"
#include "slm/tokenizer.h"
#include "tokenizer/utf8.h"

using namespace slm;

namespace {

const std::string kSp = "\xE2\x96\x81";  // U+2581

struct Tok {
  std::string text;
  float score = 0;
  int type = 1;  // NORMAL
};

struct ToyVocab {
  std::string model = "llama";
  std::vector<Tok> tokens;
  std::vector<std::string> merges;
  std::vector<std::pair<std::string, GgufValue>> extra;  // more keys, or replacements

  int32_t add(const std::string& text, float score = 0, int type = 1) {
    tokens.push_back({text, score, type});
    return static_cast<int32_t>(tokens.size() - 1);
  }
  int32_t id(const std::string& text) const {
    for (size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i].text == text) return static_cast<int32_t>(i);
    return -1;
  }

  // Writes the file and opens it; `drop` leaves one key out.
  std::unique_ptr<GgufFile> file(const std::string& drop = "") const {
    GgufWriter w;
    auto set = [&](const std::string& k, GgufValue v) {
      if (k != drop) w.set(k, std::move(v));
    };
    std::vector<GgufValue> texts, scores, types, ms;
    for (const Tok& t : tokens) {
      texts.push_back(GgufValue::make_string(t.text));
      scores.push_back(GgufValue::make_f32(t.score));
      types.push_back(GgufValue::make_i32(t.type));
    }
    for (const std::string& m : merges) ms.push_back(GgufValue::make_string(m));
    set("general.architecture", GgufValue::make_string("llama"));
    set("tokenizer.ggml.model", GgufValue::make_string(model));
    set("tokenizer.ggml.tokens", GgufValue::make_array(GgufType::STRING, texts));
    set("tokenizer.ggml.scores", GgufValue::make_array(GgufType::FLOAT32, scores));
    set("tokenizer.ggml.token_type", GgufValue::make_array(GgufType::INT32, types));
    if (model == "gpt2") {
      set("tokenizer.ggml.merges", GgufValue::make_array(GgufType::STRING, ms));
      set("tokenizer.ggml.pre", GgufValue::make_string("gpt-2"));
    }
    set("tokenizer.ggml.add_space_prefix", GgufValue::make_bool(false));
    for (const auto& [k, v] : extra) set(k, v);
    const std::string path = "/tmp/slm-toy-vocab-" + std::to_string(getpid()) + ".gguf";
    w.write(path);
    auto f = GgufFile::open(path);
    std::remove(path.c_str());  // the mapping stays valid
    return f;
  }
};

// <unk> <s> </s>, then every byte as <0xNN>.
ToyVocab spm_base() {
  ToyVocab v;
  v.add("<unk>", 0, 2);
  v.add("<s>", 0, 3);
  v.add("</s>", 0, 3);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    v.add(name, 0, 6);
  }
  return v;
}

std::vector<int32_t> ids(const ToyVocab& v, std::initializer_list<const char*> texts) {
  std::vector<int32_t> out;
  for (const char* t : texts) out.push_back(v.id(t));
  return out;
}

TEST(ToySpm, HighestScoreMergesFirst) {
  ToyVocab v = spm_base();
  for (const char* c : {"a", "b", "c"}) v.add(c, -10);
  v.add("ab", -1);
  v.add("bc", -0.5);  // beats "ab"
  v.add("abc", -3);
  auto f = v.file();
  auto tok = Tokenizer::from_gguf(*f);
  // a b c: "bc" (-0.5) before "ab" (-1); then a+bc = "abc".
  EXPECT_EQ(tok->encode("abc", false, false), ids(v, {"abc"}));
  // a b c b: bc first, then abc; "bcb" is no token.
  EXPECT_EQ(tok->encode("abcb", false, false), ids(v, {"abc", "b"}));
  // b a b: only "ab" can form.
  EXPECT_EQ(tok->encode("bab", false, false), ids(v, {"b", "ab"}));
}

TEST(ToySpm, EqualScoresMergeLeftmostFirst) {
  ToyVocab v = spm_base();
  v.add("a", -10);
  v.add("aa", -1);
  auto f = v.file();
  auto tok = Tokenizer::from_gguf(*f);
  EXPECT_EQ(tok->encode("aaa", false, false), ids(v, {"aa", "a"}));
  EXPECT_EQ(tok->encode("aaaaa", false, false), ids(v, {"aa", "aa", "a"}));
}

TEST(ToySpm, ByteFallbackAndNoMergeIntoControlTokens) {
  ToyVocab v = spm_base();
  for (const char* c : {"<", "s", ">"}) v.add(c, -10);
  v.add("<s", -1);  // "<s" + ">" would spell the CONTROL token <s>
  auto f = v.file();
  auto tok = Tokenizer::from_gguf(*f);
  EXPECT_EQ(tok->encode("<s>", false, false), ids(v, {"<s", ">"}));
  EXPECT_EQ(tok->encode("<s>", false, true), std::vector<int32_t>{1});
  EXPECT_EQ(tok->encode("d", false, false), ids(v, {"<0x64>"}));
  EXPECT_EQ(tok->encode("\xC3\xA9", false, false), ids(v, {"<0xC3>", "<0xA9>"}));
}

TEST(ToySpm, SpacesBecomeU2581AndThePrefixFollowsTheFlag) {
  ToyVocab v = spm_base();
  v.add(kSp, -10);
  v.add("a", -10);
  v.add(kSp + "a", -1);
  {
    auto f = v.file();
    auto tok = Tokenizer::from_gguf(*f);
    EXPECT_EQ(tok->encode("a a", false, false), ids(v, {"a", (kSp + "a").c_str()}));
    EXPECT_FALSE(tok->add_space_prefix());
  }
  v.extra.push_back({"tokenizer.ggml.add_space_prefix", GgufValue::make_bool(true)});
  auto f = v.file();
  auto tok = Tokenizer::from_gguf(*f);
  EXPECT_EQ(tok->encode("a a", false, false), ids(v, {(kSp + "a").c_str(), (kSp + "a").c_str()}));
  EXPECT_EQ(tok->decode(tok->encode("a a", false, false)), "a a");
}

TEST(ToySpecials, LongestTokenIsSplitOutFirst) {
  ToyVocab v = spm_base();
  v.add("XY", 0, 4);   // USER_DEFINED: matched in any mode
  v.add("YZW", 0, 4);  // longer: taken first, although XY starts earlier
  v.add("<<", 0, 4);
  v.add("<<<", 0, 4);
  auto f = v.file();
  auto tok = Tokenizer::from_gguf(*f);
  EXPECT_EQ(tok->encode("XYZW", false, false), ids(v, {"<0x58>", "YZW"}));
  EXPECT_EQ(tok->encode("XYXY", false, false), ids(v, {"XY", "XY"}));
  EXPECT_EQ(tok->encode("<<<<<", false, false), ids(v, {"<<<", "<<"}));
  EXPECT_EQ(tok->encode("<<<<<<", false, false), ids(v, {"<<<", "<<<"}));
}

ToyVocab bpe_base() {
  ToyVocab v;
  v.model = "gpt2";
  for (int b = 0; b < 256; ++b) v.add(utf8::byte_chars().of_byte[b]);
  v.add("ab");
  v.add("bc");
  v.add("<|end|>", 0, 3);
  return v;
}

TEST(ToyBpe, LowestRankMergesFirst) {
  ToyVocab v = bpe_base();
  v.merges = {"b c", "a b"};
  {
    auto f = v.file();
    auto tok = Tokenizer::from_gguf(*f);
    EXPECT_EQ(tok->encode("abc", false, false), ids(v, {"a", "bc"}));
    EXPECT_EQ(tok->encode("ab", false, false), ids(v, {"ab"}));
  }
  v.merges = {"a b", "b c"};
  auto f = v.file();
  auto tok = Tokenizer::from_gguf(*f);
  EXPECT_EQ(tok->encode("abc", false, false), ids(v, {"ab", "c"}));
  // Pre-tokenizer: " abc" is one piece (" ?\p{L}+"), so Ġ stays alone (no "Ġ a" merge).
  EXPECT_EQ(tok->encode(" abc", false, false), ids(v, {"\xC4\xA0", "ab", "c"}));
  EXPECT_EQ(tok->decode(tok->encode(" abc\n\xFF", false, false)), " abc\n\xFF");
  // Control text is split out only when asked; BPE has no default BOS here (id 11 is a byte).
  EXPECT_EQ(tok->encode("<|end|>", false, true), ids(v, {"<|end|>"}));
  EXPECT_EQ(tok->encode("<|end|>", false, false).size(), 7u);
  EXPECT_TRUE(tok->is_eog(v.id("<|end|>")));
}

std::string load_error(const ToyVocab& v, const std::string& drop = "") {
  try {
    auto f = v.file(drop);
    Tokenizer::from_gguf(*f);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ToyErrors, BadMetadataNamesTheKey) {
  ToyVocab v = spm_base();
  v.add("a");
  EXPECT_EQ(load_error(v), "");
  EXPECT_NE(load_error(v, "tokenizer.ggml.tokens").find("tokenizer.ggml.tokens"), std::string::npos);
  EXPECT_NE(load_error(v, "tokenizer.ggml.model").find("tokenizer.ggml.model"), std::string::npos);

  ToyVocab bad = v;
  bad.extra.push_back({"tokenizer.ggml.scores", GgufValue::make_array(GgufType::FLOAT32, {GgufValue::make_f32(0)})});
  EXPECT_NE(load_error(bad).find("tokenizer.ggml.scores"), std::string::npos) << load_error(bad);

  bad = v;
  bad.extra.push_back({"tokenizer.ggml.token_type", GgufValue::make_array(GgufType::INT32, {GgufValue::make_i32(1)})});
  EXPECT_NE(load_error(bad).find("tokenizer.ggml.token_type"), std::string::npos);

  bad = v;
  bad.extra.push_back({"tokenizer.ggml.bos_token_id", GgufValue::make_u32(100000)});
  EXPECT_NE(load_error(bad).find("tokenizer.ggml.bos_token_id"), std::string::npos);

  bad = v;
  bad.model = "t5";
  EXPECT_NE(load_error(bad).find("unsupported tokenizer model 't5'"), std::string::npos);

  bad = v;
  bad.extra.push_back({"tokenizer.ggml.tokens", GgufValue::make_string("not an array")});
  EXPECT_NE(load_error(bad).find("tokenizer.ggml.tokens"), std::string::npos);

  ToyVocab b = bpe_base();
  EXPECT_NE(load_error(b, "tokenizer.ggml.merges").find("tokenizer.ggml.merges"), std::string::npos);
}

}  // namespace
