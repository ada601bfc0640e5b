// StreamDecoder: token ids in, text out as soon as it is whole UTF-8.
#include "slm/tokenizer.h"
#include "tokenizer/utf8.h"

namespace slm {

std::string StreamDecoder::push(int32_t id) {
  std::string piece = tok_.token_to_piece(id, render_special_);
  if (first_ && !piece.empty()) {
    // A text of its own: as Tokenizer::decode, the first piece loses the prefix space.
    if (tok_.add_space_prefix() && piece[0] == ' ') piece.erase(0, 1);
    first_ = false;
  }
  pending_ += piece;
  // Hold back only a tail that may still become a character; bytes that can never be
  // valid UTF-8 are passed through as they are (decode() does the same).
  const size_t keep = utf8::incomplete_tail(pending_);
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  return out;
}

std::string StreamDecoder::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

}  // namespace slm
