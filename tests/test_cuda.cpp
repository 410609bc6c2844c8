// CUDA: fp16 AMP with GradScaler, NCCL, pinned-memory batches, the Predictor and the predict
// program. Compiled everywhere (CTest label `cuda`); without a GPU every case says so and
// passes without checking anything. scripts/device_check.sh runs them on a GPU machine.
#include <doctest/doctest.h>
#include <mobilenet/data.hpp>
#include <mobilenet/demo.hpp>
#include <mobilenet/distributed.hpp>
#include <mobilenet/inference.hpp>
#include <mobilenet/io/process.hpp>
#include <mobilenet/mobilenet.hpp>

#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "grad_scaler_fixture.hpp"
#include "support.hpp"

using namespace mobilenet;
using mobilenet::test::TempDir;

namespace {

// Each case starts with this: without a GPU it prints why and the case passes unchecked.
bool cuda_or_skip() {
  if (torch::cuda::is_available()) return true;
  MESSAGE("CUDA is not available (LibTorch " << TORCH_VERSION << "): skipped");
  return false;
}

// The demo data set (coloured shapes, 6 classes) in `dir`; returns the validation samples.
std::vector<Sample> demo_samples(const TempDir& dir, int64_t images, std::vector<std::string>* names) {
  const auto splits =
      write_demo_data(dir.path().string(), DemoDataOptions().train(1).val(images).size(48));
  const auto coco = load_coco(splits.back().annotation_file);
  if (names) *names = coco.class_names();
  return coco.samples(splits.back().image_dir);
}


constexpr const char* kNcclRankCase = "NCCL rank program run by the two-rank test";

}  // namespace

TEST_CASE("GradScaler on CUDA replays PyTorch's GradScaler (fp16 overflow, backoff, growth, "
          "clipping) through the fused AMP kernels") {
  if (!cuda_or_skip()) return;
  const auto scenarios = mobilenet::test::read_grad_scaler_fixture(
      std::string(MOBILENET_TEST_DIR) + "/data/grad_scaler.txt");
  REQUIRE(scenarios.size() == 3);
  for (const auto& s : scenarios) {
    CHECK(mobilenet::test::replay_grad_scaler(s, torch::kCUDA) > 0);
  }
}

TEST_CASE("AMP training of the seed model on CUDA: fp16 convolutions, finite losses close to fp32") {
  if (!cuda_or_skip()) return;
  constexpr int64_t kSteps = 5;
  constexpr int64_t kBatch = 8;
  torch::manual_seed(0);
  MobileNetV2 fp32(seed_model_options());
  MobileNetV2 amp(seed_model_options());
  {
    torch::NoGradGuard no_grad;
    const auto src = fp32->named_parameters(), dst = amp->named_parameters();
    for (const auto& p : src) dst[p.key()].copy_(p.value());
  }
  fp32->to(torch::kCUDA);
  amp->to(torch::kCUDA);
  to_channels_last(*amp);  // the fast AMP layout; the reference stays NCHW
  auto make_opt = [](MobileNetV2& m) {
    return std::make_unique<torch::optim::SGD>(m->parameters(),
                                               torch::optim::SGDOptions(0.01).momentum(0.9));
  };
  auto opt32 = make_opt(fp32), opt16 = make_opt(amp);
  // A scale that does not overflow fp16 here: every step is taken, so both runs follow the same
  // trajectory (skips and backoff are the fixture case's business).
  GradScaler off(GradScalerOptions().enabled(false)), scaler(GradScalerOptions().init_scale(1024));
  const auto loss = [](const torch::Tensor& l, const torch::Tensor& t) {
    return torch::binary_cross_entropy_with_logits(l, t);
  };
  const auto o32 = TrainStepOptions(torch::kCUDA);
  const auto o16 = TrainStepOptions(torch::kCUDA).amp(true);

  auto gen = at::detail::createCPUGenerator(5);
  const auto x = torch::randn({kBatch, 3, 256, 256}, gen).to(torch::kCUDA);
  const auto y = (torch::rand({kBatch, 80}, gen) > 0.9).to(torch::kFloat).to(torch::kCUDA);
  {  // Under the guard the network really runs in fp16.
    AutocastGuard guard(torch::kCUDA, true);
    torch::NoGradGuard no_grad;
    const auto features = amp->forward_features(x.contiguous(at::MemoryFormat::ChannelsLast));
    const bool fp16 = features.scalar_type() == torch::kHalf;  // doctest cannot print a ScalarType
    CHECK(fp16);
  }
  int64_t skipped = 0;
  for (int64_t i = 0; i < kSteps; ++i) {
    INFO("step " << i);
    const auto r32 = train_step(fp32, *opt32, off, loss, x, y, o32);
    const auto r16 =
        train_step(amp, *opt16, scaler, loss, x.contiguous(at::MemoryFormat::ChannelsLast), y, o16);
    CHECK(std::isfinite(r16.loss));
    CHECK(r16.loss == doctest::Approx(r32.loss).epsilon(i == 0 ? 2e-3 : 2e-2));
    skipped += r16.skipped;
  }
  CHECK(skipped == 0);
  MESSAGE("GradScaler scale after " << kSteps << " steps: " << scaler.scale_value() << ", skipped "
                                    << skipped);
}

TEST_CASE("NCCL: a one-process group runs all-reduce, broadcast, all-gather and barrier on the GPU") {
  if (!cuda_or_skip()) return;
  if (!MOBILENET_HAS_NCCL) {
    MESSAGE("this LibTorch build has no ProcessGroupNCCL (USE_C10D_NCCL): skipped");
    return;
  }
  DistributedEnv env;
  env.master_port = free_port();
  Communicator comm(env, DistributedOptions().backend("nccl").single_process_group(true)
                             .timeout(std::chrono::seconds(60)));
  REQUIRE(comm.backend() == "nccl");
  CHECK(comm.device().is_cuda());
  auto t = torch::arange(6, torch::TensorOptions().dtype(torch::kFloat).device(torch::kCUDA));
  comm.all_reduce(t);
  CHECK(torch::equal(t.cpu(), torch::arange(6, torch::kFloat)));
  // Tensors elsewhere travel through the GPU and come back, in place.
  auto reduced = torch::tensor({1.5, -2.0});
  comm.all_reduce(reduced, ReduceOp::Max);
  CHECK(reduced.is_cpu());
  CHECK(torch::equal(reduced, torch::tensor({1.5, -2.0})));
  std::vector<torch::Tensor> many{torch::ones({3}, torch::kCUDA), torch::arange(4)};
  comm.broadcast(many);
  CHECK(torch::equal(many[1], torch::arange(4)));
  const auto rows = torch::rand({3, 2}, torch::kCUDA);
  CHECK(torch::equal(comm.all_gather(rows), rows));
  CHECK(comm.all_reduce(7.0) == 7);
  comm.barrier();
}

TEST_CASE("NCCL rank program run by the two-rank test" * doctest::skip()) {
  auto comm = init_distributed(DistributedOptions().backend("nccl").timeout(std::chrono::seconds(60)));
  auto t = torch::full({4}, double(comm->rank() + 1),
                       torch::TensorOptions().device(comm->device()));
  comm->all_reduce(t);
  TORCH_CHECK(torch::equal(t.cpu(), torch::full({4}, 3.0)), "rank ", comm->rank(),
              ": all_reduce gave ", t);
}

TEST_CASE("NCCL: two ranks, one GPU each, sum their tensors") {
  if (!cuda_or_skip()) return;
  if (!MOBILENET_HAS_NCCL || torch::cuda::device_count() < 2) {
    // NCCL refuses two ranks on one GPU ("Duplicate GPU detected").
    MESSAGE("needs ProcessGroupNCCL and 2 GPUs (NCCL runs one rank per GPU); this machine has "
            << torch::cuda::device_count() << ": skipped");
    return;
  }
  launch_local(LaunchOptions(2).job_timeout(std::chrono::minutes(2)),
               {"--no-skip", std::string("--test-case=") + kNcclRankCase, "--no-version"});
}

TEST_CASE("pinned-memory batches copied to the GPU without blocking equal pageable ones") {
  if (!cuda_or_skip()) return;
  TempDir dir("cuda-pinned");
  const auto samples = demo_samples(dir, 40, nullptr);
  const auto tf = train_transform(48);
  const auto options = LoaderOptions(8).workers(3).seed(3);
  DataLoader pinned(samples, tf, LoaderOptions(options).pin_memory(true));
  DataLoader pageable(samples, tf, LoaderOptions(options).pin_memory(false));
  // Every copy is issued before any is waited for, while the workers keep filling new
  // pinned buffers: a buffer reused too early would show up as a wrong batch.
  std::vector<torch::Tensor> on_gpu, targets;
  for (auto& batch : pinned.epoch(0)) {
    CHECK(batch.images.is_pinned());
    CHECK(batch.targets.is_pinned());
    on_gpu.push_back(batch.images.to(torch::kCUDA, /*non_blocking=*/true));
    targets.push_back(batch.targets.to(torch::kCUDA, /*non_blocking=*/true));
  }
  torch::cuda::synchronize();
  size_t k = 0;
  for (auto& batch : pageable.epoch(0)) {
    REQUIRE(k < on_gpu.size());
    CHECK_FALSE(batch.images.is_pinned());
    CHECK(torch::equal(on_gpu[k].cpu(), batch.images));
    CHECK(torch::equal(targets[k].cpu(), batch.targets));
    ++k;
  }
  CHECK(k == on_gpu.size());
  CHECK(k == 5);
}

TEST_CASE("Predictor on CUDA gives the CPU Predictor's probabilities, prepared or not") {
  if (!cuda_or_skip()) return;
  TempDir dir("cuda-predictor");
  std::vector<std::string> names;
  const auto samples = demo_samples(dir, 6, &names);
  torch::manual_seed(4);
  const auto spec = ModelSpec().num_classes(int64_t(names.size())).width_mult(0.5).image_size(48)
                        .class_names(names);
  Classifier model = make_model(spec);
  for (auto& b : model.module().named_buffers()) {  // BN folding must matter
    if (b.key().find("running_mean") != std::string::npos) b.value().normal_(0, 0.1);
    if (b.key().find("running_var") != std::string::npos) b.value().uniform_(0.5, 1.5);
  }
  save_checkpoint(dir / "model.pt", model.module(), spec, TrainingState());
  std::vector<std::string> files;
  for (const auto& s : samples) files.push_back(s.path);
  const auto cpu = Predictor(dir / "model.pt", PredictorOptions().prepare(false)).predict(files);
  for (const bool prepare : {false, true}) {
    CAPTURE(prepare);
    const auto gpu = Predictor(dir / "model.pt", PredictorOptions().device(torch::kCUDA).prepare(prepare))
                         .predict(files);
    REQUIRE(gpu.size() == cpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) {
      for (size_t c = 0; c < names.size(); ++c) {
        // TF32 convolutions (PyTorch's default on Ampere and later) round to ~1e-3.
        CHECK(gpu[i].probabilities[c] == doctest::Approx(cpu[i].probabilities[c]).epsilon(5e-3));
      }
    }
  }
}

#ifdef MOBILENET_PREDICT
namespace {
// A program's stdout, run from an argument vector (no shell).
std::string run_program(const std::vector<std::string>& args) {
  const auto r = mobilenet::run_process(args, mobilenet::ProcessOptions().capture_stdout(true));
  REQUIRE_MESSAGE(r.ok(), args[0] << " failed");
  return r.out;
}

// (file, class) -> probability from `predict --json` output.
std::map<std::string, double> parse_predict_json(const std::string& text) {
  std::map<std::string, double> out;
  const std::regex file_re("\"file\": \"([^\"]*)\"");
  const std::regex label_re("\"class\": \"([^\"]*)\", \"index\": [0-9]+, \"probability\": ([-0-9.e+]+)");
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch file;
    if (!std::regex_search(line, file, file_re)) continue;
    for (std::sregex_iterator it(line.begin(), line.end(), label_re), end; it != end; ++it) {
      out[file[1].str() + " " + (*it)[1].str()] = std::stod((*it)[2].str());
    }
  }
  return out;
}
}  // namespace
#endif

TEST_CASE("the predict program on CUDA prints the CPU run's labels and probabilities") {
  if (!cuda_or_skip()) return;
#ifndef MOBILENET_PREDICT
  MESSAGE("examples are not built (MOBILENET_BUILD_EXAMPLES=OFF): skipped");
#else
  TempDir dir("cuda-predict");
  std::vector<std::string> names;
  const std::string images =
      std::filesystem::path(demo_samples(dir, 5, &names).front().path).parent_path().string();
  torch::manual_seed(9);
  const auto spec = ModelSpec().num_classes(int64_t(names.size())).width_mult(0.5).image_size(48)
                        .class_names(names);
  save_checkpoint(dir / "model.pt", make_model(spec).module(), spec, TrainingState());
  // Threshold 0: every class is printed with its probability.
  const auto args = [&](const char* device) {
    return std::vector<std::string>{MOBILENET_PREDICT, "--checkpoint", dir / "model.pt",
                                    "--json", "--threshold", "0", images, "--device", device};
  };
  const auto cpu = parse_predict_json(run_program(args("cpu")));
  const auto gpu = parse_predict_json(run_program(args("cuda")));
  REQUIRE(cpu.size() == 5 * names.size());
  REQUIRE(gpu.size() == cpu.size());
  for (const auto& entry : cpu) {  // no structured binding: INFO captures it in a lambda
    const auto& key = entry.first;
    INFO(key);
    REQUIRE(gpu.count(key) == 1);
    CHECK(gpu.at(key) == doctest::Approx(entry.second).epsilon(5e-3));
  }
#endif
}

TEST_CASE("a CUDA-enabled LibTorch compiles and links this library's CUDA and NCCL paths") {
#if defined(USE_C10D_NCCL)
  // torch_cuda defines USE_C10D_NCCL for its users: the NCCL communicator must be compiled in.
  CHECK(MOBILENET_HAS_NCCL == 1);
#endif
#if TORCH_VERSION_MAJOR >= 2
  const bool cudart = at::detail::getCUDAHooks().hasCUDART();
#else
  const bool cudart = false;  // 1.13's hooks cannot tell without a GPU
#endif
  MESSAGE("LibTorch ", TORCH_VERSION, ": CUDA runtime linked: ", cudart,
          ", NCCL communicator compiled: ", MOBILENET_HAS_NCCL,
          ", GPUs: ", torch::cuda::device_count());
#if defined(USE_C10D_NCCL)
  CHECK(cudart);
#endif
}
