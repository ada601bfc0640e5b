// UTF-8 helpers: Python strings index by code point, our strings are UTF-8 bytes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace slm::jinja {

// Decodes UTF-8; an invalid byte decodes as itself (U+0080..U+00FF) so nothing is lost.
std::vector<uint32_t> utf8_decode(const std::string& s);
void utf8_append(std::string& out, uint32_t cp);
std::string utf8_encode(const std::vector<uint32_t>& cps, size_t begin, size_t end);
size_t utf8_length(const std::string& s);
bool is_ascii(const std::string& s);

// Python's notion of whitespace, letters, digits and case for the code points templates meet
// (ASCII plus Latin-1, Latin Extended-A, Greek and Cyrillic case mapping).
bool cp_is_space(uint32_t c);
bool cp_is_alpha(uint32_t c);
bool cp_is_digit(uint32_t c);
bool cp_is_alnum(uint32_t c);  // \w minus '_'
bool cp_is_upper(uint32_t c);
bool cp_is_lower(uint32_t c);
uint32_t cp_upper(uint32_t c);
uint32_t cp_lower(uint32_t c);
// str.isprintable() per code point (what repr() leaves unescaped).
bool cp_is_printable(uint32_t c);

}  // namespace slm::jinja
