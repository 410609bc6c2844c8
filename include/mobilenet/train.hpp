#pragma once
/// \file train.hpp
/// Training: mixed precision, optimizers, LR schedules, freezing, checkpoints, one training
/// step and a progress bar. Needs LibTorch only.

#include <mobilenet/train/amp.hpp>
#include <mobilenet/train/checkpoint.hpp>
#include <mobilenet/train/collectives.hpp>
#include <mobilenet/train/freeze.hpp>
#include <mobilenet/train/optim.hpp>
#include <mobilenet/train/progress.hpp>
#include <mobilenet/train/schedule.hpp>
#include <mobilenet/train/train_step.hpp>
