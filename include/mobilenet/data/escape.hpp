#pragma once
/// \file data/escape.hpp
/// Printable file names and messages: a file name may hold any byte but '/' and NUL, and
/// control characters echoed raw can rewrite a terminal or forge log lines. Dependency-free,
/// so any message can use it.

#include <cstdio>
#include <string>
#include <string_view>

namespace mobilenet {

/// `text` with control characters escaped: \n \t \r and friends as C escapes, other bytes
/// below 0x20 and DEL as \xNN, UTF-8 encoded C1 controls (U+0080..U+009F) as \u00NN.
/// Everything else, including valid UTF-8, is kept. With `escape_backslash` (the default) the
/// backslash itself becomes \\ so the result is unambiguous; without it, text that is already
/// escaped (an ImageError's message) passes through unchanged.
/// Example: `escape_path("a\nb.jpg")` is the 9 characters `a\nb.jpg`.
inline std::string escape_path(std::string_view text, bool escape_backslash = true) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    char buf[8];
    switch (c) {
      case '\\': out += escape_backslash ? "\\\\" : "\\"; continue;
      case '\a': out += "\\a"; continue;
      case '\b': out += "\\b"; continue;
      case '\t': out += "\\t"; continue;
      case '\n': out += "\\n"; continue;
      case '\v': out += "\\v"; continue;
      case '\f': out += "\\f"; continue;
      case '\r': out += "\\r"; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof(buf), "\\x%02X", c);
      out += buf;
    } else if (c == 0xC2 && i + 1 < text.size() &&
               static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(text[i + 1]) <= 0x9F) {
      std::snprintf(buf, sizeof(buf), "\\u%04X", static_cast<unsigned char>(text[i + 1]));
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace mobilenet
