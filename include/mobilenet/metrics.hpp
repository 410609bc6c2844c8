#pragma once
/// \file metrics.hpp
/// Multi-label metrics: metrics/metrics.hpp needs only Eigen; metrics/metrics_torch.hpp adds
/// the LibTorch adapter.

#include <mobilenet/metrics/metrics.hpp>
#include <mobilenet/metrics/metrics_torch.hpp>
