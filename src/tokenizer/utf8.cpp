#include "tokenizer/utf8.h"

namespace slm::utf8 {

namespace {
bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }
}  // namespace

size_t char_len(std::string_view s, size_t pos) {
  const unsigned char c = static_cast<unsigned char>(s[pos]);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlongs
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // at most U+10FFFF
  } else {
    return 1;
  }
  if (pos + n > s.size()) return 1;
  const unsigned char c1 = static_cast<unsigned char>(s[pos + 1]);
  if (c1 < lo || c1 > hi) return 1;
  for (size_t i = 2; i < n; ++i)
    if (!is_cont(static_cast<unsigned char>(s[pos + i]))) return 1;
  return n;
}

size_t incomplete_tail(std::string_view s) {
  // A character is at most 4 bytes, so only the last 3 bytes can be an unfinished start.
  const size_t n = s.size();
  for (size_t k = 1; k <= 3 && k <= n; ++k) {
    const unsigned char c = static_cast<unsigned char>(s[n - k]);
    if (is_cont(c)) continue;  // keep looking left for the lead byte
    size_t need = 0;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) need = 3;
    else if (c >= 0xF0 && c <= 0xF4) need = 4;
    if (need <= k) return 0;  // ASCII, invalid lead, or already complete
    // Check that what is there is a valid prefix: pad with a continuation byte that is
    // allowed after this lead, and see whether the full sequence would be well formed.
    if (k >= 2) {
      const unsigned char c1 = static_cast<unsigned char>(s[n - k + 1]);
      unsigned char lo = 0x80, hi = 0xBF;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
      if (c1 < lo || c1 > hi) return 0;
    }
    return k;
  }
  return 0;
}

void append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {
ByteChars make_byte_chars() {
  ByteChars t;
  t.byte_of.fill(-1);
  uint32_t next = 0x100;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
    append(t.of_byte[b], cp);
    t.byte_of[cp] = static_cast<int16_t>(b);
  }
  return t;
}
}  // namespace

const ByteChars& byte_chars() {
  static const ByteChars table = make_byte_chars();
  return table;
}

std::string decode_byte_chars(std::string_view text) {
  const ByteChars& t = byte_chars();
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    const size_t n = char_len(text, i);
    uint32_t cp = 0x110000;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (n == 1 && c < 0x80) cp = c;
    else if (n == 2) cp = ((c & 0x1Fu) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3Fu);
    if (cp < t.byte_of.size() && t.byte_of[cp] >= 0) out += static_cast<char>(t.byte_of[cp]);
    else out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace slm::utf8
