// Data-parallel training on c10d/Gloo over loopback. The multi-process cases start this
// same test binary as the ranks (launch_local re-executes it with --no-skip, running only
// the "rank program" case below); the reference is a plain single-process LibTorch run.
#include <mobilenet/distributed.hpp>

#include <doctest/doctest.h>

#include "support.hpp"

#include <chrono>
#include <cstdlib>
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
  CHECK(comm->all_reduce_sum<int64_t>(r + 1) == 3);
  CHECK(comm->all_reduce_sum(0.25 * static_cast<double>(r + 1)) == doctest::Approx(0.75));
  auto sums = comm->all_reduce(torch::tensor({1.0, static_cast<double>(r)}));
  CHECK(torch::equal(sums, torch::tensor({2.0, 1.0})));
  auto maxima = comm->all_reduce(torch::tensor({static_cast<double>(r), -static_cast<double>(r)}),
                                 mobilenet::ReduceOp::Max);
  CHECK(torch::equal(maxima, torch::tensor({1.0, 0.0})));
  auto mine = torch::full({r + 2, 3}, static_cast<float>(r));  // 2 rows on rank 0, 3 on rank 1
  auto all = comm->all_gather_cat(mine);
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

// One rank dies (SIGKILL) or hangs after the first step; the other must throw.
void rank_failure(const std::string& out_dir, bool kill) {
  auto comm = mobilenet::init_distributed(DistributedOptions().timeout(kFailTimeout));
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
  } else if (scenario == "per_rank_bn") {
    rank_train_per_rank_bn(out);
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
  CHECK(comm->all_reduce_sum<int64_t>(5) == 5);
  auto t = torch::arange(4);
  CHECK(torch::equal(comm->all_gather_cat(t), t));
  comm->barrier();
  auto model = tiny_model<torch::nn::BatchNorm2d>(1);
  DistributedDataParallel ddp(model, comm);
  auto x = torch::randn({4, 3, 6, 6});
  model->forward(x).sum().backward();
  const auto grad = model->parameters()[0].grad().clone();
  ddp.synchronize();
  CHECK(torch::equal(model->parameters()[0].grad(), grad));
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

TEST_CASE("shard deals items round-robin and pads so every rank gets as many") {
  const std::vector<int> items{0, 1, 2, 3, 4};
  CHECK(mobilenet::shard(items, 0, 2) == std::vector<int>{0, 2, 4});
  CHECK(mobilenet::shard(items, 1, 2) == std::vector<int>{1, 3, 0});
  CHECK(mobilenet::shard(items, 1, 2, /*pad=*/false) == std::vector<int>{1, 3});
  CHECK(mobilenet::shard(items, 0, 1) == items);
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
