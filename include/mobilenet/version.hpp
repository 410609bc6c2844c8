#pragma once
/// \file version.hpp
/// The library's version, kept equal to `project(mobilenet VERSION ...)` in CMakeLists.txt:
/// configuring fails when the two disagree, and the consumer tests compare it with the
/// version `find_package(mobilenet)` reports.

#define MOBILENET_VERSION_MAJOR 0
#define MOBILENET_VERSION_MINOR 1
#define MOBILENET_VERSION_PATCH 0
/// One number that compares in order: 10203 is 1.2.3.
#define MOBILENET_VERSION \
  (MOBILENET_VERSION_MAJOR * 10000 + MOBILENET_VERSION_MINOR * 100 + MOBILENET_VERSION_PATCH)

namespace mobilenet {

/// The version as "MAJOR.MINOR.PATCH", e.g. "0.1.0".
inline const char* version_string() {
#define MOBILENET_STR2(x) #x
#define MOBILENET_STR(x) MOBILENET_STR2(x)
  return MOBILENET_STR(MOBILENET_VERSION_MAJOR) "." MOBILENET_STR(MOBILENET_VERSION_MINOR) "."
      MOBILENET_STR(MOBILENET_VERSION_PATCH);
#undef MOBILENET_STR
#undef MOBILENET_STR2
}

}  // namespace mobilenet
