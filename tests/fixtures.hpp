#pragma once
// Reference images made by a Python script (PIL / torchvision) at test time, shared by the
// image and transform suites. Manifest lines: `name kind dtype d0 d1 d2 [extra...]`; each
// reference is `<dir>/<name>.bin`, raw uint8 ("u8") or float32 of shape d0 x d1 x d2.
#include <doctest/doctest.h>
#include <torch/torch.h>

#include "support.hpp"

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace mobilenet::test {

struct Ref {
  std::string name, kind, dtype;
  std::vector<int64_t> dims;
  std::vector<double> extra;
};

class FixtureSet {
 public:
  /// Runs tests/python/<script> <dir> and reads its manifest; at least `min_count` entries.
  FixtureSet(const std::string& script, std::string dir, size_t min_count) : dir_(std::move(dir)) {
    REQUIRE_MESSAGE(run_python(script, {dir_}) == 0, "reference script failed: " << script << " " << dir_);
    std::ifstream manifest(dir_ + "/manifest.txt");
    for (std::string line; std::getline(manifest, line);) {
      std::istringstream in(line);
      Ref r;
      in >> r.name >> r.kind >> r.dtype;
      r.dims.resize(3);
      in >> r.dims[0] >> r.dims[1] >> r.dims[2];
      for (double e; in >> e;) r.extra.push_back(e);
      list.push_back(r);
      refs_[r.name] = r;
    }
    REQUIRE(list.size() >= min_count);
  }

  std::vector<Ref> list;  ///< in manifest order

  std::string path(const std::string& file) const { return dir_ + "/" + file; }

  const Ref& ref(const std::string& name) const {
    auto it = refs_.find(name);
    REQUIRE_MESSAGE(it != refs_.end(), "missing reference " << name);
    return it->second;
  }

  torch::Tensor load(const std::string& name) const {
    const Ref& r = ref(name);
    torch::Tensor t = torch::empty(r.dims, r.dtype == "u8" ? torch::kUInt8 : torch::kFloat);
    std::ifstream in(path(name + ".bin"), std::ios::binary);
    in.read(static_cast<char*>(t.data_ptr()), std::streamsize(t.nbytes()));
    REQUIRE(in.gcount() == std::streamsize(t.nbytes()));
    return t;
  }

 private:
  std::string dir_;
  std::map<std::string, Ref> refs_;
};

inline int max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE((a.sizes() == b.sizes()));
  return (a.to(torch::kInt) - b.to(torch::kInt)).abs().max().item<int>();
}

inline double max_abs_diff_f(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE((a.sizes() == b.sizes()));
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace mobilenet::test
