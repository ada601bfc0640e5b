// Tokenizer: text <-> token ids, built from the tokenizer.ggml.* metadata of a GGUF file.
// Two models: "llama" (SentencePiece-style BPE over scores) and "gpt2" (byte-level BPE over
// ranked merges, with a pre-tokenizer chosen by tokenizer.ggml.pre).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace slm {

class GgufFile;

// All methods are const and keep no mutable state: one Tokenizer serves any number of threads.
// Ids outside [0, n_vocab) throw slm::Error.
class Tokenizer {
 public:
  // Throws slm::Error naming the key when the metadata is missing or inconsistent.
  static std::unique_ptr<Tokenizer> from_gguf(const GgufFile& file);
  virtual ~Tokenizer() = default;

  // add_special: add BOS/EOS as the metadata's add_bos/add_eos flags say.
  // parse_special: recognise CONTROL token text (e.g. "<|eot_id|>") inside the text; plain
  // user text must be encoded with parse_special = false. USER_DEFINED tokens always match.
  // Any byte string is accepted (invalid UTF-8 goes through byte fallback / byte tokens).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;

  // ids -> text. render_special: print CONTROL tokens' text. Drops SentencePiece's leading
  // space of the first text-producing piece where the model adds a space prefix. Returns the
  // exact bytes (no clean-up of spaces before punctuation, invalid UTF-8 kept as is), so
  // decode(encode(text)) == text wherever the vocabulary can represent every byte.
  virtual std::string decode(const std::vector<int32_t>& ids, bool render_special = false) const = 0;
  // The raw bytes one token stands for (byte-fallback <0xNN> gives that byte; '▁' -> ' ';
  // gpt2 byte characters mapped back). CONTROL tokens give their text only if render_special.
  virtual std::string token_to_piece(int32_t id, bool render_special = false) const = 0;

  virtual int32_t n_vocab() const = 0;
  virtual const std::string& token_text(int32_t id) const = 0;  // as stored in the vocab
  virtual int32_t bos() const = 0;  // -1 when none
  virtual int32_t eos() const = 0;  // -1 when none
  virtual bool add_bos() const = 0;
  // End of generation: eos, eot, eom and the usual end-of-turn tokens (<|eot_id|>, <|end|>,
  // <end_of_turn>, <|im_end|>, <|endoftext|>, </s> ...).
  virtual bool is_eog(int32_t id) const = 0;
  // Looks a token up by its exact text; -1 when absent.
  virtual int32_t find_token(std::string_view text) const = 0;

  virtual int32_t eot() const = 0;  // end-of-turn token, -1 when none
  virtual int32_t unk() const = 0;  // -1 when none
  virtual bool add_eos() const = 0;
  // SentencePiece's space prefix: encode writes one before the text, decode drops the
  // leading space of the first piece.
  virtual bool add_space_prefix() const = 0;
  // CONTROL token: markers such as BOS or <|eot_id|>, never produced from plain text and
  // printed only when asked.
  virtual bool is_control(int32_t id) const = 0;
  // "llama" (SentencePiece-style) or "gpt2" (byte-level BPE).
  virtual const char* model_name() const = 0;
};

// Turns a stream of token ids into text, emitting bytes as soon as they form complete UTF-8
// characters and never half a character. A continuation (tokens generated after a prompt,
// the default) keeps every byte, so prompt + output is the whole text, as llama.cpp streams
// it; starts_text: the ids begin a text of their own, and SentencePiece's prefix space of
// the first piece is dropped as decode() drops it.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tok, bool render_special = false, bool starts_text = false)
      : tok_(tok), render_special_(render_special), first_(starts_text) {}
  // Returns the text that became complete with this token (possibly empty).
  std::string push(int32_t id);
  // Whatever is still pending (an incomplete UTF-8 tail is returned as is). Bytes that can
  // never become valid UTF-8 are not held back by push(); callers that need valid UTF-8 (JSON)
  // must replace them.
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool render_special_;
  bool first_ = true;
  std::string pending_;
};

}  // namespace slm
