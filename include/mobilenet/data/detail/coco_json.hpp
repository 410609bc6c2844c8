#pragma once
/// \file data/detail/coco_json.hpp
/// Small helpers over simdjson's On-Demand API shared by the COCO and label-map parsers:
/// typed field reads whose errors name the file, the entry and the field.

#include <mobilenet/data/coco_error.hpp>

#include <simdjson.h>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define MOBILENET_COCO_MMAP 1
#endif

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace mobilenet {
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
  void iterate(od::parser& parser, simdjson::padded_string_view json, od::document& doc) {
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

/// A whole JSON file followed by simdjson's zero padding. On POSIX the file is mapped rather
/// than read: reading train2017's 450 MB copies it and faults in as many fresh pages, which
/// cost more than parsing it; a populated mapping shares the page cache.
class JsonFile {
 public:
  explicit JsonFile(const std::string& path) {
#ifdef MOBILENET_COCO_MMAP
    if (map(path)) return;
#endif
    if (auto e = simdjson::padded_string::load(path).get(copy_))
      throw CocoError(path, std::string("cannot read the file (") + simdjson::error_message(e) + ")");
    data_ = copy_.data();
    size_ = copy_.size();
    capacity_ = size_ + simdjson::SIMDJSON_PADDING;
  }
  JsonFile(const JsonFile&) = delete;
  JsonFile& operator=(const JsonFile&) = delete;
  ~JsonFile() {
#ifdef MOBILENET_COCO_MMAP
    if (mapped_) ::munmap(mapped_, mapped_size_);
#endif
  }

  simdjson::padded_string_view view() const {
    return simdjson::padded_string_view(data_, size_, capacity_);
  }

 private:
#ifdef MOBILENET_COCO_MMAP
  // Maps the file over an anonymous, zero-filled region one padding longer, so the bytes
  // after the end are readable zeros. Returns false (and the caller reads) for anything
  // that is not a regular file or cannot be mapped.
  bool map(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    struct stat st {};
    bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (ok) {
      const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
      const size_t size = static_cast<size_t>(st.st_size);
      const size_t total = (size + simdjson::SIMDJSON_PADDING + page - 1) / page * page;
      void* base = ::mmap(nullptr, total, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      ok = base != MAP_FAILED;
      if (ok && size > 0) {
        int flags = MAP_PRIVATE | MAP_FIXED;
#ifdef MAP_POPULATE
        flags |= MAP_POPULATE;
#endif
        ok = ::mmap(base, size, PROT_READ, flags, fd, 0) != MAP_FAILED;
        if (!ok) ::munmap(base, total);
      }
      if (ok) {
        mapped_ = base;
        mapped_size_ = total;
        data_ = static_cast<const char*>(base);
        size_ = size;
        capacity_ = total;
      }
    }
    ::close(fd);
    return ok;
  }
  void* mapped_ = nullptr;
  size_t mapped_size_ = 0;
#endif
  simdjson::padded_string copy_;
  const char* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

}  // namespace detail
}  // namespace mobilenet
