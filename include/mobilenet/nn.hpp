#pragma once
/// \file nn.hpp
/// Building blocks: activations, conv-BN-activation, inverted residual, depthwise-separable,
/// initializers, channels-last conversion and the multi-label losses. Needs LibTorch only.

#include <mobilenet/nn/activation.hpp>
#include <mobilenet/nn/channels_last.hpp>
#include <mobilenet/nn/conv_bn_act.hpp>
#include <mobilenet/nn/depthwise_separable.hpp>
#include <mobilenet/nn/forward_recorder.hpp>
#include <mobilenet/nn/init.hpp>
#include <mobilenet/nn/inverted_residual.hpp>
#include <mobilenet/nn/losses.hpp>
#include <mobilenet/nn/norm_layer.hpp>
#include <mobilenet/nn/reduction.hpp>
#include <mobilenet/nn/sequential_like.hpp>
