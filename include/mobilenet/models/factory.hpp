#pragma once
/// \file factory.hpp
/// A model described by data (ModelSpec) and built by one factory (make_model), so training,
/// checkpoints and prediction agree on what a model is. `Classifier` holds any of our models
/// behind one type: the Trainer, the Predictor and the programs use it.

#include <mobilenet/models/mobilenet_v1.hpp>
#include <mobilenet/models/mobilenet_v2.hpp>
#include <mobilenet/nn/norm_layer.hpp>

#include <torch/torch.h>

#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace mobilenet {

/// What a model is, enough to rebuild it (checkpoints carry it) and to refuse loading weights
/// into something else. Example: `ModelSpec().arch("mobilenet_v2").num_classes(80)`.
struct ModelSpec {
  /// "mobilenet_v2 (80 classes, width 1, output stride 16)".
  std::string describe() const {
    std::ostringstream s;
    s << arch() << " (" << num_classes() << " classes, width " << width_mult() << ", output stride "
      << output_stride() << ")";
    return s.str();
  }
  /// Same layers and shapes (weights of one load into the other).
  bool same_architecture(const ModelSpec& o) const {
    return arch() == o.arch() && num_classes() == o.num_classes() && width_mult() == o.width_mult() &&
           output_stride() == o.output_stride();
  }

  /// "mobilenet_v2" or "mobilenet_v1". Default "mobilenet_v2".
  TORCH_ARG(std::string, arch) = "mobilenet_v2";
  /// Output classes. Default 80.
  TORCH_ARG(int64_t, num_classes) = 80;
  /// Channel multiplier. Default 1.
  TORCH_ARG(double, width_mult) = 1.0;
  /// 32, 16 or 8. Default 16 (the seed model).
  TORCH_ARG(int64_t, output_stride) = 16;
  /// Input resolution the model was trained at (square). Default 256.
  TORCH_ARG(int64_t, image_size) = 256;
  /// ImageNet mean/std normalization of inputs. Default true.
  TORCH_ARG(bool, normalize) = true;
  /// How evaluation images are fitted to image_size: "squish" (whole image resized to a square,
  /// the multi-label default) or "center" (resize to size*256/224, center crop). Default "squish".
  TORCH_ARG(std::string, eval_resize) = "squish";
  /// Class names in output order.
  TORCH_ARG(std::vector<std::string>, class_names);

};

/// What every classifier of this library is, whatever its architecture: logits from
/// forward(), the torch::nn::Module (parameters, train/eval, to(), save/load), and the
/// `features` and `classifier` Sequentials (freezing, inference). Classifier holds one, as
/// a TORCH_MODULE holder holds its Impl.
class ClassifierImpl {
 public:
  virtual ~ClassifierImpl() = default;
  /// Logits, N x num_classes.
  virtual torch::Tensor forward(const torch::Tensor& images) = 0;
  /// The model as a module.
  virtual const std::shared_ptr<torch::nn::Module>& module_ptr() const = 0;
  virtual torch::nn::Sequential& features() = 0;
  virtual torch::nn::Sequential& classifier() = 0;
  /// A deep copy (parameters and buffers copied).
  virtual std::shared_ptr<ClassifierImpl> clone() const = 0;
};

namespace detail {

// ClassifierImpl over a model holder (MobileNetV2, MobileNetV1).
template <typename Holder>
class HeldClassifier final : public ClassifierImpl {
 public:
  explicit HeldClassifier(Holder model) : model_(std::move(model)), module_(model_.ptr()) {}
  torch::Tensor forward(const torch::Tensor& images) override { return model_->forward(images); }
  const std::shared_ptr<torch::nn::Module>& module_ptr() const override { return module_; }
  torch::nn::Sequential& features() override { return model_->features; }
  torch::nn::Sequential& classifier() override { return model_->classifier; }
  std::shared_ptr<ClassifierImpl> clone() const override {
    using Impl = typename Holder::ContainedType;
    return std::make_shared<HeldClassifier>(Holder(std::dynamic_pointer_cast<Impl>(model_->clone())));
  }

 private:
  Holder model_;
  std::shared_ptr<torch::nn::Module> module_;
};

}  // namespace detail

/// One of our classifiers behind a single type (a holder of a ClassifierImpl): forward()
/// gives logits, module() the torch::nn::Module, features() the block list. Built by
/// make_model, or from a model holder directly:
/// `Classifier net = MobileNetV2(MobileNetV2Options().num_classes(6));`
class Classifier {
 public:
  Classifier() = default;
  /// Wraps a MobileNetV2 / MobileNetV1 holder (anything with `features` and forward(Tensor)).
  template <typename Holder, typename = decltype(std::declval<Holder>()->features)>
  Classifier(Holder model)  // NOLINT: implicit on purpose, a holder *is* a classifier
      : impl_(std::make_shared<detail::HeldClassifier<Holder>>(std::move(model))) {}
  /// Holds `impl` (another architecture implementing ClassifierImpl).
  explicit Classifier(std::shared_ptr<ClassifierImpl> impl) : impl_(std::move(impl)) {}

  /// Wraps a module that is one of our architectures but held as a plain Module (a clone).
  static Classifier from_module(const std::shared_ptr<torch::nn::Module>& module) {
    if (auto v2 = std::dynamic_pointer_cast<MobileNetV2Impl>(module)) return MobileNetV2(v2);
    if (auto v1 = std::dynamic_pointer_cast<MobileNetV1Impl>(module)) return MobileNetV1(v1);
    TORCH_CHECK(false, "Classifier::from_module: ", module ? module->name() : "null",
                " is not a MobileNetV2 or MobileNetV1");
  }

  torch::Tensor forward(const torch::Tensor& images) { return impl().forward(images); }
  torch::Tensor operator()(const torch::Tensor& images) { return forward(images); }
  /// The held implementation (`model->forward(x)`), as LibTorch's module holders give it, so
  /// code written for MobileNetV2 holders, such as train_step(), takes a Classifier too.
  ClassifierImpl* operator->() { return &impl(); }
  torch::nn::Module& module() const { return *ptr(); }
  const std::shared_ptr<torch::nn::Module>& ptr() const {
    static const std::shared_ptr<torch::nn::Module> kNone;
    return impl_ ? impl_->module_ptr() : kNone;
  }
  torch::nn::Sequential& features() { return impl().features(); }
  torch::nn::Sequential& classifier() { return impl().classifier(); }
  bool defined() const { return impl_ != nullptr; }
  /// A deep copy (parameters and buffers copied), e.g. for an EMA of the weights.
  Classifier clone() const { return Classifier(impl_ ? impl_->clone() : nullptr); }

 private:
  ClassifierImpl& impl() const {
    TORCH_CHECK(impl_, "Classifier: empty (default-constructed) classifier");
    return *impl_;
  }
  std::shared_ptr<ClassifierImpl> impl_;
};

/// Builds the model `spec` describes, initialized by `init` (see init.hpp), with `norm` as
/// its norm layer (null: BatchNorm2d; distributed/sync_batch_norm.hpp's
/// sync_batch_norm_layer(comm) for SyncBatchNorm2d; state_dict keys are the same either way).
/// Example: `Classifier net = make_model(ModelSpec().num_classes(6).width_mult(0.5));`
inline Classifier make_model(const ModelSpec& spec, const InitPolicy& init = InitPolicy::torchvision(),
                             const NormLayer& norm = nullptr) {
  // Both option types share these setters; one lambda per architecture keeps them in step.
  auto build = [&](auto holder_type, auto options) -> Classifier {
    using Holder = decltype(holder_type);
    Holder m(options.num_classes(spec.num_classes())
                 .width_mult(spec.width_mult())
                 .output_stride(spec.output_stride())
                 .norm_layer(norm));
    init_model(*m, init);
    return m;
  };
  if (spec.arch() == "mobilenet_v2") return build(MobileNetV2(nullptr), MobileNetV2Options());
  if (spec.arch() == "mobilenet_v1") return build(MobileNetV1(nullptr), MobileNetV1Options());
  TORCH_CHECK(false, "make_model: unknown arch '", spec.arch(), "' (known: mobilenet_v2, mobilenet_v1)");
}

}  // namespace mobilenet
