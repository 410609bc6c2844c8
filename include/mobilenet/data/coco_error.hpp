#pragma once
/// \file data/coco_error.hpp
/// The error the COCO and label-map readers throw.

#include <stdexcept>
#include <string>

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

}  // namespace mobilenet
