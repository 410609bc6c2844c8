#pragma once
/// \file predictor.hpp
/// Tags images with a trained model: built from a checkpoint (the model from its ModelSpec
/// through make_model, its per-class thresholds, its eval transform), it predicts from a file,
/// encoded bytes in memory, or a tensor batch, and returns per-class probabilities and the
/// decisions. Needs the data component (image decoding): link mobilenet::data.
/// \code
///   mobilenet::Predictor predictor("runs/coco/best.pt");
///   for (const auto& label : predictor.predict("cat.jpg").labels)
///     std::cout << label.name << " " << label.probability << "\n";
/// \endcode

#include <mobilenet/data/image.hpp>
#include <mobilenet/data/presets.hpp>
#include <mobilenet/models/factory.hpp>
#include <mobilenet/models/prepare.hpp>
#include <mobilenet/train/checkpoint.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mobilenet {

/// One class that passed its threshold.
struct PredictedLabel {
  int64_t index = 0;
  std::string name;
  float probability = 0;
  float threshold = 0;
};

/// What the Predictor says about one image.
struct Prediction {
  std::vector<float> probabilities;    ///< per class, sigmoid of the logits
  std::vector<PredictedLabel> labels;  ///< classes at or above their threshold, most probable first
};

/// Predictor options. Example: `PredictorOptions().device(torch::kCUDA).threshold(0.4)`.
struct PredictorOptions {
  /// Where the model runs. Default CPU.
  TORCH_ARG(torch::Device, device) = torch::kCPU;
  /// One threshold for every class, in [0, 1]; NaN (default) uses the checkpoint's tuned
  /// per-class thresholds (0.5 where it has none).
  TORCH_ARG(double, threshold) = std::nan("");
  /// Images per forward pass in predict(paths), and the batch the batched model is prepared
  /// on. Default 16.
  TORCH_ARG(int64_t, batch_size) = 16;
  /// Run the model through prepare_for_inference (BN folded into the convolutions, in-place
  /// activations, layout and convolution backend chosen by measurement, once on one image and
  /// once on batch_size() images, for single images and batches): same outputs within 1e-5,
  /// several times faster at batch 1 on CPU. Default true.
  TORCH_ARG(bool, prepare) = true;
};

/// A trained model ready to tag images. See the file comment for an example.
class Predictor {
 public:
  explicit Predictor(const std::string& checkpoint, PredictorOptions options = {})
      : o_(std::move(options)), spec_(read_model_spec(checkpoint)), transform_(eval_transform_for(spec_)) {
    TORCH_CHECK(std::isnan(o_.threshold()) || (o_.threshold() >= 0 && o_.threshold() <= 1),
                "Predictor: threshold must be in [0, 1], got ", o_.threshold());
    TORCH_CHECK(o_.batch_size() >= 1, "Predictor: batch_size must be >= 1, got ", o_.batch_size());
    model_ = make_model(spec_);
    const TrainingState state =
        load_checkpoint(checkpoint, model_.module(), spec_, nullptr, /*restore_rng=*/false);
    model_.module().to(o_.device());
    model_.module().eval();
    if (o_.prepare()) {
      // The fastest backend per convolution differs between one image and a batch (GEMM vs
      // MKL-DNN, measured), so single images and batches get a model prepared for each.
      auto prepare_for = [&](int64_t n) {
        return prepare_for_inference(
            model_.features(), model_.classifier(),
            InferenceOptions().example_input(torch::randn({n, 3, spec_.image_size(), spec_.image_size()},
                                                          torch::TensorOptions().device(o_.device()))));
      };
      prepared_ = prepare_for(1);
      if (o_.batch_size() > 1) prepared_batch_ = prepare_for(o_.batch_size());
    }
    thresholds_ = state.thresholds;
    if (!std::isnan(o_.threshold()) || int64_t(thresholds_.size()) != spec_.num_classes()) {
      thresholds_.assign(size_t(spec_.num_classes()),
                         std::isnan(o_.threshold()) ? 0.5f : float(o_.threshold()));
    }
  }

  const ModelSpec& spec() const { return spec_; }
  const std::vector<float>& thresholds() const { return thresholds_; }
  const Transform& transform() const { return transform_; }
  Classifier& model() { return model_; }

  /// Predicts one image file. Throws ImageError naming the file if it cannot be read.
  Prediction predict(const std::string& path) { return predict(std::vector<std::string>{path}).front(); }

  /// Predicts one encoded image (JPEG or PNG bytes); `name` appears in error messages.
  Prediction predict(const uint8_t* data, size_t size, const std::string& name = "<memory>") {
    torch::Tensor image = input_buffer(1);
    transform_.apply_bytes_into(data, size, name, 0, image.data_ptr<float>());
    return predict_batch(image.permute({0, 3, 1, 2})).front();
  }

  /// Predicts image files in batches; one Prediction per path, in order. Throws on the first
  /// unreadable file (use predict(path) per file to skip bad ones).
  std::vector<Prediction> predict(const std::vector<std::string>& paths) {
    std::vector<Prediction> out;
    for (size_t start = 0; start < paths.size(); start += size_t(o_.batch_size())) {
      const size_t n = std::min(paths.size() - start, size_t(o_.batch_size()));
      torch::Tensor batch = input_buffer(int64_t(n));
      const int64_t per_image = 3 * spec_.image_size() * spec_.image_size();
      for (size_t i = 0; i < n; ++i) {
        transform_.apply_into(paths[start + i], 0, batch.data_ptr<float>() + int64_t(i) * per_image);
      }
      for (auto& p : predict_batch(batch.permute({0, 3, 1, 2}))) out.push_back(std::move(p));
    }
    return out;
  }

  /// Predicts a batch already transformed like transform() does: float N x 3 x S x S
  /// (S = spec().image_size()), normalized if the spec says so.
  std::vector<Prediction> predict_batch(const torch::Tensor& images) {
    TORCH_CHECK(images.dim() == 4 && images.size(1) == 3, "Predictor: expected N x 3 x H x W images, got ",
                images.sizes());
    torch::Tensor probs;
    {
      c10::InferenceMode guard;
      const torch::Tensor x = images.to(o_.device());
      const auto& prepared = x.size(0) > 1 && prepared_batch_ ? prepared_batch_ : prepared_;
      probs = torch::sigmoid(prepared ? prepared->forward(x) : model_.forward(x)).to(torch::kFloat).cpu().contiguous();
    }
    std::vector<Prediction> out(size_t(probs.size(0)));
    const float* p = probs.data_ptr<float>();
    const int64_t classes = probs.size(1);
    for (size_t i = 0; i < out.size(); ++i) {
      const float* row = p + int64_t(i) * classes;
      out[i].probabilities.assign(row, row + classes);
      for (int64_t k = 0; k < classes; ++k) {
        if (row[k] >= thresholds_[size_t(k)]) {
          out[i].labels.push_back({k, class_name(k), row[k], thresholds_[size_t(k)]});
        }
      }
      std::stable_sort(out[i].labels.begin(), out[i].labels.end(),
                       [](const PredictedLabel& a, const PredictedLabel& b) {
                         return a.probability > b.probability;
                       });
    }
    return out;
  }

 private:
  std::string class_name(int64_t k) const {
    return k < int64_t(spec_.class_names().size()) ? spec_.class_names()[size_t(k)] : std::to_string(k);
  }
  // N x S x S x 3 floats: the transform writes HWC, which is the channels-last layout.
  torch::Tensor input_buffer(int64_t n) const {
    return torch::empty({n, spec_.image_size(), spec_.image_size(), 3}, torch::kFloat);
  }

  PredictorOptions o_;
  ModelSpec spec_;
  Transform transform_;
  Classifier model_;
  std::optional<InferenceModel> prepared_;        // chosen on one image
  std::optional<InferenceModel> prepared_batch_;  // chosen on batch_size() images
  std::vector<float> thresholds_;
};

}  // namespace mobilenet
