#pragma once
/// \file coco_json.hpp
/// Small helpers over simdjson's On-Demand API shared by the COCO and label-map parsers:
/// typed field reads whose errors name the file, the entry and the field.

#include <simdjson.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mobilenet {

/// Bad annotation or mapping input: malformed JSON, a missing or mistyped field, an unknown or
/// duplicate id. `what()` starts with the file name; `file()` returns it alone.
/// Example: `catch (const mobilenet::CocoError& e) { std::cerr << e.what(); }`.
class CocoError : public std::runtime_error {
 public:
  CocoError(const std::string& file, const std::string& message)
      : std::runtime_error(file + ": " + message), file_(file) {}
  /// The annotation (or mapping) file the error is about.
  const std::string& file() const noexcept { return file_; }

 private:
  std::string file_;
};

namespace detail {

namespace od = simdjson::ondemand;

/// Reads one JSON document and turns every simdjson error into a CocoError about `file`.
class JsonReader {
 public:
  explicit JsonReader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const std::string& message) const { throw CocoError(file_, message); }

  /// Fails with "<where>: <simdjson's message>" on error, plus the byte offset once a
  /// document is attached.
  void check(simdjson::error_code error, const std::string& where) const {
    if (!error) return;
    std::string message = where + ": " + simdjson::error_message(error);
    // Structural errors can surface anywhere on demand; say plainly the JSON itself is bad.
    if (error == simdjson::TAPE_ERROR || error == simdjson::INCOMPLETE_ARRAY_OR_OBJECT ||
        error == simdjson::UNCLOSED_STRING || error == simdjson::UTF8_ERROR ||
        error == simdjson::EMPTY || error == simdjson::DEPTH_ERROR ||
        error == simdjson::UNESCAPED_CHARS || error == simdjson::T_ATOM_ERROR ||
        error == simdjson::F_ATOM_ERROR || error == simdjson::N_ATOM_ERROR) {
      message = "malformed JSON at " + message;
    }
    if (doc_) {
      const char* at = nullptr;
      if (!doc_->current_location().get(at) && begin_) {
        message += " (near byte " + std::to_string(at - begin_) + ")";
      }
    }
    fail(message);
  }

  /// Starts `doc` over `json` (both must outlive the reader's use).
  void iterate(od::parser& parser, const simdjson::padded_string& json, od::document& doc) {
    begin_ = json.data();
    check(parser.iterate(json).get(doc), "document");
    doc_ = &doc;
  }

  /// Fails unless the whole document was consumed (trailing content is malformed JSON).
  void expect_end() const {
    const char* at = nullptr;
    auto e = doc_->current_location().get(at);
    if (e == simdjson::OUT_OF_BOUNDS) return;
    if (e) check(e, "end of document");
    fail("malformed JSON: content after the top-level value (near byte " +
         std::to_string(at - begin_) + ")");
  }

  int64_t integer(od::value& v, const std::string& where) const {
    int64_t out = 0;
    check(v.get_int64().get(out), where + " must be an integer");
    return out;
  }

  std::string_view string(od::value& v, const std::string& where) const {
    std::string_view out;
    check(v.get_string().get(out), where + " must be a string");
    return out;
  }

  const std::string& file() const { return file_; }

 private:
  std::string file_;
  const char* begin_ = nullptr;
  od::document* doc_ = nullptr;
};

}  // namespace detail
}  // namespace mobilenet
