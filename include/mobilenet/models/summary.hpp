#pragma once
/// \file summary.hpp
/// A torchsummary-style table: one row per layer with output shape and parameter count,
/// then the totals and memory estimates.

#include <mobilenet/nn/forward_recorder.hpp>
#include <mobilenet/nn/sequential_like.hpp>

#include <torch/torch.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

namespace mobilenet {

/// One hooked module.
struct SummaryRow {
  std::string type;                   ///< "Conv2d", "InvertedResidual", ...
  std::vector<int64_t> output_shape;  ///< batch dimension reported as -1
  int64_t params = 0;                 ///< the module's own parameters (not its children's)
};

/// What summarize() measures. Sizes in MiB (torchsummary calls them MB).
struct ModelSummary {
  std::vector<SummaryRow> rows;
  int64_t total_params = 0;
  int64_t trainable_params = 0;
  int64_t leaf_layers = 0;  ///< modules without children
  double input_mb = 0;
  double forward_backward_mb = 0;
  double params_mb = 0;
  double total_mb = 0;

  /// The table as torchsummary prints it, plus a "Leaf layers" line.
  std::string to_string() const;
};

namespace detail {

/// "torch::nn::Conv2dImpl" -> "Conv2d"; "mobilenet::InvertedResidualImpl<...>" ->
/// "InvertedResidual".
inline std::string short_type_name(const std::string& full) {
  std::string name = full.substr(0, full.find('<'));
  const auto colon = name.rfind("::");
  if (colon != std::string::npos) name = name.substr(colon + 2);
  const std::string impl = "Impl";
  if (name.size() > impl.size() && name.compare(name.size() - impl.size(), impl.size(), impl) == 0) {
    name.resize(name.size() - impl.size());
  }
  return name;
}

/// "2326352" -> "2,326,352".
inline std::string thousands(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

/// Collects rows the way torchsummary's hooks do: every module except containers
/// (Sequential, ModuleList, and our blocks that torchvision implements as Sequentials) and
/// the root.
class SummaryRecorder : public ForwardRecorder {
 public:
  SummaryRecorder(const torch::nn::Module* root, int64_t batch) : root_(root), batch_(batch) {}

  void record(const torch::nn::Module& module, const torch::Tensor& output) override {
    if (&module == root_ || dynamic_cast<const torch::nn::SequentialImpl*>(&module) ||
        dynamic_cast<const torch::nn::ModuleListImpl*>(&module) ||
        dynamic_cast<const SequentialLike*>(&module)) {
      return;
    }
    SummaryRow row;
    row.type = short_type_name(module.name());
    row.output_shape = output.sizes().vec();
    if (!row.output_shape.empty()) row.output_shape[0] = -1;
    for (const auto& p : module.parameters(/*recurse=*/false)) row.params += p.numel();
    per_sample_outputs_ += output.numel() / batch_;
    rows.push_back(std::move(row));
  }

  std::vector<SummaryRow> rows;
  int64_t per_sample_outputs() const { return per_sample_outputs_; }

 private:
  const torch::nn::Module* root_;
  int64_t batch_;
  int64_t per_sample_outputs_ = 0;
};

/// Installs a recorder for the lifetime of the guard.
class RecorderGuard {
 public:
  explicit RecorderGuard(ForwardRecorder* recorder) : previous_(active_recorder()) {
    active_recorder() = recorder;
  }
  ~RecorderGuard() { active_recorder() = previous_; }
  RecorderGuard(const RecorderGuard&) = delete;
  RecorderGuard& operator=(const RecorderGuard&) = delete;

 private:
  ForwardRecorder* previous_;
};

}  // namespace detail

/// Runs one forward pass of `model` (in eval mode, without gradients, on a zero input of
/// shape {1, input_shape...} on the model's device) and summarizes it.
///
/// Rows come from modules our code calls through forward_recorded(): every block and model of
/// this library and everything inside a torch::nn::Sequential. Totals always count all parameters.
/// The forward/backward estimate is torchsummary's: per-sample elements of every row's output
/// x 4 bytes x 2 (activations kept for backward, plus their gradients).
/// Example: `std::cout << summarize(*model, {3, 256, 256}).to_string();`
template <typename Model>
ModelSummary summarize(Model& model, const std::vector<int64_t>& input_shape) {
  constexpr double kMiB = 1024.0 * 1024.0;
  constexpr double kBytesPerValue = 4.0;  // torchsummary assumes float32
  torch::nn::Module& module = model;
  const bool was_training = module.is_training();
  module.eval();
  torch::NoGradGuard no_grad;

  ModelSummary s;
  constexpr int64_t kBatch = 1;
  detail::SummaryRecorder recorder(&module, kBatch);
  {
    auto parameters = module.parameters();
    auto options = torch::TensorOptions().dtype(torch::kFloat32);
    if (!parameters.empty()) options = options.device(parameters.front().device());
    std::vector<int64_t> shape{kBatch};
    shape.insert(shape.end(), input_shape.begin(), input_shape.end());
    detail::RecorderGuard guard(&recorder);
    model.forward(torch::zeros(shape, options));
  }
  module.train(was_training);

  s.rows = std::move(recorder.rows);
  for (const auto& p : module.parameters()) {
    s.total_params += p.numel();
    if (p.requires_grad()) s.trainable_params += p.numel();
  }
  for (const auto& m : module.modules(/*include_self=*/false)) {
    if (m->children().empty()) ++s.leaf_layers;
  }
  int64_t input_values = 1;
  for (auto d : input_shape) input_values *= d;
  s.input_mb = static_cast<double>(input_values) * kBytesPerValue / kMiB;
  s.forward_backward_mb =
      2.0 * static_cast<double>(recorder.per_sample_outputs()) * kBytesPerValue / kMiB;
  s.params_mb = static_cast<double>(s.total_params) * kBytesPerValue / kMiB;
  s.total_mb = s.input_mb + s.forward_backward_mb + s.params_mb;
  return s;
}

inline std::string ModelSummary::to_string() const {
  std::ostringstream out;
  const std::string line(64, '-');
  const std::string rule(64, '=');
  char buffer[160];
  out << line << "\n";
  std::snprintf(buffer, sizeof buffer, "%20s  %25s %15s", "Layer (type)", "Output Shape",
                "Param #");
  out << buffer << "\n" << rule << "\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    std::string shape = "[";
    for (size_t d = 0; d < rows[i].output_shape.size(); ++d) {
      shape += (d ? ", " : "") + std::to_string(rows[i].output_shape[d]);
    }
    shape += "]";
    const std::string name = rows[i].type + "-" + std::to_string(i + 1);
    std::snprintf(buffer, sizeof buffer, "%20s  %25s %15s", name.c_str(), shape.c_str(),
                  detail::thousands(rows[i].params).c_str());
    out << buffer << "\n";
  }
  out << rule << "\n";
  out << "Total params: " << detail::thousands(total_params) << "\n";
  out << "Trainable params: " << detail::thousands(trainable_params) << "\n";
  out << "Non-trainable params: " << detail::thousands(total_params - trainable_params) << "\n";
  out << line << "\n";
  auto mb = [&](const char* label, double value) {
    std::snprintf(buffer, sizeof buffer, "%s: %.2f\n", label, value);
    out << buffer;
  };
  mb("Input size (MB)", input_mb);
  mb("Forward/backward pass size (MB)", forward_backward_mb);
  mb("Params size (MB)", params_mb);
  mb("Estimated Total Size (MB)", total_mb);
  out << line << "\n";
  out << "Leaf layers: " << leaf_layers << "\n";
  return out.str();
}

}  // namespace mobilenet
