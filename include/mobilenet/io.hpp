#pragma once
/// \file io.hpp
/// Process and file helpers every area may use: the allocator setting for tensor work,
/// whole-file writes a crash cannot leave half done, and
/// reads that refuse what is not a regular file. POSIX only.

#include <mobilenet/io/allocator.hpp>
#include <mobilenet/io/atomic_file.hpp>
