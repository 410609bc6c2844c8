// Data-parallel training on c10d/Gloo over loopback. The multi-process cases start this
// same test binary as the ranks (launch_local re-executes it with --no-skip, running only
// the "rank program" case below); the reference is a plain single-process LibTorch run.
#include <mobilenet/distributed.hpp>
#include <mobilenet/models/mobilenet_v2.hpp>
#include <mobilenet/train/optim.hpp>
#include <mobilenet/train/trainer.hpp>

#include <doctest/doctest.h>

#include "support.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

namespace {

using mobilenet::Communicator;
using mobilenet::DistributedDataParallel;
using mobilenet::DistributedDataParallelOptions;
using mobilenet::DistributedEnv;
using mobilenet::DistributedError;
using mobilenet::DistributedOptions;

// SGD steps compared with the single-process run.
constexpr int64_t kSteps = 4;
// Global batch; each of the 2 ranks takes half.
constexpr int64_t kGlobalBatch = 8;
constexpr int64_t kWorld = 2;
constexpr int64_t kClasses = 4;
// Collective timeout of the failure scenarios: short, so the tests are quick.
constexpr auto kFailTimeout = std::chrono::seconds(3);
// Their rendezvous keeps a long wait: starting a rank may take seconds on a loaded machine.
constexpr auto kRendezvousTimeout = std::chrono::seconds(60);
// Global batch and input side of the MobileNetV2 + SyncBatchNorm2d scenario.
constexpr int64_t kModelBatch = 8;
constexpr int64_t kModelImage = 32;
constexpr const char* kRankCase = "distributed rank program run by the launcher tests";

/// Sets environment variables for its lifetime, restoring the previous values.
class EnvGuard {
 public:
  EnvGuard(std::map<std::string, std::string> values) {
    for (const auto& [name, value] : values) {
      const char* old = std::getenv(name.c_str());
      saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(name.c_str(), value.c_str(), 1);
    }
  }
  ~EnvGuard() {
    for (const auto& [name, old] : saved_) {
      if (old) {
        ::setenv(name.c_str(), old->c_str(), 1);
      } else {
        ::unsetenv(name.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// conv + BN + ReLU + pool + linear: small, but BN makes per-rank vs global statistics matter.
template <typename Norm>
torch::nn::Sequential tiny_model(uint64_t seed) {
  torch::manual_seed(seed);
  return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 6, 3).padding(1)),
                               Norm(6), torch::nn::ReLU(), torch::nn::AdaptiveAvgPool2d(1),
                               torch::nn::Flatten(), torch::nn::Linear(6, kClasses));
}

struct Data {
  torch::Tensor x, y;  // kSteps x kGlobalBatch x ...
};

Data make_data() {
  torch::manual_seed(123);
  Data d;
  d.x = torch::randn({kSteps, kGlobalBatch, 3, 6, 6});
  d.y = (torch::rand({kSteps, kGlobalBatch, kClasses}) > 0.5).to(torch::kFloat);
  return d;
}

torch::optim::SGD make_sgd(torch::nn::Sequential& model) {
  return torch::optim::SGD(model->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
}

torch::Tensor bce(const torch::Tensor& logits, const torch::Tensor& target) {
  return torch::binary_cross_entropy_with_logits(logits, target);
}

std::vector<torch::Tensor> state_of(const torch::nn::Sequential& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model->parameters()) {
    out.push_back(p.detach().clone());
  }
  for (const auto& b : model->buffers()) {
    out.push_back(b.detach().clone());
  }
  return out;
}

// A small MobileNetV2 (every BatchNorm of the full model, 1x1 maps at the end), without
// dropout so ranks and the single process compute the same function.
mobilenet::MobileNetV2Options small_v2(mobilenet::NormLayer norm_layer) {
  return mobilenet::MobileNetV2Options()
      .num_classes(kClasses)
      .width_mult(0.25)
      .dropout(0.0)
      .norm_layer(std::move(norm_layer));
}

struct ModelData {
  torch::Tensor x, y;  // kModelBatch x ...
};

ModelData make_model_data(torch::Dtype dtype) {
  torch::manual_seed(321);
  ModelData d;
  d.x = torch::randn({kModelBatch, 3, kModelImage, kModelImage}).to(dtype);
  d.y = (torch::rand({kModelBatch, kClasses}) > 0.5).to(dtype);
  return d;
}

// The model scenario runs in both: float64 shows the algorithm is exact, float32 what
// training sees (rounding grows through 52 norm layers).
const std::vector<std::pair<torch::Dtype, std::string>> kModelDtypes{{torch::kDouble, "f64"},
                                                                     {torch::kFloat, "f32"}};

// running_mean, running_var and num_batches_tracked of every norm layer, in module order.
std::vector<torch::Tensor> norm_statistics(const torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (mobilenet::is_batch_norm(*m)) {
      for (const auto& name : {"running_mean", "running_var", "num_batches_tracked"}) {
        out.push_back(m->named_buffers(/*recurse=*/false)[name].clone());
      }
    }
  }
  return out;
}

std::vector<torch::Tensor> gradients(const torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (const auto& p : model.parameters()) {
    out.push_back(p.grad().clone());
  }
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// ---- the rank program ------------------------------------------------------------------------

// SyncBatchNorm, overlapped all-reduce with many tiny buckets, plus the metric helpers.
void rank_train_sync_bn(const std::string& out_dir) {
  auto comm = mobilenet::init_distributed();
  REQUIRE(comm->world_size() == kWorld);
  REQUIRE(comm->backend() == "gloo");
  const int64_t r = comm->rank();
  // Different initial weights per rank: the constructor's broadcast must fix that.
  auto model = tiny_model<mobilenet::SyncBatchNorm2d>(7 + static_cast<uint64_t>(r));
  DistributedDataParallel ddp(model, comm,
                              DistributedDataParallelOptions().bucket_mb(1e-4).overlap(true));
  CHECK(ddp.bucket_numels().size() >= 4);
  auto opt = make_sgd(model);
  const auto data = make_data();
  const int64_t half = kGlobalBatch / kWorld;
  for (int64_t k = 0; k < kSteps; ++k) {
    opt.zero_grad();
    bce(model->forward(data.x[k].narrow(0, r * half, half)), data.y[k].narrow(0, r * half, half))
        .backward();
    ddp.synchronize();
    opt.step();
  }
  CHECK(ddp.stats().steps == kSteps);
  CHECK(ddp.stats().buckets_started_in_backward > 0);
  torch::save(state_of(model), out_dir + "/rank" + std::to_string(r) + ".pt");

  // Metric helpers: sums of counts and tensors, max, variable-length gathers.
  CHECK(comm->all_reduce(double(r + 1)) == 3);
  CHECK(comm->all_reduce(0.25 * static_cast<double>(r + 1)) == doctest::Approx(0.75));
  CHECK(comm->all_reduce(double(r), mobilenet::ReduceOp::Min) == 0);
  auto sums = torch::tensor({1.0, static_cast<double>(r)});
  comm->all_reduce(sums);
  CHECK(torch::equal(sums, torch::tensor({2.0, 1.0})));
  auto maxima = torch::tensor({static_cast<double>(r), -static_cast<double>(r)});
  comm->all_reduce(maxima, mobilenet::ReduceOp::Max);
  CHECK(torch::equal(maxima, torch::tensor({1.0, 0.0})));
  // Not contiguous: reduced through a copy, written back in place.
  auto strided = torch::full({2, 2}, static_cast<double>(r + 1)).t();
  comm->all_reduce(strided);
  CHECK(torch::equal(strided, torch::full({2, 2}, 3.0, torch::kDouble)));
  auto mine = torch::full({r + 2, 3}, static_cast<float>(r));  // 2 rows on rank 0, 3 on rank 1
  auto all = comm->all_gather(mine);
  CHECK(torch::equal(all, torch::cat({torch::zeros({2, 3}), torch::ones({3, 3})})));
  comm->barrier();

  // A parameter only rank 1 uses, and a frozen one: no hang (buckets still start in the
  // same order on both ranks), the unused side counts as a zero gradient.
  auto net = std::make_shared<torch::nn::Module>();
  auto used = net->register_module("used", torch::nn::Linear(3, 2));
  auto sometimes = net->register_module("sometimes", torch::nn::Linear(3, 2));
  auto frozen = net->register_module("frozen", torch::nn::Linear(3, 2));
  for (auto& p : frozen->parameters()) {
    p.requires_grad_(false);
  }
  DistributedDataParallel ddp2(net, comm, DistributedDataParallelOptions().bucket_mb(1e-6));
  CHECK(ddp2.bucket_numels().size() == 6);  // one parameter per bucket
  auto x = torch::full({4, 3}, static_cast<float>(r + 1));
  auto loss = used->forward(x).sum() + frozen->forward(x).sum();
  if (r == 1) {
    loss = loss + sometimes->forward(x).sum();
  }
  loss.backward();
  ddp2.synchronize();
  // d/dW of sum(W x + b) over 4 rows of value r+1 is 4(r+1); averaged over ranks 0 and 1.
  CHECK(torch::equal(used->weight.grad(), torch::full({2, 3}, 6.0f)));
  CHECK(torch::equal(used->bias.grad(), torch::full({2}, 4.0f)));
  CHECK(torch::equal(sometimes->weight.grad(), torch::full({2, 3}, 4.0f)));
  CHECK(torch::equal(sometimes->bias.grad(), torch::full({2}, 2.0f)));
  CHECK_FALSE(frozen->weight.grad().defined());
}

// Per-rank BatchNorm, all-reduce after backward, gradient accumulation with no_sync.
void rank_train_per_rank_bn(const std::string& out_dir) {
  auto comm = mobilenet::init_distributed();
  const int64_t r = comm->rank();
  auto model = tiny_model<torch::nn::BatchNorm2d>(7);
  DistributedDataParallel ddp(model, comm, DistributedDataParallelOptions().overlap(false));
  auto opt = make_sgd(model);
  const auto data = make_data();
  const int64_t half = kGlobalBatch / kWorld;
  const int64_t micro = half / 2;
  for (int64_t k = 0; k < kSteps; ++k) {
    opt.zero_grad();
    auto x = data.x[k].narrow(0, r * half, half);
    auto y = data.y[k].narrow(0, r * half, half);
    {
      auto guard = ddp.no_sync();
      (0.5 * bce(model->forward(x.narrow(0, 0, micro)), y.narrow(0, 0, micro))).backward();
    }
    (0.5 * bce(model->forward(x.narrow(0, micro, micro)), y.narrow(0, micro, micro))).backward();
    ddp.synchronize();
    opt.step();
  }
  torch::save(state_of(model), out_dir + "/rank" + std::to_string(r) + ".pt");
}

// MobileNetV2 built with SyncBatchNorm2d through its norm_layer option: one forward of each
// rank's half of the batch, backward, synchronize. Also the Collectives interface.
void rank_sync_bn_model(const std::string& out_dir) {
  auto comm = mobilenet::init_distributed();
  const int64_t r = comm->rank();

  mobilenet::Collectives& collectives = *comm;
  CHECK(collectives.rank() == r);
  CHECK(collectives.world_size() == kWorld);
  CHECK(collectives.distributed());
  CHECK(collectives.is_main() == (r == 0));
  CHECK(collectives.all_reduce(0.5 + static_cast<double>(r)) == 2.0);  // 0.5 + 1.5
  auto rows = torch::full({r + 1, 2}, static_cast<float>(r + 10));  // 1 row, then 2 rows
  CHECK(torch::equal(collectives.all_gather(rows),
                     torch::tensor({{10.0f, 10.0f}, {11.0f, 11.0f}, {11.0f, 11.0f}})));
  std::vector<torch::Tensor> shared{torch::full({3}, static_cast<double>(r + 1))};
  collectives.broadcast(shared, /*root=*/1);
  CHECK(torch::equal(shared[0], torch::full({3}, 2.0, torch::kDouble)));
  collectives.barrier();

  for (const auto& [dtype, name] : kModelDtypes) {
    torch::manual_seed(11);
    mobilenet::MobileNetV2 model(small_v2(mobilenet::sync_batch_norm_layer(comm)));
    model->to(dtype);
    // Statistics must come from SyncBatchNorm2d alone, not from DDP's buffer averaging.
    DistributedDataParallel ddp(model, comm,
                                DistributedDataParallelOptions().average_buffers(false));
    model->train();
    const auto data = make_model_data(dtype);
    const int64_t half = kModelBatch / kWorld;
    bce(model->forward(data.x.narrow(0, r * half, half)), data.y.narrow(0, r * half, half))
        .backward();
    ddp.synchronize();
    const std::string tag = name + "_" + std::to_string(r) + ".pt";
    torch::save(norm_statistics(*model), out_dir + "/stats_" + tag);
    torch::save(gradients(*model), out_dir + "/grads_" + tag);
  }
}

// One rank dies (SIGKILL) or hangs after the first step; the other must throw.
void rank_failure(const std::string& out_dir, bool kill) {
  auto comm = mobilenet::init_distributed(
      DistributedOptions().timeout(kFailTimeout).rendezvous_timeout(kRendezvousTimeout));
  const int64_t r = comm->rank();
  auto model = tiny_model<torch::nn::BatchNorm2d>(7);
  DistributedDataParallel ddp(model, comm);
  const auto data = make_data();
  try {
    for (int64_t k = 0; k < kSteps; ++k) {
      if (k == 1 && r == 1) {
        if (kill) {
          ::raise(SIGKILL);
        }
        std::this_thread::sleep_for(std::chrono::seconds(120));
      }
      bce(model->forward(data.x[k].narrow(0, 4 * r, 4)), data.y[k].narrow(0, 4 * r, 4)).backward();
      ddp.synchronize();
    }
  } catch (const std::exception& e) {
    std::ofstream(out_dir + "/error" + std::to_string(r) + ".txt") << e.what();
    throw;
  }
}

// A Trainer on a tiny model and one in-memory batch of this rank's half; `seed` fixes the weights.
mobilenet::Trainer make_rank_trainer(std::shared_ptr<mobilenet::Collectives> world, const std::string& out,
                                     mobilenet::RunContract contract, bool resume, uint64_t seed) {
  torch::manual_seed(seed);
  const auto spec = mobilenet::ModelSpec().num_classes(kClasses).width_mult(0.25).image_size(16);
  mobilenet::Classifier model = mobilenet::make_model(spec);
  auto opt = mobilenet::make_optimizer(model.module(), mobilenet::OptimizerOptions("sgd", 0.1));
  return mobilenet::Trainer(
      model, spec, std::move(opt), [](const torch::Tensor& x, const torch::Tensor& y) { return bce(x, y); },
      mobilenet::TrainerOptions(out).epochs(2).resume(resume).collectives(std::move(world))
          .contract(std::move(contract)).log(nullptr).out(nullptr).progress(false));
}

std::unique_ptr<mobilenet::BatchSource> rank_batches(int64_t r) {
  const auto data = make_data();
  return mobilenet::batch_source(std::vector<mobilenet::BatchView>{
      {torch::rand({4, 3, 16, 16}), data.y[0].narrow(0, 4 * r, 4)}});
}

// Ranks whose Trainers fail write the message to out_dir/error<rank>.txt and rethrow.
void fit_or_record(mobilenet::Trainer& trainer, int64_t r, const std::string& out_dir) {
  auto source = rank_batches(r);
  try {
    trainer.fit(*source, *source);
  } catch (const std::exception& e) {
    std::ofstream(out_dir + "/error" + std::to_string(r) + ".txt") << e.what();
    throw;
  }
}

// Each rank builds a Trainer with its own contract: rank 1 was started with another lr.
void rank_trainer_contract(const std::string& out_dir) {
  auto comm = mobilenet::init_distributed(DistributedOptions().rendezvous_timeout(kRendezvousTimeout));
  const int64_t r = comm->rank();
  auto trainer = make_rank_trainer(comm, out_dir + "/run", {{"image_size", "16"}, {"lr", r == 0 ? "0.1" : "0.2"}},
                                   false, 3);
  fit_or_record(trainer, r, out_dir);
}

// Each rank resumes from "its own disk": out_dir/r<rank>/last.pt, written by different runs.
void rank_resume_mismatch(const std::string& out_dir) {
  auto comm = mobilenet::init_distributed(DistributedOptions().rendezvous_timeout(kRendezvousTimeout));
  const int64_t r = comm->rank();
  auto trainer = make_rank_trainer(comm, out_dir + "/r" + std::to_string(r), {}, true, 3);
  fit_or_record(trainer, r, out_dir);
}

// Runs kRankCase as 2 ranks of this binary with the given scenario.
void launch(const std::string& scenario, const std::string& out_dir,
            std::chrono::milliseconds grace = std::chrono::seconds(10)) {
  EnvGuard env({{"MOBILENET_TEST_SCENARIO", scenario},
                {"MOBILENET_TEST_OUT", out_dir},
                {"OMP_NUM_THREADS", "1"}});
  mobilenet::launch_local(mobilenet::LaunchOptions(kWorld).grace(grace),
                          {"--no-skip", std::string("--test-case=") + kRankCase, "--no-version"});
}

std::vector<torch::Tensor> load_state(const std::string& path) {
  std::vector<torch::Tensor> state;
  torch::load(state, path);
  return state;
}

void check_same(const std::vector<torch::Tensor>& got, const std::vector<torch::Tensor>& want,
                double tol, const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(what << ": tensor " << i);
    REQUIRE(got[i].sizes() == want[i].sizes());
    const double diff = (got[i].to(torch::kDouble) - want[i].to(torch::kDouble)).abs().max().item<double>();
    CHECK(diff <= tol);
  }
}

}  // namespace

TEST_CASE("distributed rank program run by the launcher tests" * doctest::skip()) {
  torch::set_num_threads(1);
  const std::string scenario = std::getenv("MOBILENET_TEST_SCENARIO");
  const std::string out = std::getenv("MOBILENET_TEST_OUT");
  if (scenario == "sync_bn") {
    rank_train_sync_bn(out);
  } else if (scenario == "sync_bn_model") {
    rank_sync_bn_model(out);
  } else if (scenario == "per_rank_bn") {
    rank_train_per_rank_bn(out);
  } else if (scenario == "trainer_contract") {
    rank_trainer_contract(out);
  } else if (scenario == "resume_mismatch") {
    rank_resume_mismatch(out);
  } else if (scenario == "kill" || scenario == "hang") {
    rank_failure(out, scenario == "kill");
  } else {
    FAIL("unknown scenario " << scenario);
  }
}

TEST_CASE("two Gloo ranks with SyncBatchNorm match one process on the global batch") {
  mobilenet::test::TempDir dir("dist-sync");
  launch("sync_bn", dir.path().string());
  torch::set_num_threads(1);
  // Reference: plain LibTorch, one process, BatchNorm2d on the whole batch.
  auto model = tiny_model<torch::nn::BatchNorm2d>(7);
  auto opt = make_sgd(model);
  const auto data = make_data();
  for (int64_t k = 0; k < kSteps; ++k) {
    opt.zero_grad();
    bce(model->forward(data.x[k]), data.y[k]).backward();
    opt.step();
  }
  const auto want = state_of(model);
  const auto rank0 = load_state(dir / "rank0.pt");
  const auto rank1 = load_state(dir / "rank1.pt");
  check_same(rank0, want, 1e-5, "rank 0 vs single process");
  check_same(rank1, rank0, 0.0, "rank 1 vs rank 0");
}

TEST_CASE("MobileNetV2 with the SyncBatchNorm2d norm_layer on 2 ranks matches BatchNorm2d on the global batch") {
  mobilenet::test::TempDir dir("dist-model");
  launch("sync_bn_model", dir.path().string());
  torch::set_num_threads(1);
  for (const auto& dtype_and_name : kModelDtypes) {  // clang 14 cannot CAPTURE a binding
    const auto dtype = dtype_and_name.first;
    const auto& name = dtype_and_name.second;
    CAPTURE(name);
    const bool f64 = dtype == torch::kDouble;
    // Reference: one process, the same weights with plain BatchNorm2d, the whole batch at once.
    torch::manual_seed(11);
    mobilenet::MobileNetV2 model(small_v2(nullptr));
    model->to(dtype);
    model->train();
    const auto data = make_model_data(dtype);
    bce(model->forward(data.x), data.y).backward();
    const auto want_stats = norm_statistics(*model);
    const auto want_grads = gradients(*model);
    REQUIRE(want_stats.size() == 3 * 52);  // every norm layer of MobileNetV2
    double scale = 0;  // largest gradient of the model
    for (const auto& g : want_grads) {
      scale = std::max(scale, g.abs().max().item<double>());
    }
    // Tolerance relative to each tensor's largest value, plus an absolute floor: the
    // projection BNs' running means and bias gradients are near 0 (the next BatchNorm
    // removes a constant shift).
    auto close = [](const torch::Tensor& got, const torch::Tensor& want, double rtol, double atol) {
      const auto g = got.to(torch::kDouble), w = want.to(torch::kDouble);
      return (g - w).abs().max().item<double>() <= rtol * w.abs().max().item<double>() + atol;
    };
    for (const std::string rank : {"0", "1"}) {
      CAPTURE(rank);
      const auto stats = load_state(dir / ("stats_" + name + "_" + rank + ".pt"));
      REQUIRE(stats.size() == want_stats.size());
      for (size_t i = 0; i < stats.size(); ++i) {
        INFO("norm layer " << i / 3 << ", statistic " << i % 3);
        CHECK(close(stats[i], want_stats[i], f64 ? 1e-10 : 2e-5, f64 ? 1e-12 : 1e-7));
      }
      const auto grads = load_state(dir / ("grads_" + name + "_" + rank + ".pt"));
      REQUIRE(grads.size() == want_grads.size());
      for (size_t i = 0; i < grads.size(); ++i) {
        INFO("gradient of parameter " << i);
        CHECK(close(grads[i], want_grads[i], f64 ? 1e-10 : 1e-3, (f64 ? 1e-12 : 1e-6) * scale));
      }
    }
  }
}

TEST_CASE("per-rank BatchNorm with no_sync accumulation matches one process on the same micro-batches") {
  mobilenet::test::TempDir dir("dist-perrank");
  launch("per_rank_bn", dir.path().string());
  torch::set_num_threads(1);
  // Per-rank BN normalizes each micro-batch by its own statistics; the single-process
  // equivalent forwards the 4 micro-batches separately and averages their losses.
  auto model = tiny_model<torch::nn::BatchNorm2d>(7);
  auto opt = make_sgd(model);
  const auto data = make_data();
  const int64_t micro = kGlobalBatch / kWorld / 2;
  for (int64_t k = 0; k < kSteps; ++k) {
    opt.zero_grad();
    torch::Tensor loss = torch::zeros({});
    for (int64_t m = 0; m < kGlobalBatch / micro; ++m) {
      loss = loss + bce(model->forward(data.x[k].narrow(0, m * micro, micro)),
                        data.y[k].narrow(0, m * micro, micro));
    }
    (loss / static_cast<double>(kGlobalBatch / micro)).backward();
    opt.step();
  }
  const auto rank0 = load_state(dir / "rank0.pt");
  const auto rank1 = load_state(dir / "rank1.pt");
  const auto want = state_of(model);
  const size_t n_params = model->parameters().size();
  check_same(std::vector<torch::Tensor>(rank0.begin(), rank0.begin() + n_params),
             std::vector<torch::Tensor>(want.begin(), want.begin() + n_params), 1e-5,
             "rank 0 parameters vs single process");
  // Running statistics are averaged in synchronize(): identical on both ranks.
  check_same(rank1, rank0, 0.0, "rank 1 vs rank 0");
}

TEST_CASE("Trainer: ranks started with different settings all fail, naming the fields") {
  mobilenet::test::TempDir dir("dist-contract");
  CHECK_THROWS(launch("trainer_contract", dir.path().string()));
  auto read = [&](const std::string& name) {
    std::ifstream in(dir / name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(read("error0.txt").find("ranks were started with different configurations") != std::string::npos);
  CHECK(read("error1.txt").find("lr: rank 0 0.1, this rank 0.2") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "run/last.pt"));  // nothing was trained
}

TEST_CASE("Trainer: ranks resuming from different last.pt files all fail") {
  mobilenet::test::TempDir dir("dist-resume");
  // Two single-process runs with different initial weights stand for two machines' disks.
  for (int64_t r = 0; r < kWorld; ++r) {
    auto trainer = make_rank_trainer(mobilenet::single_process(), dir / ("r" + std::to_string(r)), {}, false,
                                     uint64_t(10 + r));
    auto source = rank_batches(r);
    trainer.fit(*source, *source);
  }
  CHECK_THROWS(launch("resume_mismatch", dir.path().string()));
  for (int64_t r = 0; r < kWorld; ++r) {
    std::ifstream in(dir / ("error" + std::to_string(r) + ".txt"));
    const std::string text(std::istreambuf_iterator<char>(in), {});
    CHECK(text.find("ranks loaded different checkpoints") != std::string::npos);
  }
}

TEST_CASE("a killed rank makes the other exit non-zero with a clear error") {
  mobilenet::test::TempDir dir("dist-kill");
  const auto start = std::chrono::steady_clock::now();
  // A long grace: rank 0 must exit by itself, not be terminated by the launcher.
  std::string report;
  try {
    launch("kill", dir.path().string(), std::chrono::seconds(60));
  } catch (const DistributedError& e) {
    report = e.what();
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(report);
  CHECK(report.find("rank 1 was killed by signal 9") != std::string::npos);
  CHECK(report.find("rank 0 exited with status 1") != std::string::npos);
  CHECK(elapsed < 30.0);
  const auto error = read_text(dir / "error0.txt");
  INFO(error);
  CHECK(error.find("rank 0 of 2: gradient all-reduce") != std::string::npos);
  CHECK(error.find("a peer rank died") != std::string::npos);
}

TEST_CASE("a hung rank makes the other fail after the timeout and the launcher stops it") {
  mobilenet::test::TempDir dir("dist-hang");
  const auto start = std::chrono::steady_clock::now();
  std::string report;
  try {
    launch("hang", dir.path().string(), std::chrono::milliseconds(200));
  } catch (const DistributedError& e) {
    report = e.what();
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(report);
  CHECK(report.find("rank 0 of 2 failed first") != std::string::npos);
  CHECK(report.find("rank 0 exited with status 1") != std::string::npos);
  CHECK(report.find("rank 1 was killed by signal 15") != std::string::npos);
  // Well below the hung rank's 120 s sleep: the 3 s timeout fired.
  CHECK(elapsed < 30.0);
  const auto error = read_text(dir / "error0.txt");
  INFO(error);
  CHECK(error.find("rank 0 of 2: gradient all-reduce") != std::string::npos);
  CHECK(error.find("Timed out") != std::string::npos);
}

TEST_CASE("a bad MASTER_PORT or WORLD_SIZE gives a message naming the variable") {
  auto message_for = [](std::map<std::string, std::string> vars) {
    EnvGuard env(std::move(vars));
    try {
      DistributedEnv::from_env();
    } catch (const DistributedError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::map<std::string, std::string> good{
      {"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
  auto with = [&](const std::string& name, const std::string& value) {
    auto vars = good;
    vars[name] = value;
    return vars;
  };
  CHECK(message_for(with("MASTER_PORT", "http")) ==
        "MASTER_PORT must be a TCP port number in 1..65535, got 'http'");
  CHECK(message_for(with("MASTER_PORT", "70000")) ==
        "MASTER_PORT must be a TCP port number in 1..65535, got '70000'");
  CHECK(message_for(with("MASTER_PORT", "12x")) ==
        "MASTER_PORT must be a TCP port number in 1..65535, got '12x'");
  CHECK(message_for(with("RANK", "2")).find("RANK must be an integer") == 0);
  CHECK(message_for(with("WORLD_SIZE", "two")) == "WORLD_SIZE must be an integer in 1..1048576, got 'two'");
  const auto env = [&] {
    EnvGuard guard(good);
    return DistributedEnv::from_env();
  }();
  CHECK(env.rank == 0);
  CHECK(env.world_size == 2);
  CHECK(env.local_rank == 0);
  CHECK(env.master_port == 29500);
}

TEST_CASE("rendezvous waits the collective timeout unless rendezvous_timeout is set") {
  const auto only_timeout = DistributedOptions().timeout(std::chrono::milliseconds(1500));
  CHECK(only_timeout.effective_rendezvous_timeout() == std::chrono::milliseconds(1500));
  CHECK(DistributedOptions().effective_rendezvous_timeout() == std::chrono::minutes(5));
  CHECK(DistributedOptions()
            .timeout(std::chrono::seconds(1))
            .rendezvous_timeout(std::chrono::seconds(30))
            .effective_rendezvous_timeout() == std::chrono::seconds(30));
  // Rank 0 of 2, rank 1 never comes: gives up after the 1.5 s timeout, not a fixed 2 minutes.
  DistributedEnv env;
  env.world_size = 2;
  env.master_port = mobilenet::free_port();
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH_AS(Communicator(env, only_timeout),
                       doctest::Contains("rendezvous timed out after 1.5 s"), DistributedError);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 20.0);
}

TEST_CASE("non-finite, non-positive and absurd timeouts are rejected with the value") {
  using std::chrono::milliseconds;
  CHECK(mobilenet::timeout_from_seconds(2.5) == milliseconds(2500));
  CHECK(mobilenet::timeout_from_seconds(604800) == std::chrono::hours(24 * 7));
  CHECK_THROWS_WITH_AS(mobilenet::timeout_from_seconds(1e30, "--dist-timeout"),
                       "--dist-timeout must be a finite number of seconds in 0.001..604800, got 1e+30",
                       DistributedError);
  for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL, 0.0, -1.0, 1e-4, 604801.0}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH_AS(mobilenet::timeout_from_seconds(bad),
                         doctest::Contains("timeout must be a finite number of seconds"),
                         DistributedError);
  }
  // Durations built by hand are checked by the Communicator, even for one process.
  EnvGuard single(std::map<std::string, std::string>{{"WORLD_SIZE", "1"}});
  CHECK_THROWS_WITH_AS(Communicator::from_env(DistributedOptions().timeout(milliseconds::max())),
                       ("DistributedOptions: timeout must be in 1 ms..604800 s, got " +
                        std::to_string(milliseconds::max().count()) + " ms")
                           .c_str(),
                       DistributedError);
  CHECK_THROWS_WITH_AS(Communicator::from_env(DistributedOptions().timeout(milliseconds(0))),
                       "DistributedOptions: timeout must be in 1 ms..604800 s, got 0 ms",
                       DistributedError);
  CHECK_THROWS_WITH_AS(
      mobilenet::init_distributed(DistributedOptions().rendezvous_timeout(std::chrono::hours(24 * 365))),
      "DistributedOptions: rendezvous_timeout must be in 1 ms..604800 s, got 31536000000 ms",
      DistributedError);
  CHECK(Communicator::from_env(DistributedOptions().timeout(std::chrono::hours(24 * 7))) != nullptr);
}

TEST_CASE("rendezvous fails with a clear message when ranks are missing or the port is taken") {
  const auto quick = DistributedOptions().rendezvous_timeout(std::chrono::milliseconds(1500));
  DistributedEnv env;
  env.world_size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = mobilenet::free_port();

  const auto start = std::chrono::steady_clock::now();
  env.rank = 0;  // rank 1 never comes
  CHECK_THROWS_WITH_AS(Communicator(env, quick),
                       doctest::Contains("rendezvous timed out after 1.5 s"), DistributedError);
  env.rank = 1;  // nobody serves the port
  CHECK_THROWS_WITH_AS(Communicator(env, quick), doctest::Contains("rendezvous timed out: rank 1"),
                       DistributedError);
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < 20.0);

  // A port someone else listens on.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t length = sizeof(addr);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0);
  env.rank = 0;
  env.master_port = ntohs(addr.sin_port);
  CHECK_THROWS_WITH_AS(Communicator(env, quick),
                       doctest::Contains("rank 0 could not start the rendezvous server"),
                       DistributedError);
  ::close(fd);
}

TEST_CASE("one process needs no environment and its collectives are identities") {
  EnvGuard env(std::map<std::string, std::string>{{"WORLD_SIZE", "1"}});
  auto comm = Communicator::from_env();
  CHECK_FALSE(comm->distributed());
  CHECK(comm->backend() == "none");
  mobilenet::Collectives& collectives = *comm;
  CHECK(collectives.world_size() == 1);
  CHECK(collectives.is_main());
  CHECK(collectives.all_reduce(2.5) == 2.5);
  CHECK(torch::equal(collectives.all_gather(torch::ones({2, 3})), torch::ones({2, 3})));
  CHECK(comm->all_reduce(5.0, mobilenet::ReduceOp::Max) == 5);
  auto t = torch::arange(4);
  comm->all_reduce(t);
  CHECK(torch::equal(t, torch::arange(4)));
  CHECK(torch::equal(comm->all_gather(t), t));
  comm->barrier();
  auto model = tiny_model<torch::nn::BatchNorm2d>(1);
  DistributedDataParallel ddp(model, comm);
  auto x = torch::randn({4, 3, 6, 6});
  model->forward(x).sum().backward();
  const auto grad = model->parameters()[0].grad().clone();
  ddp.synchronize();
  CHECK(torch::equal(model->parameters()[0].grad(), grad));
}

TEST_CASE("single_process_group: one process gets a real Gloo group whose collectives run") {
  DistributedEnv env;
  env.master_port = mobilenet::free_port();
  Communicator comm(env, DistributedOptions().single_process_group(true).timeout(std::chrono::seconds(30)));
  CHECK(comm.backend() == "gloo");  // "auto" without CUDA
  CHECK_FALSE(comm.distributed());
  auto t = torch::arange(5, torch::kFloat);
  auto work = comm.all_reduce_async(t, mobilenet::ReduceOp::Sum, "all_reduce");
  CHECK(work.valid());  // issued to the process group, not skipped
  work.wait();
  CHECK(torch::equal(t, torch::arange(5, torch::kFloat)));
  std::vector<torch::Tensor> many{torch::ones({2}), torch::arange(3)};
  comm.broadcast(many);
  CHECK(torch::equal(many[1], torch::arange(3)));
  CHECK(torch::equal(comm.all_gather(torch::ones({2, 2})), torch::ones({2, 2})));
  CHECK(comm.all_reduce(4.0) == 4);
  comm.barrier();
  // Without the option, a world of one has no group: nothing is issued.
  Communicator none(env);
  CHECK(none.backend() == "none");
  CHECK_FALSE(none.all_reduce_async(t, mobilenet::ReduceOp::Sum, "all_reduce").valid());
}

TEST_CASE("launch_local reports which rank failed and how") {
  mobilenet::launch_local(mobilenet::LaunchOptions(2).executable("/bin/sh"),
                          {"-c", "test \"$WORLD_SIZE$LOCAL_WORLD_SIZE\" = 22 && test -n \"$MASTER_PORT\""});
  CHECK_THROWS_WITH_AS(
      mobilenet::launch_local(mobilenet::LaunchOptions(3).executable("/bin/sh"),
                              {"-c", "exit $((RANK == 2 ? 7 : 0))"}),
      "launch_local: rank 2 of 3 failed first; rank 0 exited with status 0; rank 1 exited with "
      "status 0; rank 2 exited with status 7",
      DistributedError);
}


TEST_CASE("SyncBatchNorm2d without other ranks is exactly BatchNorm2d") {
  torch::manual_seed(0);
  mobilenet::SyncBatchNorm2d sync(torch::nn::BatchNormOptions(5).momentum(0.3));
  torch::nn::BatchNorm2d plain(torch::nn::BatchNormOptions(5).momentum(0.3));
  auto x = torch::randn({4, 5, 3, 3}) * 3 + 1;
  auto a = x.clone().requires_grad_();
  auto b = x.clone().requires_grad_();
  CHECK(torch::equal(sync(a), plain(b)));
  sync(a).pow(2).sum().backward();
  plain(b).pow(2).sum().backward();
  CHECK(torch::allclose(a.grad(), b.grad()));
  CHECK(torch::equal(sync->running_mean, plain->running_mean));
  CHECK(torch::equal(sync->running_var, plain->running_var));
  sync->eval();
  plain->eval();
  CHECK(torch::equal(sync(x), plain(x)));
  std::ostringstream s;
  s << *sync;
  CHECK(s.str() == "mobilenet::SyncBatchNorm2d(5, eps=1e-05, momentum=0.3, affine=true, "
                   "track_running_stats=true)");
  // Keys line up with BatchNorm2d, so checkpoints load into either.
  std::vector<std::string> keys_sync, keys_plain;
  for (const auto& item : sync->named_parameters()) keys_sync.push_back(item.key());
  for (const auto& item : sync->named_buffers()) keys_sync.push_back(item.key());
  for (const auto& item : plain->named_parameters()) keys_plain.push_back(item.key());
  for (const auto& item : plain->named_buffers()) keys_plain.push_back(item.key());
  CHECK(keys_sync == keys_plain);
}

TEST_CASE("sync_batch_norm_layer builds MobileNetV2 with SyncBatchNorm2d and BatchNorm2d's keys") {
  auto comm = std::make_shared<Communicator>();  // one process: exactly BatchNorm2d
  auto layer = mobilenet::sync_batch_norm_layer(comm, torch::nn::BatchNormOptions(0).momentum(0.3));
  auto one = layer(12);
  auto sync = one.ptr()->as<mobilenet::SyncBatchNorm2dImpl>();
  REQUIRE(sync != nullptr);
  CHECK(sync->options.num_features() == 12);
  CHECK(sync->options.momentum().value() == 0.3);

  torch::manual_seed(3);
  mobilenet::MobileNetV2 plain(small_v2(nullptr));
  torch::manual_seed(3);
  mobilenet::MobileNetV2 synced(small_v2(mobilenet::sync_batch_norm_layer(comm)));
  int64_t sync_layers = 0;
  for (const auto& m : synced->modules(false)) {
    sync_layers += m->as<mobilenet::SyncBatchNorm2dImpl>() != nullptr;
  }
  CHECK(sync_layers == 52);
  std::vector<std::string> keys_plain, keys_synced;
  int64_t params_plain = 0, params_synced = 0;
  for (const auto& item : plain->named_parameters()) {
    keys_plain.push_back(item.key());
    params_plain += item.value().numel();
  }
  for (const auto& item : synced->named_parameters()) {
    keys_synced.push_back(item.key());
    params_synced += item.value().numel();
  }
  for (const auto& item : plain->named_buffers()) keys_plain.push_back(item.key());
  for (const auto& item : synced->named_buffers()) keys_synced.push_back(item.key());
  CHECK(keys_synced == keys_plain);
  CHECK(params_synced == params_plain);
  auto x = torch::randn({4, 3, kModelImage, kModelImage});
  CHECK(torch::allclose(synced(x), plain(x)));
  CHECK(norm_statistics(*synced).size() == norm_statistics(*plain).size());
  check_same(norm_statistics(*synced), norm_statistics(*plain), 1e-6, "one-process statistics");
}
