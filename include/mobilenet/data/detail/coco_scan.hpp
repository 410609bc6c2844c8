#pragma once
/// \file data/detail/coco_scan.hpp
/// Splits a COCO annotation file into windows that simdjson parses one at a time.
///
/// Why: On-Demand parsing of a whole 450 MB train2017 file first writes one 4-byte structural
/// index per JSON token — about as many bytes as the file itself, since polygons are mostly
/// short numbers — and then reads it back. Faulting in and streaming that index costs more
/// than parsing. Parsing the `annotations` array in ~1 MB windows keeps the index in cache.
///
/// This scanner only finds the top-level members and cut points between annotations; every
/// byte of the windows is still parsed and validated by simdjson. Anything it does not
/// understand makes it give up, and the caller parses the whole document instead.

#include <cstddef>
#include <cstring>
#include <string_view>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mobilenet {
namespace detail {

/// One top-level member: its key and the bytes of its value; for the array chosen for
/// windowing, the offsets of the commas between elements where windows may be cut.
struct CocoTopMember {
  std::string_view key;
  const char* begin = nullptr;
  const char* end = nullptr;
  std::vector<const char*> cuts;
};

class CocoScanner {
 public:
  CocoScanner(const char* data, size_t size, size_t window) : p_(data), end_(data + size), window_(window) {}

  /// The members of the top-level object, or false when the layout is not a plain object.
  /// Cut points are collected for the member named `windowed` when its value is an array.
  bool scan(std::string_view windowed, std::vector<CocoTopMember>& members) {
    skip_ws();
    if (p_ == end_ || *p_ != '{') return false;
    ++p_;
    skip_ws();
    if (p_ < end_ && *p_ == '}') return finish(++p_);
    for (;;) {
      skip_ws();
      if (p_ == end_ || *p_ != '"') return false;
      const char* key_begin = ++p_;
      while (p_ < end_ && *p_ != '"') {
        if (*p_ == '\\') return false;  // escaped keys: leave them to simdjson
        ++p_;
      }
      if (p_ == end_) return false;
      CocoTopMember m;
      m.key = std::string_view(key_begin, static_cast<size_t>(p_ - key_begin));
      ++p_;
      skip_ws();
      if (p_ == end_ || *p_ != ':') return false;
      ++p_;
      skip_ws();
      if (p_ == end_) return false;
      m.begin = p_;
      const bool cut = m.key == windowed && *p_ == '[';
      if (!skip_value(cut ? &m.cuts : nullptr)) return false;
      m.end = p_;
      members.push_back(std::move(m));
      skip_ws();
      if (p_ == end_) return false;
      if (*p_ == ',') {
        ++p_;
        continue;
      }
      if (*p_ != '}') return false;
      return finish(++p_);
    }
  }

 private:
  bool finish(const char* p) {
    p_ = p;
    skip_ws();
    return p_ == end_;
  }

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  // p_ at an opening quote; leaves p_ after the closing one.
  bool skip_string() {
    const char* q = p_ + 1;
    for (;;) {
      q = static_cast<const char*>(std::memchr(q, '"', static_cast<size_t>(end_ - q)));
      if (!q) return false;
      const char* b = q;  // an even run of backslashes before it: the string ends here
      while (b > p_ + 1 && b[-1] == '\\') --b;
      if ((q - b) % 2 == 0) break;
      ++q;
    }
    p_ = q + 1;
    return true;
  }

  // Next '"', '[', ']', '{' or '}' at or after p_, or end_.
  const char* next_bracket_or_quote(const char* p) const {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i open = _mm_set1_epi8('{');   // with 0x20 or-ed in, '[' becomes '{'
    const __m128i close = _mm_set1_epi8('}');  // and ']' becomes '}'
    const __m128i bit = _mm_set1_epi8(0x20);
    while (end_ - p >= 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      const __m128i folded = _mm_or_si128(v, bit);
      const __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                       _mm_or_si128(_mm_cmpeq_epi8(folded, open),
                                                    _mm_cmpeq_epi8(folded, close)));
      const int mask = _mm_movemask_epi8(hit);
      if (mask) return p + __builtin_ctz(static_cast<unsigned>(mask));
      p += 16;
    }
#endif
    for (; p < end_; ++p)
      if (*p == '"' || *p == '[' || *p == ']' || *p == '{' || *p == '}') return p;
    return end_;
  }

  // p_ at a value; leaves p_ after it. With `cuts` (p_ at '['), records the comma after an
  // element whenever the current window has grown past window_ bytes.
  bool skip_value(std::vector<const char*>* cuts) {
    if (*p_ == '"') return skip_string();
    if (*p_ != '[' && *p_ != '{') {  // a scalar: up to the next delimiter
      while (p_ < end_ && *p_ != ',' && *p_ != '}' && *p_ != ']' && *p_ != ' ' && *p_ != '\n' &&
             *p_ != '\r' && *p_ != '\t')
        ++p_;
      return true;
    }
    const char* window_start = p_;
    size_t depth = 0;
    for (;;) {
      p_ = next_bracket_or_quote(p_);
      if (p_ == end_) return false;
      const char c = *p_;
      if (c == '"') {
        if (!skip_string()) return false;
        continue;
      }
      ++p_;
      if (c == '[' || c == '{') {
        ++depth;
        continue;
      }
      if (--depth == 0) return true;
      if (cuts && depth == 1 && static_cast<size_t>(p_ - window_start) >= window_) {
        skip_ws();
        if (p_ < end_ && *p_ == ',') {
          cuts->push_back(p_);
          window_start = p_;
        }
      }
    }
  }

  const char* p_;
  const char* end_;
  size_t window_;
};

}  // namespace detail
}  // namespace mobilenet
