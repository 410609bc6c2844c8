// Training: AMP scaler and autocast, freezing, optimizers, LR schedules, checkpoints, and the
// Trainer itself (exact mid-epoch resume, NaN stop, run folder and resume contract).
#include <doctest/doctest.h>
#include <mobilenet/demo.hpp>
#include <mobilenet/inference/predictor.hpp>
#include <mobilenet/models/mobilenet_v2.hpp>
#include <mobilenet/train/amp.hpp>
#include <mobilenet/train/checkpoint.hpp>
#include <mobilenet/train/freeze.hpp>
#include <mobilenet/train/optim.hpp>
#include <mobilenet/train/schedule.hpp>
#include <mobilenet/train/train_step.hpp>
#include <mobilenet/train/trainer.hpp>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <system_error>

#include "grad_scaler_fixture.hpp"
#include "support.hpp"

using namespace mobilenet;
using mobilenet::test::run;
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

TEST_CASE("run_process hands every argument to the child unparsed, edits its environment, and "
          "reports exit codes and start failures") {
  // Python's sys.argv and json.dumps are the reference for what the child received.
  ::setenv("MOBILENET_TEST_UNSET_ME", "1", 1);
  const auto r = run_process(
      {MOBILENET_PYTHON, "-c",
       "import sys,json,os;print(json.dumps([sys.argv[1:],os.environ.get('MOBILENET_TEST_SET'),"
       "os.environ.get('MOBILENET_TEST_UNSET_ME')]))",
       "a b", "it's", "\"q\"", "$(touch /tmp/mobilenet-pwned)", "*", ";|&", ""},
      ProcessOptions()
          .capture_stdout(true)
          .set_env("MOBILENET_TEST_SET", "v=1 2")
          .unset_env({"MOBILENET_TEST_UNSET_ME"}));
  ::unsetenv("MOBILENET_TEST_UNSET_ME");
  CHECK(r.ok());
  CHECK(r.out == R"x([["a b", "it's", "\"q\"", "$(touch /tmp/mobilenet-pwned)", "*", ";|&", ""], "v=1 2", null])x"
                 "\n");
  CHECK_FALSE(std::filesystem::exists("/tmp/mobilenet-pwned"));
  CHECK(run_process({MOBILENET_PYTHON, "-c", "import sys; sys.exit(3)"}).exit_code == 3);
  CHECK(run_process({MOBILENET_PYTHON, "-c", "import os; print(os.getcwd())"},
                    ProcessOptions().capture_stdout(true).directory("/"))
            .out == "/\n");
  try {
    run_process({"/nonexistent/mobilenet-no-such-program", "x"});
    FAIL("no error for a missing program");
  } catch (const ProcessError& e) {
    CHECK(e.error_number() == ENOENT);
    CHECK(e.program() == "/nonexistent/mobilenet-no-such-program");
  }
  CHECK_THROWS_AS(run_process({}), std::invalid_argument);
}

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

TEST_CASE("GradScaler replays PyTorch's GradScaler on the CPU: fp16 overflow skips, backoff, "
          "growth, the float32 scale, unscale before clipping") {
  // tests/data/grad_scaler.txt: written by tests/python/grad_scaler_reference.py; test_cuda
  // replays the same file on CUDA, through PyTorch's fused AMP kernels.
  const auto scenarios = mobilenet::test::read_grad_scaler_fixture(
      std::string(MOBILENET_TEST_DIR) + "/data/grad_scaler.txt");
  REQUIRE(scenarios.size() == 3);
  for (const auto& s : scenarios) {
    CHECK(mobilenet::test::replay_grad_scaler(s, torch::kCPU) > 0);
  }
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

TEST_CASE("train_step sets gradients to undefined on every LibTorch (1.13's zero_grad zeroes "
          "them), with the numbers of a loop that zeroes them") {
  // No dropout: both models must see the same forward.
  auto options = MobileNetV2Options().num_classes(6).width_mult(0.25).output_stride(16).dropout(0);
  torch::manual_seed(5);
  MobileNetV2 model(options);
  torch::manual_seed(5);
  MobileNetV2 twin(options);
  auto opt = make_optimizer(*model, OptimizerOptions("adamw", 0.01));
  auto twin_opt = make_optimizer(*twin, OptimizerOptions("adamw", 0.01));
  GradScaler scaler(GradScalerOptions().enabled(false));
  int undefined_seen = 0;
  auto checking_bce = [&](const torch::Tensor& l, const torch::Tensor& t) {
    for (const auto& p : model->parameters()) undefined_seen += !p.grad().defined();
    return bce(l, t);
  };
  for (int step = 0; step < 3; ++step) {
    auto [x, y] = batch(step);
    train_step(model, *opt, scaler, checking_bce, x, y, TrainStepOptions());
    // The reference: PyTorch 1.x's zero_grad(set_to_none=False), written out.
    for (auto& p : twin->parameters()) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
    bce(twin->forward(x), y).backward();
    twin_opt->step();
  }
  // Every step found every gradient undefined at the loss (step 1: none yet).
  CHECK(undefined_seen == 3 * static_cast<int>(model->parameters().size()));
  auto got = model->parameters();
  auto want = twin->parameters();
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(torch::equal(got[i], want[i]));
}

TEST_CASE("make_optimizer's AdamW rounds as this stack's Python torch.optim.AdamW, bit for bit") {
  torch::manual_seed(6);
  auto p0 = torch::randn({64});
  std::vector<torch::Tensor> grads;
  for (int i = 0; i < 6; ++i) grads.push_back(torch::randn({64}) * (i + 1));
  TempDir dir("adamw");
  {
    c10::Dict<std::string, torch::Tensor> data;
    data.insert("param", p0);
    for (size_t i = 0; i < grads.size(); ++i) data.insert("g" + std::to_string(i), grads[i]);
    auto bytes = torch::pickle_save(c10::IValue(data));
    std::ofstream(dir / "in.pt", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  REQUIRE(run_python("adamw_reference.py", {dir / "in.pt", dir / "out.txt"}) == 0);
  struct One : torch::nn::Module {
    torch::Tensor w;
  } module;
  module.w = module.register_parameter("w", p0.clone().view({8, 8}));  // dim 2: decayed
  auto opt = make_optimizer(module, OptimizerOptions("adamw", 1e-2).weight_decay(1e-2));
  std::ifstream want(dir / "out.txt");
  for (auto& g : grads) {
    module.w.mutable_grad() = g.view({8, 8}).clone();
    opt->step();
    std::string line;
    REQUIRE(std::getline(want, line));
    std::istringstream fields(line);
    auto got = module.w.detach().flatten();
    for (int64_t i = 0; i < got.numel(); ++i) {
      std::string hex;
      fields >> hex;
      CHECK(got[i].item<float>() == static_cast<float>(std::strtod(hex.c_str(), nullptr)));
    }
  }
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
  REQUIRE(run_python("schedule_ref.py", {"onecycle", "0.1", "50", "0.3", "25", "10000", dir / "o.txt"}) == 0);
  auto ref = read_numbers(dir / "o.txt");
  REQUIRE(ref.size() == total);
  LrSchedule onecycle(LrScheduleOptions("onecycle", 0.1, total));
  for (int64_t s = 0; s < total; ++s) CHECK(onecycle.lr(s) == doctest::Approx(ref[s]).epsilon(1e-9));
  REQUIRE(run_python("schedule_ref.py", {"cosine", "0.1", "50", "5", "0.001", dir / "c.txt"}, /*quiet=*/true) == 0);
  ref = read_numbers(dir / "c.txt");
  REQUIRE(ref.size() == total);
  LrSchedule cosine(LrScheduleOptions("cosine", 0.1, total).warmup_steps(5).min_lr(0.001));
  for (int64_t s = 0; s < total; ++s) CHECK(cosine.lr(s) == doctest::Approx(ref[s]).epsilon(1e-9));
}

namespace {
// A fixed data set of `n` batches (the same every epoch), as a Trainer data source.
std::unique_ptr<BatchSource> synthetic_source(int64_t first, int64_t n) {
  std::vector<BatchView> batches;
  for (int64_t i = 0; i < n; ++i) {
    auto [x, y] = batch(first + i);
    batches.push_back({x, y});
  }
  return batch_source(std::move(batches));
}
const ModelSpec kSpec =
    ModelSpec().num_classes(6).width_mult(0.25).image_size(32).normalize(false).class_names(
        {"a", "b", "c", "d", "e", "f"});

// A Trainer on the tiny model; `seed` fixes the initial weights.
Trainer make_trainer(const std::string& out, uint64_t seed, TrainerOptions options,
                     LossFunction loss = bce) {
  torch::manual_seed(seed);
  Classifier model = make_model(kSpec);
  auto opt = make_optimizer(model.module(), OptimizerOptions("adamw", 3e-3));
  options.out_dir(out).progress(false).log(nullptr).out(nullptr)
      .schedule(LrScheduleOptions("cosine", 3e-3, 0))
      .warmup_epochs(0.5);
  return Trainer(model, kSpec, std::move(opt), std::move(loss), options);
}
std::vector<std::vector<std::string>> read_csv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> row;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) row.push_back(cell);
    rows.push_back(row);
  }
  return rows;
}
void check_same_weights(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.parameters(), pb = b.parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) CHECK(torch::equal(pa[i], pb[i]));
  auto ba = a.buffers(), bb = b.buffers();
  for (size_t i = 0; i < ba.size(); ++i) CHECK(torch::equal(ba[i], bb[i]));
}
}  // namespace

TEST_CASE("Trainer: a run interrupted in the middle of an epoch and resumed ends with the same weights") {
  for (const bool with_ema : {false, true}) {
  CAPTURE(with_ema);
  
  TempDir dir("trainer-resume");
  // EMA decay 0.9 without warm-up: it moves visibly within 12 steps.
  auto ema = [&](TrainerOptions o) {
    return with_ema ? o.ema(ModelEmaOptions().decay(0.9).warmup(0)) : o;
  };
  auto train = synthetic_source(0, 3);
  auto val = synthetic_source(100, 2);

  Trainer full = make_trainer(dir / "full", 5, ema(TrainerOptions("").epochs(4)));
  FitResult done = full.fit(*train, *val);
  CHECK(done.status == FitStatus::completed);
  CHECK(done.state.step == 12);
  CHECK(done.steps_run == 12);

  // Ctrl-C after the 2nd step of epoch 2 (global step 5): checkpoint, status interrupted.
  std::atomic<bool> stop{false};
  Trainer first = make_trainer(dir / "run", 5, ema(TrainerOptions("").epochs(4).stop_flag(&stop)
                                                   .on_step([&](const StepEvent& e) {
                                                     if (e.step == 5) stop = true;
                                                   })));
  FitResult interrupted = first.fit(*train, *val);
  CHECK(interrupted.status == FitStatus::interrupted);
  CHECK(interrupted.state.step == 5);
  CHECK(interrupted.state.epoch == 1);
  torch::rand({100});  // disturb the RNG: resume must restore it (dropout draws from it)

  Trainer resumed = make_trainer(dir / "run", 99, ema(TrainerOptions("").epochs(4).resume(true)));
  FitResult rest = resumed.fit(*train, *val);
  CHECK(rest.status == FitStatus::completed);
  CHECK(rest.steps_run == 7);
  check_same_weights(full.model().module(), resumed.model().module());
  if (with_ema) {
    check_same_weights(full.ema_model().module(), resumed.ema_model().module());
    // The average lags the weights: it is a different model.
    CHECK_FALSE(torch::equal(full.ema_model().module().parameters()[0], full.model().module().parameters()[0]));
  }

  // metrics.csv: header + untrained + 4 epochs, no duplicate epoch rows after the resume.
  const auto rows = read_csv(dir / "run/metrics.csv");
  REQUIRE(rows.size() == 6);
  CHECK((rows[0] == MetricsLog::columns()));
  for (size_t i = 1; i < rows.size(); ++i) CHECK(rows[i][0] == std::to_string(i - 1));
  // best.pt is the epoch with the highest mAP in the log.
  const size_t map_col = size_t(std::find(rows[0].begin(), rows[0].end(), "map") - rows[0].begin());
  size_t best_row = 2;
  for (size_t i = 2; i < rows.size(); ++i) {
    if (std::stod(rows[i][map_col]) > std::stod(rows[best_row][map_col])) best_row = i;
  }
  if (!with_ema) CHECK(rest.state.best_epoch == int64_t(best_row - 1));
  // best.pt's weights are the raw or the EMA weights of its epoch, as best_source says.
  CHECK((rest.state.best_source == "model" || (with_ema && rest.state.best_source == "ema")));
  if (with_ema) {
    const size_t ema_col = size_t(std::find(rows[0].begin(), rows[0].end(), "ema_map") - rows[0].begin());
    double best = -1;
    for (size_t i = 2; i < rows.size(); ++i)
      best = std::max({best, std::stod(rows[i][map_col]), std::stod(rows[i][ema_col])});
    CHECK(rest.state.best_score == doctest::Approx(best).epsilon(1e-5));
  }
  CHECK(read_model_spec(dir / "run/best.pt").class_names() == kSpec.class_names());
  CHECK(rest.state.thresholds.size() == 6);
}
}

TEST_CASE("Trainer: TrainerOptions::seed makes dropout's masks depend on the seed alone") {
  TempDir dir("trainer-seed");
  auto train = synthetic_source(0, 3);
  auto val = synthetic_source(100, 2);
  // Same initial weights; the generator is then left in different states (as models whose
  // construction draws differently would leave it).
  auto run = [&](const std::string& name, std::optional<uint64_t> seed, int64_t extra_draws) {
    Trainer t = make_trainer(dir / name, 5, TrainerOptions("").epochs(2).seed(seed));
    if (extra_draws > 0) torch::rand({extra_draws});
    t.fit(*train, *val);
    return t;
  };
  Trainer a = run("a", 11, 0), b = run("b", 11, 37);
  check_same_weights(a.model().module(), b.model().module());
  // Without the seed the masks follow the generator's state, and the runs part (so the
  // check above is not vacuous: dropout does draw).
  Trainer c = run("c", std::nullopt, 0), d = run("d", std::nullopt, 37);
  CHECK_FALSE(torch::equal(c.model().module().parameters()[0], d.model().module().parameters()[0]));
}

TEST_CASE("Trainer: a non-finite loss stops training and keeps last.pt as the last good state") {
  TempDir dir("trainer-nan");
  auto train = synthetic_source(0, 3);
  auto val = synthetic_source(100, 2);
  int calls = 0;
  // Training calls the loss once per step; evaluation calls it too. NaN from the 5th step on.
  int train_calls = 0;
  auto loss = [&](const torch::Tensor& l, const torch::Tensor& t) {
    ++calls;
    torch::Tensor v = bce(l, t);
    return l.requires_grad() && ++train_calls >= 5 ? v * std::numeric_limits<float>::quiet_NaN() : v;
  };
  Trainer trainer = make_trainer(dir.path().string(), 3, TrainerOptions("").epochs(3), loss);
  FitResult r = trainer.fit(*train, *val);
  CHECK(r.status == FitStatus::non_finite);
  CHECK(r.message.find("last.pt keeps the last good state") != std::string::npos);
  CHECK(r.state.step == 4);
  // last.pt is the end of epoch 1: its weights are those before the NaN step's epoch began.
  Classifier reloaded = make_model(kSpec);
  TrainingState saved = load_checkpoint(dir / "last.pt", reloaded.module(), kSpec, nullptr, false);
  CHECK(saved.epoch == 1);
  CHECK(saved.step == 3);
  CHECK(calls > 0);
}

TEST_CASE("Trainer: the run folder, the resume contract and bad options are checked") {
  TempDir dir("trainer-contract");
  auto train = synthetic_source(0, 2);
  auto val = synthetic_source(100, 1);
  const std::map<std::string, std::string> contract = {
      {"image_size", "32"}, {"batch_size", "8"}, {"data", "abc123"}, {"lr", "0.003"}};
  {
    Trainer t = make_trainer(dir.path().string(), 1, TrainerOptions("").epochs(1).contract(contract));
    CHECK(t.fit(*train, *val).status == FitStatus::completed);
  }
  // A fresh run into a folder holding a run is refused; --overwrite starts afresh.
  CHECK_THROWS_WITH_AS(make_trainer(dir.path().string(), 1, TrainerOptions("").epochs(1)).fit(*train, *val),
                       doctest::Contains("already holds a run"), c10::Error);
  // Resume with a different data set and image size: every difference is named.
  auto other = contract;
  other["image_size"] = "64";
  other["data"] = "zzz";
  other["lr"] = "0.1";
  CHECK_THROWS_WITH_AS(
      make_trainer(dir.path().string(), 1, TrainerOptions("").epochs(2).resume(true).contract(other))
          .fit(*train, *val),
      doctest::Contains("data: checkpoint abc123, now zzz; image_size: checkpoint 32, now 64; lr"),
      c10::Error);
  // An allowed change (lr) passes. The log holds a row for epoch 2 whose checkpoint was never
  // saved (a failed save): the resumed run drops it, so epoch 2 is logged once.
  {
    std::ofstream log(dir / "metrics.csv", std::ios::app);
    log << "2" << std::string(MetricsLog::columns().size() - 1, ',') << "\n";
  }
  auto lr_only = contract;
  lr_only["lr"] = "0.1";
  Trainer ok = make_trainer(dir.path().string(), 1,
                            TrainerOptions("").epochs(2).resume(true).contract(lr_only).allow_changes({"lr"}));
  CHECK(ok.fit(*train, *val).state.epoch == 2);
  const auto rows = read_csv(dir / "metrics.csv");
  REQUIRE(rows.size() == 4);  // header, epochs 0, 1, 2
  CHECK(rows[3][0] == "2");
  CHECK(rows[3].size() == MetricsLog::columns().size());  // the real row, not the stale one
  CHECK(make_trainer(dir.path().string(), 1, TrainerOptions("").epochs(1).overwrite(true))
            .fit(*train, *val).state.epoch == 1);
  CHECK_THROWS_WITH_AS(mobilenet::parse_select_by("acc"),
                       doctest::Contains("select_by must be map, f1 or loss, got 'acc'"), c10::Error);
  CHECK(mobilenet::parse_select_by("f1") == mobilenet::SelectBy::f1);
  CHECK_THROWS_WITH_AS(make_trainer(dir / "x", 1, TrainerOptions("").clip_grad_norm(std::nan(""))),
                       doctest::Contains("clip_grad_norm must be finite"), c10::Error);
  // No readable validation image: a clear error, not "val loss 0".
  auto empty_val = batch_source(std::vector<BatchView>{});
  CHECK_THROWS_WITH_AS(make_trainer(dir / "y", 1, TrainerOptions("").epochs(1)).fit(*train, *empty_val),
                       doctest::Contains("no validation image"), c10::Error);
}

TEST_CASE("a checkpoint for another class count or architecture is refused") {
  TempDir dir("ckpt");
  torch::manual_seed(5);
  Classifier model = make_model(kSpec);
  TrainingState state;
  state.thresholds = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
  state.config = "--epochs 4";
  state.contract = {{"image_size", "32"}};
  save_checkpoint(dir / "ckpt.pt", model.module(), kSpec, state);
  CHECK_FALSE(std::filesystem::exists(dir / "ckpt.pt.tmp"));
  TrainingState loaded = load_checkpoint(dir / "ckpt.pt", model.module(), kSpec);
  CHECK((loaded.thresholds == state.thresholds));
  CHECK(loaded.config == "--epochs 4");
  CHECK((loaded.contract == state.contract));
  CHECK(read_model_spec(dir / "ckpt.pt").eval_resize() == "squish");

  Classifier other = make_model(ModelSpec(kSpec).num_classes(10));
  CHECK_THROWS_WITH_AS(load_checkpoint(dir / "ckpt.pt", other.module(), ModelSpec(kSpec).num_classes(10)),
                       doctest::Contains("is for mobilenet_v2 (6 classes"), c10::Error);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir / "ckpt.pt", model.module(), ModelSpec(kSpec).output_stride(8)),
                       doctest::Contains("output stride 8"), c10::Error);
  std::ofstream(dir / "bad.pt") << "garbage";
  CHECK_THROWS_WITH_AS(read_model_spec(dir / "bad.pt"), doctest::Contains("bad.pt"), c10::Error);
}

namespace {
std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
doctest::Contains contains(const std::string& text) { return doctest::Contains(text.c_str()); }
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}
}  // namespace

TEST_CASE("a full disk while saving a checkpoint throws, leaves no temporary and keeps the "
          "previous checkpoint") {
  TempDir dir("diskfull");
  const std::string path = dir / "last.pt";
  torch::manual_seed(3);
  Classifier model = make_model(kSpec);
  auto opt = make_optimizer(model.module(), OptimizerOptions("adamw", 1e-3));
  TrainingState state;
  state.epoch = 1;
  save_checkpoint(path, model.module(), kSpec, state, opt.get());
  const std::string before = file_bytes(path);
  REQUIRE(before.size() > 100000);

  // The child saves under a 64 KiB file-size limit, as a full disk would stop it; SIGXFSZ
  // ignored so that write() fails with EFBIG instead of killing the process. Exit status:
  // 0 = the expected error, 1 = no error, 2 = a wrong message (printed).
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{64 << 10, 64 << 10};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(3);
    state.epoch = 2;
    try {
      save_checkpoint(path, model.module(), kSpec, state, opt.get());
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      const bool ok = what.find(path) != std::string::npos &&
                      what.find(std::system_category().message(EFBIG)) != std::string::npos;
      if (!ok) std::fprintf(stderr, "unexpected message: %s\n", what.c_str());
      _exit(ok ? 0 : 2);
    }
    _exit(1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  INFO("child status " << status);
  REQUIRE(WIFEXITED(status));  // a crash (SIGABRT from LibTorch's file writer) fails here
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
  CHECK(file_bytes(path) == before);
  Classifier again = make_model(kSpec);
  CHECK(load_checkpoint(path, again.module(), kSpec).epoch == 1);
}

TEST_CASE("a checkpoint with a flipped byte, or cut short, is refused with a clear error") {
  TempDir dir("corrupt");
  const std::string path = dir / "ckpt.pt";
  Classifier model = make_model(kSpec);
  save_checkpoint(path, model.module(), kSpec, TrainingState());
  const std::string good = file_bytes(path);

  // Still a zip, and the comment's CRC32 is that of every byte before it (Python's zipfile
  // and zlib as the reference).
  const std::string check =
      "import sys,zipfile,zlib;d=open(sys.argv[1],'rb').read();z=zipfile.ZipFile(sys.argv[1]);"
      "c=z.comment;assert z.testzip() is None;assert c.startswith(b'mobilenet checkpoint crc32=');"
      "assert int(c[-8:],16)==zlib.crc32(d[:len(d)-len(c)]),c";
  CHECK(run(MOBILENET_PYTHON, {"-c", check, path}) == 0);

  auto flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;  // inside the largest tensor: LibTorch alone would not notice
  write_bytes(path, flipped);
  const std::string corrupt = "checkpoint '" + path + "' is corrupt: checksum mismatch";
  CHECK_THROWS_WITH_AS(load_checkpoint(path, model.module(), kSpec), contains(corrupt),
                       c10::Error);
  CHECK_THROWS_WITH_AS(read_model_spec(path), contains(corrupt), c10::Error);

  const std::string truncated =
      "checkpoint '" + path + "' is truncated or not a mobilenet checkpoint";
  for (size_t keep : {good.size() / 2, good.size() - 1, size_t(0)}) {
    CAPTURE(keep);
    write_bytes(path, good.substr(0, keep));
    CHECK_THROWS_WITH_AS(load_checkpoint(path, model.module(), kSpec), contains(truncated),
                         c10::Error);
  }
  CHECK_THROWS_WITH_AS(read_model_spec(dir / "missing.pt"),
                       contains("cannot read '" + dir / "missing.pt" + "': " +
                                std::system_category().message(ENOENT)),
                       c10::Error);
  write_bytes(path, good);
  CHECK(load_checkpoint(path, model.module(), kSpec).epoch == 0);
}

TEST_CASE("saving to a relative path works, and saving into a missing folder or reading a FIFO "
          "names the file and the reason") {
  // A relative path: the folder fsynced after the rename is ".".
  const std::string name = "mobilenet-atomic-" + std::to_string(getpid()) + ".pt";
  Classifier model = make_model(kSpec);
  TrainingState state;
  state.epoch = 7;
  save_checkpoint(name, model.module(), kSpec, state);
  CHECK_FALSE(std::filesystem::exists(name + ".tmp"));
  CHECK(load_checkpoint(name, model.module(), kSpec).epoch == 7);
  std::filesystem::remove(name);

  TempDir dir("atomic");
  const std::string missing = dir / "no-such-folder/x.pt";
  CHECK_THROWS_WITH_AS(save_checkpoint(missing, model.module(), kSpec, state),
                       contains("cannot write '" + missing + "'"), c10::Error);
  CHECK_THROWS_WITH_AS(save_checkpoint(missing, model.module(), kSpec, state),
                       contains(std::system_category().message(ENOENT)), c10::Error);
  // A FIFO is refused instead of blocking the reader forever.
  const std::string fifo = dir / "fifo.pt";
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(read_model_spec(fifo), contains("not a regular file"), c10::Error);
}

TEST_CASE("Predictor: probabilities of the checkpoint's model on its eval transform, from a file, bytes or a batch") {
  TempDir dir("predictor");
  const auto demo = write_demo_data(dir.path().string(), DemoDataOptions().train(1).val(5).size(40));
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(demo.back().image_dir)) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 5);
  torch::manual_seed(8);
  const ModelSpec spec = ModelSpec(kSpec).image_size(40).normalize(true);
  Classifier model = make_model(spec);
  // Random BN statistics, so folding them into the convolutions is really exercised.
  for (auto& b : model.module().named_buffers()) {
    if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
  }
  TrainingState state;
  state.thresholds = {0.1f, 0.3f, 0.5f, 0.5f, 0.7f, 0.9f};
  save_checkpoint(dir / "model.pt", model.module(), spec, state);

  // Reference: the model itself, eval mode, on eval_transform_for(spec) of each file.
  model.module().eval();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> inputs;
  for (const auto& f : files) inputs.push_back(eval_transform_for(spec)(f, 0));
  const torch::Tensor want = torch::sigmoid(model.forward(torch::stack(inputs)));

  for (const bool prepare : {true, false}) {
    CAPTURE(prepare);
    Predictor predictor(dir / "model.pt", PredictorOptions().prepare(prepare).batch_size(2));
    const auto batched = predictor.predict(files);
    REQUIRE(batched.size() == files.size());
    for (size_t i = 0; i < files.size(); ++i) {
      const auto one = predictor.predict(files[i]);
      const auto bytes = read_file(files[i]);
      const auto from_bytes = predictor.predict(bytes.data(), bytes.size(), files[i]);
      for (int64_t k = 0; k < 6; ++k) {
        const float w = want[int64_t(i)][k].item<float>();
        CHECK(batched[i].probabilities[size_t(k)] == doctest::Approx(w).epsilon(1e-5));
        CHECK(one.probabilities[size_t(k)] == doctest::Approx(w).epsilon(1e-5));
        CHECK(from_bytes.probabilities[size_t(k)] == doctest::Approx(w).epsilon(1e-5));
      }
      // Labels: exactly the classes at or above their threshold, most probable first.
      size_t expected = 0;
      for (int64_t k = 0; k < 6; ++k) expected += one.probabilities[size_t(k)] >= state.thresholds[size_t(k)];
      CHECK(one.labels.size() == expected);
      for (size_t j = 1; j < one.labels.size(); ++j) CHECK(one.labels[j - 1].probability >= one.labels[j].probability);
      for (const auto& l : one.labels) CHECK(l.name == kSpec.class_names()[size_t(l.index)]);
    }
  }
  CHECK_THROWS_WITH_AS(Predictor(dir / "model.pt", PredictorOptions().threshold(1.5)),
                       doctest::Contains("threshold must be in [0, 1], got 1.5"), c10::Error);
  CHECK_THROWS_AS(Predictor(dir / "model.pt").predict(dir / "missing.jpg"), ImageError);
}
