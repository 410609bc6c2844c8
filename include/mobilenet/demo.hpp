#pragma once
/// \file demo.hpp
/// The demo-data generator: a small synthetic multi-label set in COCO format. Component
/// `demo` (link mobilenet::demo; it brings mobilenet::data and TurboJPEG).

#include <mobilenet/demo/demo_data.hpp>
