// --recipe asl: what Alibaba-MIIL/ASL's train.py does, for every flag the user did not give.
#pragma once

#include "config.hpp"

#include <CLI/CLI.hpp>

#include <string>

namespace coco_train {

inline void apply_recipe(const CLI::App& app, Config& c) {
  if (c.recipe != "asl") return;
  // get_option throws for a name the table does not declare: the flags test runs this recipe.
  auto preset = [&](const char* flag, auto Config::*field, auto value) {
    if (app.get_option(flag)->count() == 0) c.*field = value;
  };
  preset("--loss", &Config::loss, std::string("asl"));
  preset("--asl-gamma-neg", &Config::asl_gamma_neg, 4.0);
  preset("--asl-gamma-pos", &Config::asl_gamma_pos, 0.0);
  preset("--asl-clip", &Config::asl_clip, 0.05);
  preset("--optimizer", &Config::optimizer, std::string("adamw"));
  preset("--lr", &Config::lr, 2e-4);
  preset("--weight-decay", &Config::weight_decay, 1e-4);
  preset("--schedule", &Config::schedule, std::string("onecycle"));
  preset("--pct-start", &Config::pct_start, 0.2);
  preset("--ema-decay", &Config::ema_decay, 0.9997);
  preset("--cutout", &Config::cutout, 0.5);
  preset("--randaugment-n", &Config::randaugment_n, int64_t(2));
  preset("--randaugment-m", &Config::randaugment_m, int64_t(9));
}

}  // namespace coco_train
