#pragma once
/// \file inference.hpp
/// Using a trained model: the Predictor (checkpoint -> labels for image files, bytes or
/// tensors). Needs the data component: link mobilenet::data.

#include <mobilenet/inference/predictor.hpp>
