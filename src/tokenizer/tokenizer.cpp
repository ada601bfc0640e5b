// slm::Tokenizer over a Vocab: special-token partition, then SentencePiece-style or
// byte-level BPE per raw fragment; decoding maps pieces back to bytes.
#include <memory>

#include "gguf/gguf.h"
#include "slm/error.h"
#include "slm/tokenizer.h"
#include "tokenizer/encode.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/special.h"
#include "tokenizer/utf8.h"
#include "tokenizer/vocab.h"

namespace slm {

namespace {

const char kSpmSpace[] = "\xE2\x96\x81";  // U+2581, SentencePiece's visible space

class VocabTokenizer final : public Tokenizer {
 public:
  explicit VocabTokenizer(Vocab v) : v_(std::move(v)), specials_(v_) {
    if (v_.model == VocabModel::Bpe) pre_ = std::make_unique<PreTokenizer>(pre_tokenizer_spec(v_.pre));
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const override {
    std::vector<int32_t> out;
    out.reserve(text.size() / 3 + 4);
    if (add_special && v_.add_bos) out.push_back(v_.bos);
    std::vector<Fragment> frags;
    specials_.partition(text, parse_special, frags);
    MergeScratch scratch;
    if (v_.model == VocabModel::Spm) {
      encode_spm(text, frags, out, scratch);
    } else {
      std::vector<Piece> pieces;
      for (const Fragment& f : frags) {
        if (f.token >= 0) {
          out.push_back(f.token);
          continue;
        }
        pieces.clear();
        const std::string_view raw = text.substr(f.begin, f.end - f.begin);
        pre_->split(raw, pieces);
        for (const Piece& p : pieces)
          bpe_tokenize_piece(v_, raw.substr(p.first, p.second - p.first), pre_->spec().ignore_merges, out,
                             scratch);
      }
    }
    if (add_special && v_.add_eos) out.push_back(v_.eos);
    return out;
  }

  std::string decode(const std::vector<int32_t>& ids, bool render_special) const override {
    std::string out;
    bool strip = v_.add_space_prefix;  // drop the space the encoder put before the text
    for (int32_t id : ids) {
      std::string piece = token_to_piece(id, render_special);
      if (strip && !piece.empty()) {
        if (piece[0] == ' ') piece.erase(0, 1);
        strip = false;
      }
      out += piece;
    }
    return out;
  }

  std::string token_to_piece(int32_t id, bool render_special) const override {
    check(id);
    const std::string& t = v_.text[id];
    switch (v_.type[id]) {
      case TokenType::Control:
      case TokenType::Unknown:
        return render_special ? t : std::string();
      case TokenType::UserDefined:
        return t;
      case TokenType::Unused:
        return std::string();
      case TokenType::Byte:
        if (v_.model == VocabModel::Spm) return std::string(1, static_cast<char>(byte_value(t)));
        [[fallthrough]];
      default:
        break;
    }
    if (v_.model == VocabModel::Bpe) return utf8::decode_byte_chars(t);
    std::string s;
    s.reserve(t.size());
    for (size_t i = 0; i < t.size();) {
      if (t.compare(i, 3, kSpmSpace) == 0) {
        s += ' ';
        i += 3;
      } else {
        s += t[i++];
      }
    }
    return s;
  }

  int32_t n_vocab() const override { return v_.size(); }
  const std::string& token_text(int32_t id) const override {
    check(id);
    return v_.text[id];
  }
  int32_t bos() const override { return v_.bos; }
  int32_t eos() const override { return v_.eos; }
  int32_t eot() const override { return v_.eot; }
  int32_t unk() const override { return v_.unk; }
  bool add_bos() const override { return v_.add_bos; }
  bool add_eos() const override { return v_.add_eos; }
  bool add_space_prefix() const override { return v_.add_space_prefix; }
  bool is_eog(int32_t id) const override { return v_.eog.count(id) > 0; }
  bool is_control(int32_t id) const override {
    return id >= 0 && id < v_.size() && v_.type[id] == TokenType::Control;
  }
  int32_t find_token(std::string_view text) const override { return v_.find(text); }
  const char* model_name() const override { return v_.model == VocabModel::Spm ? "llama" : "gpt2"; }

 private:
  void check(int32_t id) const {
    if (id < 0 || id >= v_.size())
      throw Error("token id " + std::to_string(id) + " out of range (vocabulary has " +
                  std::to_string(v_.size()) + " tokens)");
  }

  // "<0xNN>" -> NN; a malformed byte token gives '?' rather than failing.
  static int byte_value(const std::string& t) {
    if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>') return '?';
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    const int h = hex(t[3]), l = hex(t[4]);
    return h < 0 || l < 0 ? '?' : h * 16 + l;
  }

  void encode_spm(std::string_view text, const std::vector<Fragment>& frags, std::vector<int32_t>& out,
                  MergeScratch& scratch) const {
    bool after_special = true;  // the start of the text counts as "after a special token"
    std::string buf;
    for (const Fragment& f : frags) {
      if (f.token >= 0) {
        out.push_back(f.token);
        after_special = true;
        continue;
      }
      buf.clear();
      if (v_.add_space_prefix && after_special) buf += kSpmSpace;
      for (size_t i = f.begin; i < f.end; ++i) {
        if (text[i] == ' ') buf += kSpmSpace;
        else buf += text[i];
      }
      spm_tokenize(v_, buf, out, scratch);
      after_special = false;
    }
  }

  Vocab v_;
  SpecialMatcher specials_;
  std::unique_ptr<PreTokenizer> pre_;
};

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::from_gguf(const GgufFile& file) {
  return std::make_unique<VocabTokenizer>(load_vocab(file));
}

}  // namespace slm
