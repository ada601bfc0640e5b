// UTF-8 helpers for the tokenizers, and GPT-2's byte <-> character table.
// Invalid bytes are never an error here: each one counts as a character of length 1, so
// every input has a defined split and round-trips through byte fallback.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace slm::utf8 {

// Length of the character starting at s[pos]: 1..4 for a well-formed sequence (no overlongs,
// no surrogates, at most U+10FFFF), 1 for a byte that does not start one.
size_t char_len(std::string_view s, size_t pos);

// How many bytes at the end of s are the start of a character that is not complete yet
// (a valid prefix of a multi-byte sequence). 0 when s ends on a character boundary or with
// bytes that can never become valid.
size_t incomplete_tail(std::string_view s);

// Appends code point cp as UTF-8.
void append(std::string& out, uint32_t cp);

// GPT-2 byte-level BPE writes every byte as a printable character: bytes 0x21-0x7E,
// 0xA1-0xAC and 0xAE-0xFF stand for themselves, the other 68 bytes map in increasing order
// to U+0100, U+0101, ...
struct ByteChars {
  std::array<std::string, 256> of_byte;  // UTF-8 text of each byte's character
  std::array<int16_t, 0x144> byte_of;    // code point -> byte, -1 for none
};
const ByteChars& byte_chars();

// Maps byte-level BPE text back to raw bytes (characters outside the table are kept as is).
std::string decode_byte_chars(std::string_view text);

}  // namespace slm::utf8
