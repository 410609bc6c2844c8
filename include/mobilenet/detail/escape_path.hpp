#pragma once
/// \file escape_path.hpp
/// Printable file names for error messages (public as mobilenet::escape_path, from
/// data/image.hpp; kept dependency-free so any message can use it).

#include <cstdio>
#include <string>

namespace mobilenet {
namespace detail {

/// `path` with control characters escaped, so a file name cannot rewrite the terminal or
/// forge log lines: \n \t \r and friends as C escapes, other bytes below 0x20 and DEL as
/// \xNN, UTF-8 encoded C1 controls (U+0080..U+009F) as \u00NN, and the backslash itself as
/// \\ so that the result is unambiguous. Everything else, including valid UTF-8, is kept.
/// Example: `escape_path("a\nb.jpg")` is the 9 characters `a\nb.jpg`.
inline std::string escape_path(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (size_t i = 0; i < path.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(path[i]);
    char buf[8];
    switch (c) {
      case '\\': out += "\\\\"; continue;
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
    } else if (c == 0xC2 && i + 1 < path.size() &&
               static_cast<unsigned char>(path[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(path[i + 1]) <= 0x9F) {
      std::snprintf(buf, sizeof(buf), "\\u%04X", static_cast<unsigned char>(path[i + 1]));
      out += buf;
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace detail
}  // namespace mobilenet
