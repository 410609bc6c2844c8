#pragma once
// Shared by the test suites: temporary folders and running the Python references.
#include <mobilenet/io/process.hpp>

#include <torch/torch.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace mobilenet::test {

/// A fresh folder under the system temp dir, removed with its contents at scope exit.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("mobilenet-" + tag + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Runs `program` with `args` from an argument vector (no shell); returns its exit status.
inline int run(const std::string& program, const std::vector<std::string>& args,
               bool quiet = false) {
  std::vector<std::string> argv{program};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, ProcessOptions().quiet(quiet)).exit_code;
}

/// Runs tests/python/<script> with the reference interpreter; returns its exit status.
/// quiet: its stdout and stderr go to /dev/null.
inline int run_python(const std::string& script, const std::vector<std::string>& args,
                      bool quiet = false) {
  std::vector<std::string> all{std::string(MOBILENET_TEST_DIR) + "/python/" + script};
  all.insert(all.end(), args.begin(), args.end());
  return run(MOBILENET_PYTHON, all, quiet);
}

/// Max |a - b| / max(|b|, tiny).
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

}  // namespace mobilenet::test
