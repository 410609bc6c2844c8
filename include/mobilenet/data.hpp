#pragma once
/// \file data.hpp
/// The data half of the library: COCO-format annotations, label maps, image decoding,
/// transforms and the threaded loader. Link mobilenet::data (simdjson, TurboJPEG, libpng).
/// The demo data generator is demo.hpp (component `demo`, not included here).

#include <mobilenet/data/coco.hpp>
#include <mobilenet/data/coco_error.hpp>
#include <mobilenet/data/escape.hpp>
#include <mobilenet/data/fingerprint.hpp>
#include <mobilenet/data/image.hpp>
#include <mobilenet/data/label_map.hpp>
#include <mobilenet/data/loader.hpp>
#include <mobilenet/data/sample.hpp>
#include <mobilenet/data/transforms.hpp>
