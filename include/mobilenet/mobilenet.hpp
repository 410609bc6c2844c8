#pragma once
/// \file mobilenet.hpp
/// Everything in the library. Include single headers to compile less.

#include <mobilenet/activation.hpp>
#include <mobilenet/amp.hpp>
#include <mobilenet/checkpoint.hpp>
#include <mobilenet/conv_bn_act.hpp>
#include <mobilenet/depthwise_separable.hpp>
#include <mobilenet/distributed.hpp>
#include <mobilenet/freeze.hpp>
#include <mobilenet/init.hpp>
#include <mobilenet/inverted_residual.hpp>
#include <mobilenet/mobilenet_v1.hpp>
#include <mobilenet/mobilenet_v2.hpp>
#include <mobilenet/optim.hpp>
#include <mobilenet/sample.hpp>
#include <mobilenet/schedule.hpp>
#include <mobilenet/summary.hpp>
#include <mobilenet/train_step.hpp>
#include <mobilenet/weights.hpp>
