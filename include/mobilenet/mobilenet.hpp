#pragma once
/// \file mobilenet.hpp
/// The core library: blocks, models, losses, metrics, training. Data loading (COCO, images)
/// is in data.hpp. Include single headers to compile less.

#include <mobilenet/activation.hpp>
#include <mobilenet/amp.hpp>
#include <mobilenet/channels_last.hpp>
#include <mobilenet/checkpoint.hpp>
#include <mobilenet/conv_bn_act.hpp>
#include <mobilenet/depthwise_separable.hpp>
#include <mobilenet/distributed.hpp>
#include <mobilenet/freeze.hpp>
#include <mobilenet/init.hpp>
#include <mobilenet/inverted_residual.hpp>
#include <mobilenet/losses.hpp>
#include <mobilenet/metrics.hpp>
#include <mobilenet/metrics_torch.hpp>
#include <mobilenet/mobilenet_v1.hpp>
#include <mobilenet/mobilenet_v2.hpp>
#include <mobilenet/optim.hpp>
#include <mobilenet/progress.hpp>
#include <mobilenet/sample.hpp>
#include <mobilenet/schedule.hpp>
#include <mobilenet/summary.hpp>
#include <mobilenet/train_step.hpp>
#include <mobilenet/weights.hpp>
