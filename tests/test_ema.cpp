// ModelEma (train/ema.hpp): the average of a trained model's weights against a float64 NumPy
// loop over the same sequence of state_dicts (tests/python/ema_reference.py), exact resume
// through save/load, the copy's properties (no grad, eval, channels-last, device, RNG) and the
// option and model checks.
#include <doctest/doctest.h>
#include <mobilenet/models/mobilenet_v2.hpp>
#include <mobilenet/models/weights.hpp>
#include <mobilenet/nn/channels_last.hpp>
#include <mobilenet/train/ema.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support.hpp"

using namespace mobilenet;
using mobilenet::test::run_python;
using mobilenet::test::TempDir;

namespace {

// Small enough to train in seconds on a CPU: 1/4 width, 32 px, 6 classes.
MobileNetV2 tiny_model(uint64_t seed, int64_t classes = 6) {
  torch::manual_seed(seed);
  MobileNetV2 model(MobileNetV2Options().num_classes(classes).width_mult(0.25).output_stride(16));
  to_channels_last(*model);
  return model;
}

/// A fixed sequence of optimizer steps: SGD with momentum on random batches, in train mode, so
/// that parameters, BatchNorm statistics and num_batches_tracked all change.
class Trainer {
 public:
  explicit Trainer(MobileNetV2 model)
      : model_(std::move(model)),
        optimizer_(model_->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9)) {}
  void step() {
    auto gen = at::detail::createCPUGenerator(500 + steps_++);
    auto images = torch::rand({8, 3, 32, 32}, gen).contiguous(at::MemoryFormat::ChannelsLast);
    auto targets = (torch::rand({8, 6}, gen) > 0.5).to(torch::kFloat);
    model_->train();
    optimizer_.zero_grad();
    torch::binary_cross_entropy_with_logits(model_->forward(images), targets).backward();
    optimizer_.step();
  }
  MobileNetV2& model() { return model_; }

 private:
  MobileNetV2 model_;
  torch::optim::SGD optimizer_;
  int64_t steps_ = 0;
};

std::map<std::string, torch::Tensor> snapshot(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : state_dict(m)) out[name] = t.detach().cpu().clone();
  return out;
}

/// Every tensor bit-identical.
bool identical(const torch::nn::Module& a, const torch::nn::Module& b) {
  const auto sa = state_dict(a), sb = state_dict(b);
  if (sa.size() != sb.size()) return false;
  for (size_t i = 0; i < sa.size(); ++i) {
    if (sa[i].first != sb[i].first || !torch::equal(sa[i].second.cpu(), sb[i].second.cpu())) {
      return false;
    }
  }
  return true;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "no exception";
}

struct EmaConfig {
  std::string name;
  ModelEmaOptions options;
};

}  // namespace

// Tolerance: each float32 update rounds twice (about 6e-8 relative each), so 24 updates drift
// at most ~3e-6 relative from the float64 reference; 1e-5 relative (+ 2e-6 absolute near 0)
// leaves margin while an off-by-one in the update count fails by orders of magnitude.
TEST_CASE("ModelEma equals a float64 NumPy EMA of the same trained weights within 2e-6 + "
          "1e-5 |ref| (warm-up, no warm-up with averaged buffers, the defaults)") {
  constexpr int64_t kSteps = 24;
  const std::vector<int64_t> checks = {1, 7, kSteps};
  const std::vector<EmaConfig> configs = {
      {"warmup", ModelEmaOptions().decay(0.9).warmup(5)},
      {"average_buffers", ModelEmaOptions().decay(0.8).warmup(0).average_buffers(true)},
      {"defaults", ModelEmaOptions()},
  };
  TempDir dir("ema");
  Trainer trainer(tiny_model(7));
  std::vector<ModelEma<MobileNetV2>> emas;
  for (const auto& c : configs) emas.emplace_back(trainer.model(), c.options);
  save_weights(*trainer.model(), dir / "model_000.pt");
  std::map<std::string, std::map<int64_t, std::map<std::string, torch::Tensor>>> ours;
  for (int64_t n = 1; n <= kSteps; ++n) {
    trainer.step();
    char name[32];
    std::snprintf(name, sizeof name, "model_%03lld.pt", static_cast<long long>(n));
    save_weights(*trainer.model(), dir / name);
    for (size_t i = 0; i < emas.size(); ++i) {
      emas[i].update(trainer.model());
      CHECK(emas[i].updates() == n);
      if (std::find(checks.begin(), checks.end(), n) != checks.end()) {
        ours[configs[i].name][n] = snapshot(*emas[i].module());
      }
    }
  }
  {
    std::ofstream buffers(dir / "buffers.txt");
    for (const auto& b : trainer.model()->named_buffers()) buffers << b.key() << "\n";
    std::ofstream cfg(dir / "configs.txt");
    for (const auto& c : configs) {
      cfg << c.name << " " << c.options.decay() << " " << c.options.warmup() << " "
          << (c.options.average_buffers() ? 1 : 0) << " " << kSteps;
      for (int64_t n : checks) cfg << " " << n;
      cfg << "\n";
    }
  }
  REQUIRE(run_python("ema_reference.py", {dir.path().string()}) == 0);

  const std::set<std::string> buffer_names = [&] {
    std::set<std::string> s;
    for (const auto& b : trainer.model()->named_buffers()) s.insert(b.key());
    return s;
  }();
  for (const auto& c : configs) {
    for (int64_t n : checks) {
      CAPTURE(c.name);
      CAPTURE(n);
      char name[64];
      std::snprintf(name, sizeof name, "ref_%s_%03lld.pt", c.name.c_str(),
                    static_cast<long long>(n));
      const auto ref = read_weights(dir / name);
      const auto& mine = ours[c.name][n];
      REQUIRE(ref.size() == mine.size());
      double worst = 0, worst_share = 0;  // max |diff|, and max |diff| / tolerance
      for (const auto& entry : ref) {  // no structured binding: clang 14 cannot CAPTURE one
        const auto& key = entry.first;
        const auto& expected = entry.second;
        CAPTURE(key);
        const torch::Tensor got = mine.at(key);
        REQUIRE(got.sizes() == expected.sizes());
        if (!got.is_floating_point()) {
          CHECK(torch::equal(got, expected.to(got.scalar_type())));  // copied counter
          continue;
        }
        const auto e = expected.to(torch::kDouble);
        const auto diff = (got.to(torch::kDouble) - e).abs();
        const double share = (diff / (2e-6 + 1e-5 * e.abs())).max().item<double>();
        CHECK(share <= 1);
        worst = std::max(worst, diff.max().item<double>());
        worst_share = std::max(worst_share, share);
      }
      MESSAGE(c.name << " after update " << n << ": max |EMA - reference| " << worst
                     << ", at most " << worst_share << " of the tolerance");
    }
  }
  // The EMA is not the model: with decay 0.9 after warm-up it lags behind the trained weights.
  const auto last = ours["warmup"][kSteps];
  const auto model_now = snapshot(*trainer.model());
  CHECK_FALSE(torch::allclose(last.at("classifier.1.weight"), model_now.at("classifier.1.weight")));
  // Copied buffers equal the model's; averaged ones do not.
  CHECK(torch::equal(last.at("features.0.1.running_mean"), model_now.at("features.0.1.running_mean")));
  CHECK_FALSE(torch::equal(ours["average_buffers"][kSteps].at("features.0.1.running_mean"),
                           model_now.at("features.0.1.running_mean")));
  CHECK(buffer_names.count("features.0.1.num_batches_tracked") == 1);
  CHECK(last.at("features.0.1.num_batches_tracked").item<int64_t>() == kSteps);
}

TEST_CASE("ModelEma save/load resumes bit-identically, into a copy made from other weights") {
  const auto options = ModelEmaOptions().decay(0.95).warmup(3);
  Trainer trainer(tiny_model(11));
  ModelEma<MobileNetV2> straight(trainer.model(), options);
  for (int i = 0; i < 6; ++i) {
    trainer.step();
    straight.update(trainer.model());
  }
  TempDir dir("ema-resume");
  {
    torch::serialize::OutputArchive outer, archive;
    straight.save(archive);
    outer.write("ema", archive);
    outer.save_to(dir / "ema.pt");
  }
  ModelEma<MobileNetV2> resumed(tiny_model(99), options);  // different weights, 0 updates
  REQUIRE_FALSE(identical(*resumed.module(), *straight.module()));
  {
    torch::serialize::InputArchive outer, archive;
    outer.load_from(dir / "ema.pt");
    REQUIRE(outer.try_read("ema", archive));
    resumed.load(archive);
  }
  CHECK(resumed.updates() == 6);
  CHECK(identical(*resumed.module(), *straight.module()));
  for (const auto& p : resumed.module()->parameters()) {
    if (p.dim() == 4) CHECK(p.is_contiguous(at::MemoryFormat::ChannelsLast));
    CHECK_FALSE(p.requires_grad());
  }
  for (int i = 0; i < 5; ++i) {
    trainer.step();
    straight.update(trainer.model());
    resumed.update(trainer.model());
  }
  CHECK(resumed.updates() == 11);
  CHECK(identical(*resumed.module(), *straight.module()));

  SUBCASE("a saved EMA with other options or another model is refused, and nothing changes") {
    torch::serialize::OutputArchive archive;
    straight.save(archive);
    archive.save_to(dir / "flat.pt");
    auto load_into = [&](ModelEma<MobileNetV2>& ema) {
      torch::serialize::InputArchive in;
      in.load_from(dir / "flat.pt");
      ema.load(in);
    };
    ModelEma<MobileNetV2> other_decay(tiny_model(3), ModelEmaOptions().decay(0.99).warmup(3));
    auto m = message_of([&] { load_into(other_decay); });
    CHECK(m.find("saved with decay 0.95") != std::string::npos);
    CHECK(m.find("this ModelEma has decay 0.99") != std::string::npos);
    CHECK(other_decay.updates() == 0);

    ModelEma<MobileNetV2> other_classes(tiny_model(3, 5), options);
    const auto before = snapshot(*other_classes.module());
    m = message_of([&] { load_into(other_classes); });
    CHECK(m.find("classifier.1.weight") != std::string::npos);
    CHECK(m.find("[6, 1280]") != std::string::npos);
    CHECK(other_classes.updates() == 0);
    CHECK(torch::equal(snapshot(*other_classes.module()).at("features.0.0.weight"),
                       before.at("features.0.0.weight")));

    torch::serialize::OutputArchive empty;
    empty.save_to(dir / "empty.pt");
    torch::serialize::InputArchive in;
    in.load_from(dir / "empty.pt");
    m = message_of([&] { other_classes.load(in); });
    CHECK(m.find("has no 'updates'") != std::string::npos);
  }
}

TEST_CASE("the EMA copy: no grad, eval mode, channels-last kept, the CPU RNG untouched") {
  auto model = tiny_model(5);
  torch::manual_seed(123);
  const auto expected_draw = torch::rand({4});
  torch::manual_seed(123);
  (void)model->clone();
  CHECK_FALSE(torch::equal(torch::rand({4}), expected_draw));  // clone() alone draws numbers
  torch::manual_seed(123);
  ModelEma ema(model);  // ModelEma<MobileNetV2>, deduced
  CHECK(torch::equal(torch::rand({4}), expected_draw));  // ... which ModelEma gives back

  CHECK(identical(*ema.module(), *model));  // the average starts at the model's weights
  CHECK_FALSE(ema.module()->is_training());
  CHECK(model->is_training());
  CHECK(ema.module().ptr() != model.ptr());
  for (const auto& p : ema.module()->parameters()) {
    CHECK_FALSE(p.requires_grad());
    if (p.dim() == 4) CHECK(p.is_contiguous(at::MemoryFormat::ChannelsLast));
  }
  for (const auto& p : model->parameters()) CHECK(p.requires_grad());
  Trainer trainer(model);
  trainer.step();
  ema.update(model);
  for (const auto& p : ema.module()->parameters()) {
    if (p.dim() == 4) CHECK(p.is_contiguous(at::MemoryFormat::ChannelsLast));
    CHECK_FALSE(p.grad().defined());
  }
  // The decay schedule: d_n = decay * (1 - exp(-n / warmup)); warmup 0 keeps the decay.
  CHECK(ema.decay_at(2000) == doctest::Approx(0.9997 * (1 - std::exp(-1.0))));
  CHECK(ModelEma<MobileNetV2>(model, ModelEmaOptions().warmup(0)).decay_at(1) == 0.9997);
}

TEST_CASE("ModelEma over a type-erased module pointer, and on an explicit device, averages the "
          "same") {
  Trainer trainer(tiny_model(21));
  const auto options = ModelEmaOptions().decay(0.9).warmup(2);
  ModelEma<MobileNetV2> typed(trainer.model(), options);
  std::shared_ptr<torch::nn::Module> erased_model = trainer.model().ptr();
  ModelEma<std::shared_ptr<torch::nn::Module>> erased(erased_model, options);
  ModelEma<MobileNetV2> on_cpu(trainer.model(), ModelEmaOptions(options).device(torch::kCPU));
  for (int i = 0; i < 3; ++i) {
    trainer.step();
    typed.update(trainer.model());
    erased.update(*erased_model);
    on_cpu.update(*trainer.model());
  }
  CHECK(identical(*erased.module(), *typed.module()));
  CHECK(identical(*on_cpu.module(), *typed.module()));
}

TEST_CASE("ModelEma on CUDA: the copy stays on the model's device or the CPU, same numbers") {
  if (!torch::cuda::is_available()) {
    MESSAGE("CUDA not available: skipped");
    return;
  }
  Trainer cpu(tiny_model(31));
  auto gpu_model = tiny_model(31);
  gpu_model->to(torch::kCUDA);
  const auto options = ModelEmaOptions().decay(0.9).warmup(2);
  ModelEma<MobileNetV2> reference(cpu.model(), options);
  ModelEma<MobileNetV2> on_gpu(gpu_model, options);
  ModelEma<MobileNetV2> gpu_to_cpu(gpu_model, ModelEmaOptions(options).device(torch::kCPU));
  for (const auto& p : on_gpu.module()->parameters()) {
    CHECK(p.is_cuda());
    if (p.dim() == 4) CHECK(p.is_contiguous(at::MemoryFormat::ChannelsLast));
  }
  CHECK(gpu_to_cpu.module()->parameters()[0].is_cpu());
  for (int i = 0; i < 3; ++i) {
    cpu.step();
    {  // the GPU model follows the CPU model's weights exactly
      torch::NoGradGuard no_grad;
      const auto src = state_dict(*cpu.model());
      const auto dst = state_dict(*gpu_model);
      for (size_t j = 0; j < src.size(); ++j) dst[j].second.copy_(src[j].second);
    }
    reference.update(cpu.model());
    on_gpu.update(gpu_model);
    gpu_to_cpu.update(gpu_model);
  }
  CHECK(identical(*gpu_to_cpu.module(), *reference.module()));  // same CPU arithmetic
  const auto a = state_dict(*on_gpu.module()), b = state_dict(*reference.module());
  for (size_t j = 0; j < a.size(); ++j) {
    CAPTURE(a[j].first);
    CHECK(a[j].second.is_cuda());
    CHECK(torch::allclose(a[j].second.cpu().to(torch::kDouble), b[j].second.to(torch::kDouble),
                          1e-6, 1e-7));
  }
}

TEST_CASE("bad options and a mismatched model fail with messages naming the option or tensor") {
  auto model = tiny_model(1);
  for (double decay : {0.0, 1.0, 1.5, -0.1, std::nan("")}) {
    CAPTURE(decay);
    const auto m =
        message_of([&] { (void)ModelEma<MobileNetV2>(model, ModelEmaOptions().decay(decay)); });
    CHECK(m.find("ModelEmaOptions: decay must be in (0, 1), got") != std::string::npos);
  }
  const auto m =
      message_of([&] { (void)ModelEma<MobileNetV2>(model, ModelEmaOptions().warmup(-1)); });
  CHECK(m.find("ModelEmaOptions: warmup must be a finite number of updates >= 0, got -1") !=
        std::string::npos);
  CHECK_THROWS_AS(
      (void)ModelEma<MobileNetV2>(
          model, ModelEmaOptions().warmup(std::numeric_limits<double>::infinity())),
      c10::Error);

  CHECK(message_of([] { (void)ModelEma<MobileNetV2>(MobileNetV2(nullptr)); })
            .find("ModelEma: the model is empty") != std::string::npos);

  ModelEma<MobileNetV2> ema(model);
  auto other = tiny_model(1, 5);
  const auto u = message_of([&] { ema.update(other); });
  CHECK(u.find("classifier.1.weight") != std::string::npos);
  CHECK(u.find("[5, 1280]") != std::string::npos);
  CHECK(ema.updates() == 0);
  CHECK(identical(*ema.module(), *model));
}
