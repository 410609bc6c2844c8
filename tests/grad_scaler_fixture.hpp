#pragma once
// Replays tests/data/grad_scaler.txt (written by tests/python/grad_scaler_reference.py from
// PyTorch's GradScaler) with mobilenet::GradScaler on a device: the same parameters,
// coefficients, SGD and clipping; after every step the skip decision, the scale and growth
// tracker must be equal, the gradient norm and the parameters equal within float32 rounding.
// Shared by test_trainer (CPU) and test_cuda (CUDA, PyTorch's fused AMP kernels).
#include <doctest/doctest.h>
#include <mobilenet/train/amp.hpp>

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace mobilenet::test {

struct ScalerStep {
  int64_t index = 0;
  double clip = 0;
  std::vector<float> c0, c1;
  // After the step:
  bool skipped = false;
  double scale = 0;
  int64_t tracker = 0;
  double norm = 0;
  std::vector<float> p0, p1;
};

struct ScalerScenario {
  std::string name, dtype;
  double init_scale = 0, growth_factor = 0, backoff_factor = 0, lr = 0;
  int64_t growth_interval = 0;
  std::vector<float> p0, p1;
  std::vector<ScalerStep> steps;
};

namespace detail {
// Reads `count` numbers ("nan" and "inf" included) after the token `key`.
inline std::vector<float> read_floats(std::istringstream& in, const std::string& key, size_t count) {
  std::string token;
  in >> token;
  REQUIRE_MESSAGE(token == key, "grad_scaler.txt: expected '" << key << "', got '" << token << "'");
  std::vector<float> v(count);
  for (auto& x : v) {
    in >> token;
    x = std::stof(token);
  }
  return v;
}
inline double read_number(std::istringstream& in, const std::string& key) {
  return read_floats(in, key, 1)[0];
}
}  // namespace detail

inline std::vector<ScalerScenario> read_grad_scaler_fixture(const std::string& path) {
  std::ifstream file(path);
  REQUIRE_MESSAGE(file.good(), "cannot read " << path);
  std::vector<ScalerScenario> scenarios;
  for (std::string line; std::getline(file, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream in(line);
    std::string kind;
    in >> kind;
    if (kind == "scenario") {
      ScalerScenario s;
      in >> s.name >> s.dtype >> s.init_scale >> s.growth_factor >> s.backoff_factor >>
          s.growth_interval >> s.lr;
      scenarios.push_back(s);
      continue;
    }
    REQUIRE(!scenarios.empty());
    auto& s = scenarios.back();
    if (kind == "init") {
      std::string which;
      in >> which;
      auto& values = which == "p0" ? s.p0 : s.p1;
      for (std::string token; in >> token;) values.push_back(std::stof(token));
    } else if (kind == "step") {
      ScalerStep step;
      in >> step.index;
      step.clip = detail::read_number(in, "clip");
      step.c0 = detail::read_floats(in, "c0", 4);
      step.c1 = detail::read_floats(in, "c1", 6);
      s.steps.push_back(step);
    } else if (kind == "after") {
      REQUIRE(!s.steps.empty());
      auto& step = s.steps.back();
      int64_t index = 0;
      in >> index;
      REQUIRE(index == step.index);
      step.skipped = detail::read_number(in, "skipped") != 0;
      std::string token;
      in >> token >> step.scale;  // "scale", read as double: exact for a float32 value
      REQUIRE(token == "scale");
      step.tracker = static_cast<int64_t>(detail::read_number(in, "tracker"));
      in >> token;
      REQUIRE(token == "norm");
      in >> token;
      step.norm = std::stod(token);
      step.p0 = detail::read_floats(in, "p0", 4);
      step.p1 = detail::read_floats(in, "p1", 6);
    } else {
      FAIL("grad_scaler.txt: unknown record '" << kind << "'");
    }
  }
  return scenarios;
}

/// Replays one scenario on `device`; returns how many steps were skipped (so a caller can
/// check the scenario really exercised skipping).
inline int64_t replay_grad_scaler(const ScalerScenario& s, const torch::Device& device) {
  INFO("scenario " << s.name << " on " << device);
  REQUIRE(s.p0.size() == 4);
  REQUIRE(s.p1.size() == 6);
  auto p0 = torch::tensor(s.p0).to(device).requires_grad_(true);
  auto p1 = torch::tensor(s.p1).view({2, 3}).to(device).requires_grad_(true);
  auto unused = torch::zeros({3}, torch::TensorOptions().device(device).requires_grad(true));
  torch::optim::SGD opt({p0, p1, unused}, torch::optim::SGDOptions(s.lr).momentum(0.5));
  GradScaler scaler(GradScalerOptions()
                        .init_scale(s.init_scale)
                        .growth_factor(s.growth_factor)
                        .backoff_factor(s.backoff_factor)
                        .growth_interval(s.growth_interval));
  int64_t skipped = 0;
  for (const auto& step : s.steps) {
    INFO("step " << step.index);
    opt.zero_grad();
    auto c0 = torch::tensor(step.c0).to(device);
    auto c1 = torch::tensor(step.c1).view({2, 3}).to(device);
    torch::Tensor loss;
    if (s.dtype == "fp16") {
      // The scaled gradient flows through fp16, where a large scale overflows to inf.
      loss = (p0.to(torch::kHalf) * c0.to(torch::kHalf)).to(torch::kFloat).sum() +
             (p1.to(torch::kHalf) * c1.to(torch::kHalf)).to(torch::kFloat).sum();
    } else {
      loss = (p0 * c0).sum() + (p1 * c1).sum();
    }
    scaler.scale(loss).backward();
    double norm = 0;
    if (step.clip > 0) {
      // Unscale first, so the clip sees the true gradients (PyTorch's recipe).
      scaler.unscale(opt);
      norm = torch::nn::utils::clip_grad_norm_(std::vector<torch::Tensor>{p0, p1, unused}, step.clip);
    }
    scaler.step(opt);
    CHECK(scaler.step_skipped() == step.skipped);
    skipped += scaler.step_skipped();
    scaler.update();
    CHECK(scaler.scale_value() == step.scale);
    CHECK(scaler.growth_tracker() == step.tracker);
    if (std::isfinite(step.norm)) {
      CHECK(norm == doctest::Approx(step.norm).epsilon(1e-6));
    } else {
      CHECK_FALSE(std::isfinite(norm));
    }
    const auto got0 = p0.detach().cpu(), got1 = p1.detach().cpu().flatten();
    for (size_t i = 0; i < 4; ++i) {
      CHECK(got0[int64_t(i)].item<float>() == doctest::Approx(step.p0[i]).epsilon(1e-6));
    }
    for (size_t i = 0; i < 6; ++i) {
      CHECK(got1[int64_t(i)].item<float>() == doctest::Approx(step.p1[i]).epsilon(1e-6));
    }
    CHECK_FALSE(unused.grad().defined());
  }
  return skipped;
}

}  // namespace mobilenet::test
