#pragma once
/// \file io.hpp
/// File helpers every area may use: whole-file writes a crash cannot leave half done, and
/// reads that refuse what is not a regular file. POSIX only.

#include <mobilenet/io/atomic_file.hpp>
