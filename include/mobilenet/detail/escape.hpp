#pragma once
/// \file detail/escape.hpp
/// File names made safe to print: a name may hold any byte but '/' and NUL, and control
/// characters echoed raw can rewrite a terminal or forge log lines.

#include <string>
#include <string_view>

namespace mobilenet::detail {

/// `text` with every control character (0x00-0x1f, 0x7f) written as \xNN; other bytes,
/// UTF-8 included, unchanged. Example: "a\nb.jpg" -> "a\x0ab.jpg".
inline std::string escape_control_chars(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace mobilenet::detail
