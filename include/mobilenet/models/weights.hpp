#pragma once
/// \file weights.hpp
/// state_dicts shared with Python: read what `torch.save(dict(model.state_dict()), path)`
/// writes, and write files `model.load_state_dict(torch.load(path))` accepts.

#include <mobilenet/io/atomic_file.hpp>

#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mobilenet {

/// Name -> tensor pairs in PyTorch's state_dict order: for each module, its own parameters,
/// then its own buffers, then its children, depth first. LibTorch's named_parameters() and
/// named_buffers() list the two kinds separately, so they cannot give this order.
using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

namespace detail {
inline void collect_state(const torch::nn::Module& module, const std::string& prefix,
                          StateDict& out) {
  for (const auto& p : module.named_parameters(/*recurse=*/false)) {
    out.emplace_back(prefix + p.key(), p.value());
  }
  for (const auto& b : module.named_buffers(/*recurse=*/false)) {
    out.emplace_back(prefix + b.key(), b.value());
  }
  for (const auto& child : module.named_children()) {
    collect_state(*child.value(), prefix + child.key() + ".", out);
  }
}

inline std::string shape_string(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace detail

/// The module's parameters and buffers, named and ordered as PyTorch's state_dict().
inline StateDict state_dict(const torch::nn::Module& module) {
  StateDict out;
  detail::collect_state(module, "", out);
  return out;
}

/// Options for load_weights.
/// Example: `LoadOptions().strict(false)` to fine-tune with another class count.
struct LoadOptions {
  /// true (default): any missing, unexpected or shape-mismatched key is an error.
  /// false: load what matches, skip and report the rest.
  TORCH_ARG(bool, strict) = true;
};

/// What load_weights did.
struct LoadReport {
  int64_t loaded = 0;
  std::vector<std::string> missing;     ///< in the model, not in the file
  std::vector<std::string> unexpected;  ///< in the file, not in the model
  std::vector<std::string> mismatched;  ///< "name: file [..] vs model [..]"
  bool complete() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// One line per problem, empty when complete.
  std::string describe() const {
    std::ostringstream s;
    for (const auto& k : missing) s << "  missing in file: " << k << "\n";
    for (const auto& k : unexpected) s << "  unexpected in file: " << k << "\n";
    for (const auto& k : mismatched) s << "  shape mismatch: " << k << "\n";
    return s.str();
  }
};

/// Reads a `{name: tensor}` dict saved by Python's torch.save (or by save_weights).
inline std::vector<std::pair<std::string, torch::Tensor>> read_weights(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in, "read_weights: cannot open '", path, "'");
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TORCH_CHECK(!bytes.empty(), "read_weights: '", path, "' is empty");
  c10::IValue value;
  try {
    value = torch::pickle_load(bytes);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "read_weights: '", path,
                "' is not a torch.save file of a dict of tensors (save "
                "dict(model.state_dict()), not the model): ",
                e.what_without_backtrace());
  }
  TORCH_CHECK(value.isGenericDict(), "read_weights: '", path,
              "' holds a ", value.tagKind(), ", expected a dict of name -> tensor");
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& entry : value.toGenericDict()) {
    TORCH_CHECK(entry.key().isString() && entry.value().isTensor(), "read_weights: '", path,
                "' has an entry that is not name -> tensor");
    out.emplace_back(entry.key().toStringRef(), entry.value().toTensor());
  }
  return out;
}

/// Copies weights from `path` into `module`, matching names exactly.
/// Strict mode throws one error listing every missing, unexpected and mismatched key; the
/// module is left unchanged in that case.
inline LoadReport load_weights(torch::nn::Module& module, const std::string& path,
                               const LoadOptions& options = {}) {
  auto file = read_weights(path);
  auto target = state_dict(module);
  LoadReport report;
  std::unordered_map<std::string, torch::Tensor> by_name(file.begin(), file.end());
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (const auto& [name, tensor] : target) {
    auto it = by_name.find(name);
    if (it == by_name.end()) {
      report.missing.push_back(name);
      continue;
    }
    if (it->second.sizes() != tensor.sizes()) {
      report.mismatched.push_back(name + ": file " + detail::shape_string(it->second) +
                                  " vs model " + detail::shape_string(tensor));
    } else {
      copies.emplace_back(tensor, it->second);
    }
    by_name.erase(it);
  }
  for (const auto& [name, tensor] : file) {
    if (by_name.count(name)) report.unexpected.push_back(name);
  }
  TORCH_CHECK(!options.strict() || report.complete(), "load_weights: '", path,
              "' does not match the model:\n", report.describe(),
              "(use LoadOptions().strict(false) to load the matching part)");
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) {
    dst.copy_(src.to(dst.device(), dst.scalar_type()));
  }
  report.loaded = static_cast<int64_t>(copies.size());
  return report;
}

/// Writes `module`'s state_dict as a dict Python loads with torch.load and
/// `load_state_dict` accepts. The file is written to a temporary name, synced and renamed, so
/// a crash or a full disk never leaves a truncated file behind.
inline void save_weights(const torch::nn::Module& module, const std::string& path) {
  c10::Dict<std::string, torch::Tensor> dict;
  for (const auto& [name, tensor] : state_dict(module)) {
    dict.insert(name, tensor.detach().cpu().contiguous());
  }
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  // Checked writes, fsync, atomic rename; a full disk throws and leaves no temporary.
  write_file_atomically(path, std::string_view(bytes.data(), bytes.size()));
}

}  // namespace mobilenet
