#pragma once
/// \file data.hpp
/// The data half of the library: COCO-format annotations, label maps, image decoding,
/// transforms and the threaded loader. Link mobilenet::data (simdjson, TurboJPEG, libpng);
/// mobilenet.hpp stays usable with mobilenet::mobilenet alone.

#include <mobilenet/coco.hpp>
#include <mobilenet/image.hpp>
#include <mobilenet/label_map.hpp>
#include <mobilenet/loader.hpp>
#include <mobilenet/transforms.hpp>
