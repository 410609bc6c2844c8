// Training building blocks: AMP scaler and autocast, freezing, optimizers, LR schedules,
// checkpoints and exact resume.
#include <doctest/doctest.h>
#include <mobilenet/train/amp.hpp>
#include <mobilenet/train/checkpoint.hpp>
#include <mobilenet/train/freeze.hpp>
#include <mobilenet/models/mobilenet_v2.hpp>
#include <mobilenet/train/optim.hpp>
#include <mobilenet/train/schedule.hpp>
#include <mobilenet/train/train_step.hpp>

#include <fstream>

#include "support.hpp"

using namespace mobilenet;
using mobilenet::test::run_python;
using mobilenet::test::TempDir;

namespace {
// Small enough to train in seconds on a CPU: 1/4 width, 32 px, 6 classes.
MobileNetV2 tiny_model(int64_t classes = 6) {
  return MobileNetV2(MobileNetV2Options().num_classes(classes).width_mult(0.25).output_stride(16));
}
torch::Tensor bce(const torch::Tensor& logits, const torch::Tensor& targets) {
  return torch::binary_cross_entropy_with_logits(logits, targets);
}
// Batch `step` of a fixed synthetic problem: the label says which colour channel is bright.
std::pair<torch::Tensor, torch::Tensor> batch(int64_t step, int64_t n = 8, int64_t classes = 6) {
  auto gen = at::detail::createCPUGenerator(1000 + step);
  auto targets = (torch::rand({n, classes}, gen) > 0.5).to(torch::kFloat);
  auto images = torch::rand({n, 3, 32, 32}, gen) * 0.2;
  images.select(1, 0) += targets.narrow(1, 0, 3).sum(1).view({n, 1, 1});
  images.select(1, 1) += targets.narrow(1, 3, 3).sum(1).view({n, 1, 1});
  return {images, targets};
}
std::vector<double> read_numbers(const std::string& path) {
  std::ifstream in(path);
  std::vector<double> v;
  for (double x; in >> x;) v.push_back(x);
  return v;
}
}  // namespace

TEST_CASE("GradScaler skips the step and backs off the scale on inf gradients") {
  auto w = torch::ones({3}, torch::requires_grad());
  torch::optim::SGD opt({w}, torch::optim::SGDOptions(0.1));
  GradScaler scaler(GradScalerOptions().init_scale(1024).growth_interval(2));
  // A finite step: gradients are unscaled before the update.
  scaler.scale((w * 2).sum()).backward();
  scaler.step(opt);
  CHECK_FALSE(scaler.step_skipped());
  CHECK(w.grad()[0].item<float>() == doctest::Approx(2.0));
  CHECK(w[0].item<float>() == doctest::Approx(1 - 0.1 * 2));
  scaler.update();
  CHECK(scaler.scale_value() == 1024);
  CHECK(scaler.growth_tracker() == 1);
  // Forced overflow: the update is skipped, the scale halves, the tracker resets.
  auto before = w.detach().clone();
  opt.zero_grad();
  scaler.scale((w * 2).sum()).backward();
  w.mutable_grad()[1] = std::numeric_limits<float>::infinity();
  scaler.step(opt);
  CHECK(scaler.step_skipped());
  CHECK(torch::equal(w.detach(), before));
  scaler.update();
  CHECK(scaler.scale_value() == 512);
  CHECK(scaler.growth_tracker() == 0);
  // NaN too; then two clean steps grow the scale back.
  opt.zero_grad();
  scaler.scale((w * 2).sum()).backward();
  w.mutable_grad()[0] = std::numeric_limits<float>::quiet_NaN();
  scaler.step(opt);
  scaler.update();
  CHECK(scaler.scale_value() == 256);
  for (int i = 0; i < 2; ++i) {
    opt.zero_grad();
    scaler.scale((w * 2).sum()).backward();
    scaler.step(opt);
    scaler.update();
  }
  CHECK(scaler.scale_value() == 512);
  GradScaler restored;
  restored.load_state(scaler.state());
  CHECK(restored.scale_value() == 512);
  // Disabled: a plain step.
  GradScaler off(GradScalerOptions().enabled(false));
  CHECK(off.scale(torch::ones({})).item<float>() == 1);
}

TEST_CASE("bf16 autocast on CPU runs the convolutions in bf16 and training reduces the loss") {
  torch::manual_seed(0);
  auto model = tiny_model();
  {
    AutocastGuard amp(torch::kCPU, true);
    CHECK((model->forward_features(torch::rand({2, 3, 32, 32})).scalar_type() == torch::kBFloat16));
  }
  CHECK((model->forward_features(torch::rand({2, 3, 32, 32})).scalar_type() == torch::kFloat));
  auto opt = make_optimizer(*model, OptimizerOptions("adamw", 3e-3));
  GradScaler scaler(GradScalerOptions().enabled(false));
  auto [x, y] = batch(0, 16);
  std::vector<double> losses;
  for (int i = 0; i < 25; ++i) {
    auto r = train_step(model, *opt, scaler, bce, x, y, TrainStepOptions().amp(true));
    CHECK(r.finite);
    losses.push_back(r.loss);
  }
  CHECK(losses.back() < 0.6 * losses.front());
}

TEST_CASE("a non-finite loss skips the update, and a consensus can overrule the local view") {
  torch::manual_seed(4);
  auto model = tiny_model();
  auto opt = make_optimizer(*model, OptimizerOptions("sgd", 0.1));
  GradScaler scaler(GradScalerOptions().enabled(false));
  auto before = model->features[1]->parameters()[0].clone();
  auto [x, y] = batch(0);
  auto nan_loss = [](const torch::Tensor& l, const torch::Tensor& t) {
    return bce(l, t) * std::numeric_limits<float>::quiet_NaN();
  };
  auto r = train_step(model, *opt, scaler, nan_loss, x, y, TrainStepOptions());
  CHECK_FALSE(r.finite);
  CHECK(r.skipped);
  CHECK(torch::equal(model->features[1]->parameters()[0], before));
  // Another rank saw NaN: this one skips too, although its own loss is finite.
  int hooks = 0;
  auto options = TrainStepOptions()
                     .finite_consensus([](bool) { return false; })
                     .after_backward([&] { ++hooks; });
  r = train_step(model, *opt, scaler, bce, x, y, options);
  CHECK(r.skipped);
  CHECK(hooks == 0);
  CHECK(torch::equal(model->features[1]->parameters()[0], before));
  r = train_step(model, *opt, scaler, bce, x, y, TrainStepOptions().after_backward([&] { ++hooks; }));
  CHECK_FALSE(r.skipped);
  CHECK(hooks == 1);
  CHECK_FALSE(torch::equal(model->features[1]->parameters()[0], before));
}

TEST_CASE("freezing keeps frozen weights and BN statistics bit-identical") {
  torch::manual_seed(1);
  auto model = tiny_model();
  Freezer freezer(model->features, parse_block_range("0-6"));
  auto frozen_before = model->features[0]->parameters()[0].clone();
  auto frozen_bn = model->features[3]->buffers()[0].clone();
  auto live_before = model->features[10]->parameters()[0].clone();
  auto opt = make_optimizer(*model, OptimizerOptions("sgd", 0.1));
  GradScaler scaler(GradScalerOptions().enabled(false));
  for (int i = 0; i < 3; ++i) {
    freezer.train(*model);
    auto [x, y] = batch(i);
    train_step(model, *opt, scaler, bce, x, y, TrainStepOptions());
  }
  for (int64_t i = 0; i <= 6; ++i) {
    for (auto& p : model->features[i]->parameters()) CHECK_FALSE(p.requires_grad());
  }
  CHECK(torch::equal(model->features[0]->parameters()[0], frozen_before));
  CHECK(torch::equal(model->features[3]->buffers()[0], frozen_bn));
  CHECK_FALSE(torch::equal(model->features[10]->parameters()[0], live_before));
  freezer.unfreeze();
  CHECK(model->features[0]->parameters()[0].requires_grad());
  CHECK(parse_block_range("14").first == 14);
  CHECK(parse_block_range("none").empty());
  CHECK_THROWS_WITH_AS(parse_block_range("3-x"), doctest::Contains("'3-x'"), c10::Error);
  CHECK_THROWS_WITH_AS(Freezer(model->features, parse_block_range("0-40")),
                       doctest::Contains("outside features"), c10::Error);
}

TEST_CASE("make_optimizer keeps weight decay off BN parameters and biases") {
  auto model = tiny_model();
  auto opt = make_optimizer(*model, OptimizerOptions("adamw", 1e-3).weight_decay(0.05));
  REQUIRE(opt->param_groups().size() == 2);
  auto& decayed = opt->param_groups()[0];
  auto& plain = opt->param_groups()[1];
  CHECK(static_cast<torch::optim::AdamWOptions&>(decayed.options()).weight_decay() == 0.05);
  CHECK(static_cast<torch::optim::AdamWOptions&>(plain.options()).weight_decay() == 0);
  for (auto& p : decayed.params()) CHECK(p.dim() > 1);
  for (auto& p : plain.params()) CHECK(p.dim() == 1);
  auto sgd = make_optimizer(*model, OptimizerOptions("sgd", 0.1).decay_all(true));
  CHECK(sgd->param_groups().size() == 1);
  CHECK(static_cast<torch::optim::SGDOptions&>(sgd->param_groups()[0].options()).nesterov());
  CHECK_THROWS_WITH_AS(make_optimizer(*model, OptimizerOptions("lamb", 1)),
                       doctest::Contains("'lamb'"), c10::Error);
}

TEST_CASE("LR schedules equal PyTorch's OneCycleLR and warm-up + CosineAnnealingLR") {
  TempDir dir("sched");
  const int64_t total = 50;
  REQUIRE(run_python("schedule_ref.py", "onecycle 0.1 50 0.3 25 10000 " + dir / "o.txt") == 0);
  auto ref = read_numbers(dir / "o.txt");
  REQUIRE(ref.size() == total);
  LrSchedule onecycle(LrScheduleOptions("onecycle", 0.1, total));
  for (int64_t s = 0; s < total; ++s) CHECK(onecycle.lr(s) == doctest::Approx(ref[s]).epsilon(1e-9));
  REQUIRE(run_python("schedule_ref.py", "cosine 0.1 50 5 0.001 " + dir / "c.txt 2>/dev/null") == 0);
  ref = read_numbers(dir / "c.txt");
  REQUIRE(ref.size() == total);
  LrSchedule cosine(LrScheduleOptions("cosine", 0.1, total).warmup_steps(5).min_lr(0.001));
  for (int64_t s = 0; s < total; ++s) CHECK(cosine.lr(s) == doctest::Approx(ref[s]).epsilon(1e-9));
}

namespace {
// Trains `epochs` epochs of 3 steps from `state`, as the trainer does.
void run_epochs(MobileNetV2& model, torch::optim::Optimizer& opt, const LrSchedule& sched,
                TrainingState& state, int64_t epochs) {
  GradScaler scaler(GradScalerOptions().enabled(false));
  for (int64_t e = 0; e < epochs; ++e) {
    model->train();
    for (int i = 0; i < 3; ++i) {
      auto [x, y] = batch(state.step);
      sched.apply(opt, state.step);
      // Dropout draws from the global RNG: resume must restore it.
      train_step(model, opt, scaler, bce, x, y, TrainStepOptions());
      ++state.step;
    }
    ++state.epoch;
  }
}
}  // namespace

TEST_CASE("a run stopped after epoch k and resumed ends with the same weights") {
  TempDir dir("resume");
  const ModelSpec spec{"mobilenet_v2", 6, 0.25, 16, 32, false, {"a", "b", "c", "d", "e", "f"}};
  LrSchedule sched(LrScheduleOptions("cosine", 3e-3, 12).warmup_steps(2));

  torch::manual_seed(5);
  auto full = tiny_model();
  auto full_opt = make_optimizer(*full, OptimizerOptions("adamw", 3e-3));
  TrainingState full_state;
  run_epochs(full, *full_opt, sched, full_state, 4);

  torch::manual_seed(5);
  auto first = tiny_model();
  auto first_opt = make_optimizer(*first, OptimizerOptions("adamw", 3e-3));
  TrainingState state;
  run_epochs(first, *first_opt, sched, state, 2);
  state.thresholds = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  state.config = "--epochs 4";
  save_checkpoint(dir / "ckpt.pt", *first, spec, state, first_opt.get());
  CHECK_FALSE(std::filesystem::exists(dir / "ckpt.pt.tmp"));
  torch::rand({100});  // disturb the RNG: resume must restore it

  torch::manual_seed(99);
  auto resumed = tiny_model();
  auto resumed_opt = make_optimizer(*resumed, OptimizerOptions("adamw", 3e-3));
  TrainingState loaded = load_checkpoint(dir / "ckpt.pt", *resumed, spec, resumed_opt.get());
  CHECK(loaded.epoch == 2);
  CHECK(loaded.step == 6);
  CHECK((loaded.thresholds == state.thresholds));
  CHECK(loaded.config == "--epochs 4");
  CHECK((read_model_spec(dir / "ckpt.pt").class_names == spec.class_names));
  run_epochs(resumed, *resumed_opt, sched, loaded, 2);

  auto a = full->parameters(), b = resumed->parameters();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(torch::equal(a[i], b[i]));
  auto ab = full->buffers(), bb = resumed->buffers();
  for (size_t i = 0; i < ab.size(); ++i) CHECK(torch::equal(ab[i], bb[i]));

  SUBCASE("a checkpoint for another class count or architecture is refused") {
    auto other = tiny_model(10);
    ModelSpec other_spec = spec;
    other_spec.num_classes = 10;
    CHECK_THROWS_WITH_AS(load_checkpoint(dir / "ckpt.pt", *other, other_spec),
                         doctest::Contains("is for mobilenet_v2 (6 classes"), c10::Error);
    ModelSpec os8 = spec;
    os8.output_stride = 8;
    CHECK_THROWS_WITH_AS(load_checkpoint(dir / "ckpt.pt", *resumed, os8),
                         doctest::Contains("output stride 8"), c10::Error);
    std::ofstream(dir / "bad.pt") << "garbage";
    CHECK_THROWS_WITH_AS(read_model_spec(dir / "bad.pt"), doctest::Contains("bad.pt"), c10::Error);
  }
}
