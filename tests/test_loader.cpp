// DataLoader: determinism, sharding, early stop, bad images. The JPEGs are written by PIL
// (/usr/bin/python3) at the start of the run.
#include <doctest/doctest.h>

#include <mobilenet/data/loader.hpp>

#include <torch/torch.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

constexpr int kImages = 37;  // not a multiple of batch sizes or world sizes used below
constexpr int kClasses = 5;

const std::string& image_dir() {
  static const std::string dir = [] {
    std::string d = "loader_fixtures";
    std::string script =
        "import os,sys,numpy as np\n"
        "from PIL import Image\n"
        "d=sys.argv[1]; os.makedirs(d, exist_ok=True); r=np.random.default_rng(0)\n"
        "for i in range(" + std::to_string(kImages) + "):\n"
        "  w,h=int(r.integers(60,120)),int(r.integers(60,120))\n"
        "  a=r.integers(0,256,(h,w,3),dtype=np.uint8)\n"
        "  Image.fromarray(a).save(os.path.join(d,'%03d.jpg'%i),quality=90)\n"
        "data=open(os.path.join(d,'000.jpg'),'rb').read()\n"
        "open(os.path.join(d,'truncated.jpg'),'wb').write(data[:len(data)//3])\n";
    std::ofstream(d + ".py") << script;
    REQUIRE_MESSAGE(mobilenet::test::run(MOBILENET_PYTHON, {d + ".py", d}) == 0,
                    "fixture script failed: " << d << ".py");
    return d;
  }();
  return dir;
}

std::vector<mobilenet::Sample> samples() {
  std::vector<mobilenet::Sample> s;
  for (int i = 0; i < kImages; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "/%03d.jpg", i);
    std::vector<float> target(kClasses, 0.f);
    target[i % kClasses] = 1.f;
    s.push_back({image_dir() + name, target, 1000 + i});
  }
  return s;
}

mobilenet::Transform small_transform() {
  return mobilenet::Transform().random_resized_crop(32).horizontal_flip().normalize();
}

std::vector<mobilenet::Batch> run_epoch(mobilenet::DataLoader& loader, int64_t epoch) {
  std::vector<mobilenet::Batch> out;
  for (mobilenet::Batch& b : loader.epoch(epoch)) out.push_back(b);
  return out;
}

int thread_count() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "Threads:") {
      int n = 0;
      status >> n;
      return n;
    }
  }
  return -1;
}

}  // namespace

TEST_CASE("loader batches have channels-last NCHW images, matching targets and ids, and "
          "equal the transform applied to each sample with its (seed, epoch, index) seed") {
  auto s = samples();
  mobilenet::DataLoader loader(s, small_transform(),
                               mobilenet::LoaderOptions(8).workers(2).seed(5));
  auto batches = run_epoch(loader, 3);
  REQUIRE(batches.size() == 5);  // ceil(37 / 8)
  CHECK(batches.back().ids.size(0) == 37 - 4 * 8);
  for (const auto& b : batches) {
    CHECK(b.images.size(1) == 3);
    CHECK(b.images.size(2) == 32);
    CHECK(b.images.size(3) == 32);
    CHECK((b.images.scalar_type() == torch::kFloat));
    CHECK(b.images.is_contiguous(torch::MemoryFormat::ChannelsLast));
    for (int64_t r = 0; r < b.ids.size(0); ++r) {
      const int64_t index = b.ids[r].item<int64_t>() - 1000;
      CHECK(b.targets[r][index % kClasses].item<float>() == 1.f);
      CHECK(b.targets[r].sum().item<float>() == 1.f);
      torch::Tensor expected =
          small_transform()(s[index].path, mobilenet::sample_seed(5, 3, index));
      CHECK(torch::equal(b.images[r], expected));
    }
  }
}

TEST_CASE("recycled batch buffers never overwrite a batch the consumer still holds") {
  // 19 batches, more than the buffer pool holds: holding them all forces fresh buffers,
  // dropping them at once makes the loader reuse them.
  mobilenet::DataLoader loader(samples(), small_transform(),
                               mobilenet::LoaderOptions(2).workers(3).prefetch(2).seed(4));
  std::vector<torch::Tensor> copies, held;
  for (auto& b : loader.epoch(0)) copies.push_back(b.images.clone());
  for (auto& b : loader.epoch(0)) held.push_back(b.images);
  REQUIRE(held.size() == copies.size());
  for (size_t i = 0; i < held.size(); ++i) CHECK(torch::equal(held[i], copies[i]));
  held.clear();
  size_t i = 0;
  for (auto& b : loader.epoch(0)) CHECK(torch::equal(b.images, copies[i++]));
  CHECK(i == copies.size());
}

TEST_CASE("loader output is identical for 1 and 3 workers and reshuffles every epoch") {
  mobilenet::DataLoader one(samples(), small_transform(),
                            mobilenet::LoaderOptions(6).workers(1).seed(9));
  mobilenet::DataLoader three(samples(), small_transform(),
                              mobilenet::LoaderOptions(6).workers(3).prefetch(2).seed(9));
  auto a = run_epoch(one, 0), b = run_epoch(three, 0), c = run_epoch(three, 1);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(torch::equal(a[i].ids, b[i].ids));
    CHECK(torch::equal(a[i].images, b[i].images));
    CHECK(torch::equal(a[i].targets, b[i].targets));
  }
  CHECK(!torch::equal(a[0].ids, c[0].ids));
  // Without shuffling, the order is the sample order.
  mobilenet::DataLoader plain(samples(), small_transform(),
                              mobilenet::LoaderOptions(10).shuffle(false));
  auto p = run_epoch(plain, 4);
  CHECK(p[0].ids[0].item<int64_t>() == 1000);
  CHECK(p[1].ids[9].item<int64_t>() == 1019);
}

TEST_CASE("sharding by (rank, world_size) covers every image exactly once per epoch") {
  for (int64_t world : {1, 2, 3, 4}) {
    CAPTURE(world);
    std::multiset<int64_t> seen;
    for (int64_t rank = 0; rank < world; ++rank) {
      mobilenet::DataLoader loader(
          samples(), mobilenet::Transform().resize(8, 8),
          mobilenet::LoaderOptions(4).workers(2).seed(3).rank(rank).world_size(world));
      int64_t n = 0;
      for (auto& b : loader.epoch(2)) {
        for (int64_t r = 0; r < b.ids.size(0); ++r) seen.insert(b.ids[r].item<int64_t>());
        n += b.ids.size(0);
      }
      CHECK(n == loader.samples_per_epoch());
    }
    CHECK(seen.size() == size_t(kImages));
    CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == size_t(kImages));
  }
}

TEST_CASE("drop_last and even_shards give equal, full batches on every rank") {
  for (int64_t rank = 0; rank < 3; ++rank) {
    mobilenet::DataLoader loader(samples(), mobilenet::Transform().resize(8, 8),
                                 mobilenet::LoaderOptions(4).rank(rank).world_size(3)
                                     .even_shards(true).drop_last(true));
    CHECK(loader.samples_per_epoch() == 12);  // 37 / 3
    CHECK(loader.batches_per_epoch() == 3);
    auto batches = run_epoch(loader, 0);
    CHECK(batches.size() == 3);
    for (auto& b : batches) CHECK(b.ids.size(0) == 4);
  }
}

TEST_CASE("stopping mid-epoch, restarting an epoch and destroying a busy loader neither "
          "hang nor leak threads") {
  const int before = thread_count();
  const auto start = std::chrono::steady_clock::now();
  for (int trial = 0; trial < 10; ++trial) {
    mobilenet::DataLoader loader(samples(), small_transform(),
                                 mobilenet::LoaderOptions(2).workers(3).prefetch(4));
    loader.start_epoch(0);
    CHECK(loader.next().has_value());
    if (trial % 2 == 0) {
      loader.start_epoch(1);  // abandon epoch 0
      auto all = run_epoch(loader, 1);
      CHECK(all.size() == size_t(loader.batches_per_epoch()));
      loader.start_epoch(2);
      CHECK(loader.next().has_value());
      loader.stop();
      CHECK(!loader.next().has_value());
    }
  }  // destructor joins with batches in flight
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 60);
  CHECK(thread_count() == before);
}

TEST_CASE("unreadable images are skipped, counted and reported; fail_fast throws "
          "ImageError naming the file") {
  auto s = samples();
  s[3].path = image_dir() + "/truncated.jpg";
  s[7].path = image_dir() + "/missing.jpg";
  mobilenet::DataLoader loader(s, small_transform(),
                               mobilenet::LoaderOptions(5).seed(1).report_skipped(false));
  int64_t n = 0;
  std::set<int64_t> ids;
  for (auto& b : loader.epoch(0)) {
    n += b.ids.size(0);
    for (int64_t r = 0; r < b.ids.size(0); ++r) ids.insert(b.ids[r].item<int64_t>());
    CHECK(b.images.size(0) == b.ids.size(0));
    CHECK(b.targets.size(0) == b.ids.size(0));
  }
  CHECK(n == kImages - 2);
  CHECK(ids.count(1003) == 0);
  CHECK(ids.count(1007) == 0);
  auto skipped = loader.skipped();
  REQUIRE(skipped.size() == 2);
  std::set<std::string> paths{skipped[0].path, skipped[1].path};
  CHECK(paths.count(s[3].path) == 1);
  CHECK(paths.count(s[7].path) == 1);
  for (auto& k : skipped) CHECK(k.reason.find(k.path) != std::string::npos);

  mobilenet::DataLoader strict(s, small_transform(),
                               mobilenet::LoaderOptions(5).seed(1).fail_fast(true));
  bool threw = false;
  try {
    for (auto& b : strict.epoch(0)) (void)b;
  } catch (const mobilenet::ImageError& e) {
    threw = true;
    CHECK((e.path() == s[3].path || e.path() == s[7].path));
  }
  CHECK(threw);
}

TEST_CASE("loader workers leave the caller's intra-op thread count alone and reject bad "
          "options") {
  const int threads = at::get_num_threads();
  {
    mobilenet::DataLoader loader(samples(), small_transform(), mobilenet::LoaderOptions(8));
    run_epoch(loader, 0);
  }
  CHECK(at::get_num_threads() == threads);
  CHECK_THROWS(mobilenet::DataLoader(samples(), mobilenet::Transform().resize(64),
                                     mobilenet::LoaderOptions(4)));
  CHECK_THROWS(mobilenet::DataLoader(samples(), small_transform(),
                                     mobilenet::LoaderOptions(4).rank(2).world_size(2)));
  CHECK_THROWS(mobilenet::DataLoader(samples(), small_transform(), mobilenet::LoaderOptions(0)));
  auto s = samples();
  s[2].target.push_back(0.f);
  CHECK_THROWS(mobilenet::DataLoader(s, small_transform(), mobilenet::LoaderOptions(4)));
}

TEST_CASE("skipped_summary counts the unreadable images of those tried and names the first "
          "few, control characters escaped; the epoch report escapes them too") {
  auto s = samples();
  const std::string dir = image_dir();
  s[3].path = dir + "/truncated.jpg";
  s[7].path = dir + "/bad\x01name\n.jpg";  // missing, and a name that would forge a log line
  s[11].path = dir + "/missing-a.jpg";
  s[20].path = dir + "/missing-b.jpg";
  mobilenet::DataLoader loader(s, small_transform(),
                               mobilenet::LoaderOptions(5).shuffle(false).report_skipped(true));
  std::ostringstream err;
  std::streambuf* old = std::cerr.rdbuf(err.rdbuf());
  const auto batches = run_epoch(loader, 0);
  std::cerr.rdbuf(old);
  CHECK(loader.skipped().size() == 4);
  CHECK(loader.images_attempted() == kImages);
  CHECK(loader.skipped_summary() ==
        "4 of 37 images unreadable: " + dir + "/truncated.jpg, " + dir +
            "/bad\\x01name\\n.jpg, " + dir + "/missing-a.jpg and 1 more");
  CHECK(loader.skipped_summary(10) ==
        "4 of 37 images unreadable: " + dir + "/truncated.jpg, " + dir +
            "/bad\\x01name\\n.jpg, " + dir + "/missing-a.jpg, " + dir + "/missing-b.jpg");
  CHECK(err.str().find("bad\\x01name\\n.jpg") != std::string::npos);
  CHECK(err.str().find('\x01') == std::string::npos);

  mobilenet::DataLoader clean(samples(), small_transform(), mobilenet::LoaderOptions(8));
  run_epoch(clean, 0);
  CHECK(clean.skipped_summary().empty());
  CHECK(clean.images_attempted() == kImages);
}

#if defined(__SANITIZE_ADDRESS__)
#define MOBILENET_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MOBILENET_UNDER_ASAN 1
#endif
#endif

TEST_CASE("a worker thread that cannot start is a clear error, not std::terminate, and the "
          "threads already started are joined") {
#ifdef MOBILENET_UNDER_ASAN
  MESSAGE("skipped under AddressSanitizer: it cannot run under an address-space limit");
  return;
#endif
  const auto s = samples();
  const auto options = mobilenet::LoaderOptions(4).workers(100);
  // The child caps its address space a little above what it maps now, so that thread stacks
  // (8 MiB each) run out after a few workers. Exit status: 0 = the expected error and a
  // working loader after it, 1 = no error, 2 = a wrong message (printed), 3 = setup failed.
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    long pages = 0;
    std::ifstream("/proc/self/statm") >> pages;
    rlimit old{};
    if (pages <= 0 || getrlimit(RLIMIT_AS, &old) != 0) _exit(3);
    rlimit limit = old;
    limit.rlim_cur = rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) + (24 << 20);
    if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(3);
    try {
      mobilenet::DataLoader loader(s, small_transform(), options);
      _exit(1);
    } catch (const c10::Error& e) {
      const std::string what = e.what_without_backtrace();
      if (what.find("DataLoader: cannot start worker thread") == std::string::npos ||
          what.find(" of 100: ") == std::string::npos) {
        std::fprintf(stderr, "unexpected message: %s\n", what.c_str());
        _exit(2);
      }
    }
    if (setrlimit(RLIMIT_AS, &old) != 0) _exit(3);
    mobilenet::DataLoader loader(s, small_transform(), mobilenet::LoaderOptions(4).workers(2));
    int64_t n = 0;
    for (auto& b : loader.epoch(0)) n += b.ids.size(0);
    _exit(n == kImages ? 0 : 4);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  INFO("child status " << status);
  REQUIRE(WIFEXITED(status));  // std::terminate (SIGABRT) fails here
  CHECK(WEXITSTATUS(status) == 0);
}
