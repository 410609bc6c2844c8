#pragma once
/// \file train.hpp
/// Training: the Trainer and its parts (mixed precision, optimizers, LR schedules, freezing,
/// EMA, checkpoints, evaluation, metrics log, progress). Needs LibTorch and Eigen only.

#include <mobilenet/train/amp.hpp>
#include <mobilenet/train/batch_source.hpp>
#include <mobilenet/train/checkpoint.hpp>
#include <mobilenet/train/collectives.hpp>
#include <mobilenet/train/ema.hpp>
#include <mobilenet/train/evaluate.hpp>
#include <mobilenet/train/freeze.hpp>
#include <mobilenet/train/metrics_log.hpp>
#include <mobilenet/train/optim.hpp>
#include <mobilenet/train/progress.hpp>
#include <mobilenet/train/run_contract.hpp>
#include <mobilenet/train/run_dir.hpp>
#include <mobilenet/train/schedule.hpp>
#include <mobilenet/train/select_by.hpp>
#include <mobilenet/train/train_step.hpp>
#include <mobilenet/train/trainer.hpp>
