#pragma once
/// \file data/transforms.hpp
/// Everything about image transforms: the Transform (data/transform.hpp), the steps by kind
/// (data/transforms/), the random numbers (data/random.hpp) and the named recipes
/// (data/presets.hpp). Include the single headers to compile less.

#include <mobilenet/data/presets.hpp>
#include <mobilenet/data/random.hpp>
#include <mobilenet/data/transform.hpp>
#include <mobilenet/data/transforms/colour.hpp>
#include <mobilenet/data/transforms/crop.hpp>
#include <mobilenet/data/transforms/cutout.hpp>
#include <mobilenet/data/transforms/flip.hpp>
#include <mobilenet/data/transforms/normalize.hpp>
#include <mobilenet/data/transforms/randaugment.hpp>
#include <mobilenet/data/transforms/resize.hpp>
