#pragma once
/// \file mobilenet.hpp
/// The core library: blocks and losses (nn/), models (models/), metrics (metrics/) and
/// training (train/). Needs LibTorch and Eigen only. Data loading (COCO, images) is in
/// data.hpp (link mobilenet::data); data-parallel training in distributed.hpp (link
/// mobilenet::distributed). Include single headers to compile less.

#include <mobilenet/io.hpp>
#include <mobilenet/metrics.hpp>
#include <mobilenet/models.hpp>
#include <mobilenet/nn.hpp>
#include <mobilenet/train.hpp>
#include <mobilenet/version.hpp>
