#pragma once
/// \file models.hpp
/// Models: MobileNetV2, MobileNetV1, the summary table and torchvision weight import/export.
/// Needs LibTorch only.

#include <mobilenet/models/factory.hpp>
#include <mobilenet/models/fuse.hpp>
#include <mobilenet/models/mobilenet_v1.hpp>
#include <mobilenet/models/mobilenet_v2.hpp>
#include <mobilenet/models/prepare.hpp>
#include <mobilenet/models/summary.hpp>
#include <mobilenet/models/weights.hpp>
