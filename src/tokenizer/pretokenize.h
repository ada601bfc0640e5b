// Pre-tokenizers of byte-level BPE vocabularies: the text is cut into pieces by a list of
// PCRE2 regexes (UTF, Unicode properties, JIT), chosen by tokenizer.ggml.pre. The regexes
// apply in sequence: each one splits every piece the previous ones produced, and the spans
// it does not match stay pieces of their own (llama.cpp's semantics).
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace slm {

struct PreTokenizerSpec {
  std::string name;                  // canonical name of the regex set
  std::vector<std::string> regexes;  // applied in order
  bool ignore_merges = false;        // a piece that is a whole token is emitted as is
};

// The spec for a tokenizer.ggml.pre value; unknown or empty values get "default".
PreTokenizerSpec pre_tokenizer_spec(const std::string& pre);

// A piece of the input: [begin, end) byte offsets.
using Piece = std::pair<size_t, size_t>;

class PreTokenizer {
 public:
  // Throws slm::Error when a regex does not compile.
  explicit PreTokenizer(const PreTokenizerSpec& spec);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Splits text into pieces (appended to out, in order, none empty, covering all of text).
  // Thread-safe: the compiled regexes are shared, match data is per call.
  void split(std::string_view text, std::vector<Piece>& out) const;
  const PreTokenizerSpec& spec() const { return spec_; }

 private:
  struct Regex;
  PreTokenizerSpec spec_;
  std::vector<std::unique_ptr<Regex>> regexes_;
};

}  // namespace slm
