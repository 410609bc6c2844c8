#pragma once
/// \file models/inference.hpp
/// Renamed: prepare_for_inference is in models/prepare.hpp, BatchNorm folding in
/// models/fuse.hpp. Kept for the includes of changes in flight; include prepare.hpp.

#include <mobilenet/models/prepare.hpp>
