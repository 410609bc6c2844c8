#pragma once
// Shared by the test suites: temporary folders and running the Python references.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

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

/// Runs tests/python/<script> with Debian's interpreter; returns its exit status.
inline int run_python(const std::string& script, const std::string& args) {
  const std::string cmd = std::string(MOBILENET_PYTHON) + " " + MOBILENET_TEST_DIR + "/python/" +
                          script + " " + args;
  const int status = std::system(cmd.c_str());
  return status == -1 ? -1 : WEXITSTATUS(status);
}

/// Max |a - b| / max(|b|, tiny).
inline double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item<double>();
}

}  // namespace mobilenet::test
