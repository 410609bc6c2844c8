#pragma once
/// \file data/escape.hpp
/// The one string escaper: printable file names and messages (a file name may hold any byte
/// but '/' and NUL, and control characters echoed raw can rewrite a terminal or forge log
/// lines), and JSON string contents. Dependency-free, so any message can use it.

#include <cstdio>
#include <string>
#include <string_view>

namespace mobilenet {

/// How escape_text writes what it escapes.
enum class EscapeStyle {
  /// For terminals and logs: \n \t \r and friends as C escapes, other bytes below 0x20 and
  /// DEL as \xNN, UTF-8 encoded C1 controls (U+0080..U+009F) as \u00NN, the backslash as \\.
  terminal,
  /// As `terminal`, but backslashes kept: for text that is already escaped (an ImageError's
  /// message), which then passes through unchanged.
  terminal_keep_backslash,
  /// For the inside of a JSON string: every control character (C0, DEL, C1) as \u00NN, and
  /// the double quote and the backslash escaped.
  json,
};

/// `text` with its control characters escaped in `style`; everything else, including valid
/// UTF-8, is kept. Example: `escape_text("a\nb", EscapeStyle::json)` is `a\u000Ab`.
inline std::string escape_text(std::string_view text, EscapeStyle style) {
  const bool json = style == EscapeStyle::json;
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    char buf[8];
    if (c == '\\') {
      out += style == EscapeStyle::terminal_keep_backslash ? "\\" : "\\\\";
      continue;
    }
    if (json && c == '"') {
      out += "\\\"";
      continue;
    }
    if (!json) {
      switch (c) {
        case '\a': out += "\\a"; continue;
        case '\b': out += "\\b"; continue;
        case '\t': out += "\\t"; continue;
        case '\n': out += "\\n"; continue;
        case '\v': out += "\\v"; continue;
        case '\f': out += "\\f"; continue;
        case '\r': out += "\\r"; continue;
        default: break;
      }
    }
    if (c < 0x20 || c == 0x7F) {
      std::snprintf(buf, sizeof(buf), json ? "\\u%04X" : "\\x%02X", c);
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

/// A file name made safe to print (EscapeStyle::terminal), unambiguous because backslashes
/// are escaped too. Example: `escape_path("a\nb.jpg")` is the 9 characters `a\nb.jpg`.
inline std::string escape_path(std::string_view path) {
  return escape_text(path, EscapeStyle::terminal);
}

}  // namespace mobilenet
