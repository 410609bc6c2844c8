#pragma once
/// \file train/detail/checksummed_archive.hpp
/// LibTorch archives on disk with a CRC32 of the whole file, verified before deserializing.
///
/// The archive is a zip (LibTorch's format). The checksum goes in the zip's own comment field,
/// so a checkpoint stays a valid zip that `unzip -z` or Python's zipfile can read:
///
///   [zip entries][central directory][end record, comment length = 35]
///   "mobilenet checkpoint crc32=1a2b3c4d"
///
/// The CRC (the zip format's own: reflected polynomial 0xEDB88320, what zlib's crc32 and
/// Python's zlib.crc32 compute) covers every byte before the comment. It is computed here, so
/// the core needs no zlib. A 32-bit CRC detects every burst error up to 32 bits; it guards
/// against corruption (bad disks, truncated copies), not against a crafted file.

#include <mobilenet/io/atomic_file.hpp>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

namespace mobilenet::detail {

/// The comment that holds the checksum: this prefix and 8 lowercase hex digits.
constexpr std::string_view kChecksumPrefix = "mobilenet checkpoint crc32=";
constexpr size_t kChecksumRecord = 35;           // kChecksumPrefix.size() + 8
constexpr size_t kZipEndRecord = 22;             // end of central directory, no comment
constexpr char kZipEndSignature[] = "PK\x05\x06";

// Slicing-by-1 table CRC32: about 1 GB/s, a few ms for a checkpoint, next to its write.
inline uint32_t crc32_of(std::string_view bytes) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (const char ch : bytes) crc = table[(crc ^ uint8_t(ch)) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

/// Serializes `out` to memory (nothing touches the disk, so nothing can half-fail there).
inline std::string archive_bytes(torch::serialize::OutputArchive& out) {
  std::string bytes;
  out.save_to([&](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  return bytes;
}

/// Appends the checksum comment to a zip that LibTorch just wrote (which ends with an end
/// record without comment).
inline void seal_archive(std::string& bytes) {
  TORCH_CHECK(bytes.size() >= kZipEndRecord &&
                  bytes.compare(bytes.size() - kZipEndRecord, 4, kZipEndSignature) == 0 &&
                  bytes[bytes.size() - 2] == 0 && bytes[bytes.size() - 1] == 0,
              "seal_archive: LibTorch wrote an archive without a plain zip end record");
  bytes[bytes.size() - 2] = char(kChecksumRecord & 0xff);
  bytes[bytes.size() - 1] = char(kChecksumRecord >> 8);
  char hex[9];
  std::snprintf(hex, sizeof(hex), "%08x", unsigned(crc32_of(bytes)));
  bytes.append(kChecksumPrefix).append(hex, 8);
}

/// Throws c10::Error naming `name` unless `bytes` end with a checksum comment that matches.
inline void verify_archive(std::string_view bytes, const std::string& name) {
  const size_t n = bytes.size();
  const bool has_record =
      n >= kZipEndRecord + kChecksumRecord &&
      bytes.substr(n - kChecksumRecord, kChecksumPrefix.size()) == kChecksumPrefix &&
      bytes.substr(n - kChecksumRecord - kZipEndRecord, 4) == kZipEndSignature &&
      uint8_t(bytes[n - kChecksumRecord - 2]) == kChecksumRecord &&
      bytes[n - kChecksumRecord - 1] == 0;
  TORCH_CHECK(has_record, "checkpoint '", name,
              "' is truncated or not a mobilenet checkpoint (no checksum record at its end)");
  uint32_t stored = 0;
  for (char c : bytes.substr(n - 8)) {
    const int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    TORCH_CHECK(digit >= 0, "checkpoint '", name, "' is corrupt: malformed checksum record");
    stored = stored << 4 | uint32_t(digit);
  }
  const uint32_t actual = crc32_of(bytes.substr(0, n - kChecksumRecord));
  if (stored != actual) {
    char detail[64];
    std::snprintf(detail, sizeof(detail), "stored %08x, computed %08x", unsigned(stored),
                  unsigned(actual));
    TORCH_CHECK(false, "checkpoint '", name, "' is corrupt: checksum mismatch (", detail, ")");
  }
}

/// Serializes `out`, seals it and writes it to `path` atomically (see write_file_atomically).
inline void save_archive(torch::serialize::OutputArchive& out, const std::string& path) {
  std::string bytes = archive_bytes(out);
  seal_archive(bytes);
  write_file_atomically(path, bytes);
}

/// Verifies `bytes` (the content of checkpoint `name`) and deserializes them into `in`.
inline void load_archive(torch::serialize::InputArchive& in, std::string_view bytes,
                         const std::string& name) {
  verify_archive(bytes, name);
  try {
    in.load_from(bytes.data(), bytes.size());
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot read checkpoint '", name, "': ", e.what_without_backtrace());
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "cannot read checkpoint '", name, "': ", e.what());
  }
}

/// Reads `path` whole, verifies it and deserializes it into `in`.
inline void load_archive(torch::serialize::InputArchive& in, const std::string& path) {
  const std::string bytes = read_file_checked(path);
  load_archive(in, bytes, path);
}

}  // namespace mobilenet::detail
