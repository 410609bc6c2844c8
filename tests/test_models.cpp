// MobileNetV2 / V1: counts, layout, torchvision names and numerical parity, summary, weights.
#include <doctest/doctest.h>
#include <mobilenet/mobilenet.hpp>
#include <mobilenet/models/prepare.hpp>

#include <algorithm>
#include <fstream>
#include <functional>

#include "support.hpp"

using namespace mobilenet;
using mobilenet::test::relative_error;
using mobilenet::test::run;
using mobilenet::test::run_python;
using mobilenet::test::TempDir;

namespace {
int64_t count_params(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}
int64_t count_leaves(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& c : m.modules(false)) n += c->children().empty();
  return n;
}
torch::Tensor tensor_from(const std::string& path, const std::string& key) {
  for (auto& [name, t] : read_weights(path)) {
    if (name == key) return t;
  }
  FAIL("no '" << key << "' in " << path);
  return {};
}
// (stride, dilation) of each InvertedResidual's depthwise conv, features.1 .. features.17.
std::vector<std::pair<int64_t, int64_t>> layout(MobileNetV2& model) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (size_t i = 1; i + 1 < model->features->size(); ++i) {
    auto block = model->features->ptr(i)->as<InvertedResidualImpl<>>();
    REQUIRE(block != nullptr);
    out.emplace_back(block->options.stride(), block->options.dilation());
  }
  return out;
}
}  // namespace

TEST_CASE("MobileNetV2 and V1 have the published parameter and layer counts") {
  for (int64_t os : {32, 16, 8}) {
    MobileNetV2 seed(MobileNetV2Options().num_classes(80).output_stride(os));
    CHECK(count_params(*seed) == 2326352);
    CHECK(count_leaves(*seed) == 141);
  }
  CHECK(count_params(*MobileNetV2()) == 3504872);
  CHECK(count_params(*MobileNetV1()) == 4231976);
  MobileNetV2 seed(seed_model_options());
  CHECK(seed->options.output_stride() == 16);
  CHECK(seed->options.num_classes() == 80);
}

TEST_CASE("output stride 16 and 8 replace strides by dilation, the first block keeping the old one") {
  using L = std::vector<std::pair<int64_t, int64_t>>;
  // features.1 .. features.17: stages 16x1, 24x2, 32x3, 64x4, 96x3, 160x3, 320x1.
  MobileNetV2 os32(MobileNetV2Options().output_stride(32));
  CHECK(layout(os32) == L{{1, 1}, {2, 1}, {1, 1}, {2, 1}, {1, 1}, {1, 1}, {2, 1}, {1, 1}, {1, 1},
                          {1, 1}, {1, 1}, {1, 1}, {1, 1}, {2, 1}, {1, 1}, {1, 1}, {1, 1}});
  MobileNetV2 os16(MobileNetV2Options().output_stride(16));
  CHECK(layout(os16) == L{{1, 1}, {2, 1}, {1, 1}, {2, 1}, {1, 1}, {1, 1}, {2, 1}, {1, 1}, {1, 1},
                          {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 2}, {1, 2}, {1, 2}});
  MobileNetV2 os8(MobileNetV2Options().output_stride(8));
  CHECK(layout(os8) == L{{1, 1}, {2, 1}, {1, 1}, {2, 1}, {1, 1}, {1, 1}, {1, 1}, {1, 2}, {1, 2},
                         {1, 2}, {1, 2}, {1, 2}, {1, 2}, {1, 2}, {1, 4}, {1, 4}, {1, 4}});
  // Explicit per-stage dilation multiplies, without changing the output stride.
  MobileNetV2 wide(MobileNetV2Options().output_stride(16).stage_dilations({1, 1, 1, 1, 1, 2, 3}));
  auto l = layout(wide);
  CHECK(l[13] == std::pair<int64_t, int64_t>{1, 2});  // features.14 keeps 1, x2
  CHECK(l[14] == std::pair<int64_t, int64_t>{1, 4});
  CHECK(l[16] == std::pair<int64_t, int64_t>{1, 6});
  torch::NoGradGuard g;
  wide->eval();
  CHECK(wide->forward_features(torch::zeros({1, 3, 64, 64})).sizes() ==
        torch::IntArrayRef({1, 1280, 4, 4}));
}

TEST_CASE("forward gives logits and forward_features the backbone map at the output stride") {
  torch::manual_seed(0);
  for (int64_t os : {32, 16, 8}) {
    MobileNetV2 model(MobileNetV2Options().num_classes(5).output_stride(os));
    auto x = torch::randn({2, 3, 64, 64}, torch::requires_grad());
    CHECK(model->forward_features(x).sizes() == torch::IntArrayRef({2, 1280, 64 / os, 64 / os}));
    auto y = model(x);
    CHECK(y.sizes() == torch::IntArrayRef({2, 5}));
    y.sum().backward();
    CHECK(x.grad().sizes() == x.sizes());
    for (auto& p : model->parameters()) {
      REQUIRE(p.grad().defined());
      CHECK(p.grad().sizes() == p.sizes());
    }
  }
  MobileNetV1 v1(MobileNetV1Options().num_classes(7).output_stride(16).width_mult(0.5));
  auto x = torch::randn({2, 3, 64, 64});
  CHECK(v1->forward_features(x).sizes() == torch::IntArrayRef({2, 512, 4, 4}));
  auto y = v1(x);
  CHECK(y.sizes() == torch::IntArrayRef({2, 7}));
  y.sum().backward();
  CHECK_THROWS_WITH_AS(MobileNetV2(MobileNetV2Options().output_stride(4)),
                       doctest::Contains("output_stride must be 8, 16 or 32, got 4"), c10::Error);
}

TEST_CASE("Classifier holds a ClassifierImpl: -> reaches the model, clone() copies the weights "
          "deeply, and an empty one says so") {
  torch::manual_seed(0);
  Classifier net = make_model(ModelSpec().num_classes(5).width_mult(0.25));
  net.module().eval();
  const torch::Tensor x = torch::rand({2, 3, 32, 32});
  ClassifierImpl* impl = net.operator->();
  CHECK(impl->module_ptr() == net.ptr());
  CHECK(torch::equal(net->forward(x), net.forward(x)));
  CHECK(net.features().ptr() == net.module().named_children()["features"]);
  Classifier copy = net.clone();
  CHECK(copy.ptr() != net.ptr());
  CHECK(torch::equal(copy.forward(x), net.forward(x)));
  torch::NoGradGuard no_grad;
  copy.classifier()->parameters()[0].add_(1.0);
  CHECK(!torch::equal(copy.forward(x), net.forward(x)));
  CHECK(!Classifier().defined());
  CHECK_THROWS_WITH_AS(Classifier().forward(x), doctest::Contains("empty"), c10::Error);
}

TEST_CASE("width_mult rounds channels like torchvision's _make_divisible") {
  MobileNetV2 half(MobileNetV2Options().width_mult(0.5).num_classes(10));
  auto stem = half->features->ptr(0)->as<ConvBnActImpl<>>();
  CHECK(stem->options.out_channels() == 16);
  auto last = half->features->ptr(18)->as<ConvBnActImpl<>>();
  CHECK(last->options.out_channels() == 1280);  // never below last_channel
  MobileNetV2 wide(MobileNetV2Options().width_mult(1.4).num_classes(10));
  CHECK(wide->features->ptr(18)->as<ConvBnActImpl<>>()->options.out_channels() == 1792);
}

TEST_CASE("state_dict names equal torchvision's mobilenet_v2 keys, in order") {
  TempDir dir("names");
  REQUIRE(run_python("torchvision_ref.py", {"keys", "80", dir / "keys.txt"}) == 0);
  std::ifstream in(dir / "keys.txt");
  std::vector<std::string> expected;
  for (std::string line; std::getline(in, line);) expected.push_back(line);
  REQUIRE(expected.size() == 314);
  // Default BatchNorm2d, and norms built by a norm_layer (type-erased blocks).
  for (const bool erased : {false, true}) {
    CAPTURE(erased);
    auto options = seed_model_options();
    if (erased) options.norm_layer(batch_norm_layer());
    std::vector<std::string> ours;
    for (auto& [name, t] : state_dict(*MobileNetV2(options))) ours.push_back(name);
    CHECK(ours == expected);
  }
}

TEST_CASE("a norm_layer builds every norm with the default's channels, counts and outputs") {
  std::vector<int64_t> asked;
  NormLayer counting = [&](int64_t c) {
    asked.push_back(c);
    return torch::nn::AnyModule(torch::nn::BatchNorm2d(c));
  };
  auto norm_channels = [](const torch::nn::Module& model) {
    std::vector<int64_t> out;
    for (const auto& m : model.modules(false)) {
      if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) out.push_back(bn->options.num_features());
    }
    return out;
  };
  torch::manual_seed(5);
  MobileNetV2 plain(seed_model_options());
  torch::manual_seed(5);
  MobileNetV2 erased(seed_model_options().norm_layer(counting));
  CHECK(asked.size() == 52);
  CHECK(asked == norm_channels(*plain));
  CHECK(count_params(*erased) == 2326352);
  CHECK(count_leaves(*erased) == 141);
  CHECK(plain->features->ptr(0)->as<ConvBnActImpl<>>() != nullptr);
  CHECK(erased->features->ptr(0)->as<ConvBnActImpl<ReLU6, torch::nn::AnyModule>>() != nullptr);
  CHECK(erased->features->ptr(1)->as<InvertedResidualImpl<ReLU6, torch::nn::AnyModule>>() !=
        nullptr);
  const auto summary = summarize(*erased, {3, 64, 64});
  CHECK(summary.rows.size() == summarize(*plain, {3, 64, 64}).rows.size());
  CHECK(summary.leaf_layers == 141);
  // Same initialization, same function: train mode (batch statistics) and eval mode.
  auto x = torch::randn({2, 3, 64, 64});
  plain->classifier->ptr(0)->eval();  // no dropout, so the two draws cannot differ
  erased->classifier->ptr(0)->eval();
  CHECK(torch::equal(erased(x), plain(x)));
  plain->eval();
  erased->eval();
  CHECK(torch::equal(erased(x), plain(x)));
  // clone() rebuilds through the same norm_layer (LibTorch's clone resets each level).
  asked.clear();
  auto copy = std::dynamic_pointer_cast<MobileNetV2Impl>(erased->clone());
  CHECK(asked.size() >= 52);
  CHECK(copy->features->ptr(0)->as<ConvBnActImpl<ReLU6, torch::nn::AnyModule>>() != nullptr);
  CHECK(torch::equal(copy->forward(x), plain(x)));

  asked.clear();
  torch::manual_seed(6);
  MobileNetV1 v1_plain(MobileNetV1Options().num_classes(10));
  torch::manual_seed(6);
  MobileNetV1 v1_erased(MobileNetV1Options().num_classes(10).norm_layer(counting));
  CHECK(asked.size() == 27);  // stem + 13 blocks x 2
  CHECK(asked == norm_channels(*v1_plain));
  CHECK(count_params(*v1_erased) == count_params(*v1_plain));
  std::vector<std::string> keys_plain, keys_erased;
  for (auto& [name, t] : state_dict(*v1_plain)) keys_plain.push_back(name);
  for (auto& [name, t] : state_dict(*v1_erased)) keys_erased.push_back(name);
  CHECK(keys_erased == keys_plain);
  v1_plain->eval();
  v1_erased->eval();
  CHECK(torch::equal(v1_erased(x), v1_plain(x)));
}

TEST_CASE("torchvision weights give torchvision's logits; our weights give torchvision ours") {
  TempDir dir("parity");
  const auto w = dir / "tv.pt", x = dir / "x.pt", y = dir / "y.pt";
  REQUIRE(run_python("torchvision_ref.py", {"export", "80", "7", w, x, y}) == 0);
  auto input = tensor_from(x, "input");

  SUBCASE("Python -> C++ at output stride 32, and back to Python unchanged") {
    MobileNetV2 model(MobileNetV2Options().num_classes(80));
    auto report = load_weights(*model, w);
    CHECK(report.complete());
    CHECK(report.loaded == 314);
    model->eval();
    torch::NoGradGuard g;
    CHECK(relative_error(model(input), tensor_from(y, "logits")) <= 1e-5);
    save_weights(*model, dir / "back.pt");
    CHECK(run_python("torchvision_ref.py", {"same", w, dir / "back.pt"}) == 0);
  }
  SUBCASE("C++ -> Python at output strides 32, 16, 8 (dilation rule re-implemented in Python)") {
    for (int64_t os : {32, 16, 8}) {
      CAPTURE(os);
      MobileNetV2 model(MobileNetV2Options().num_classes(80).output_stride(os));
      load_weights(*model, w);  // random torchvision weights incl. BN statistics
      model->eval();
      torch::NoGradGuard g;
      auto ours = model(input);
      save_weights(*model, dir / "ours.pt");
      REQUIRE(run_python("torchvision_ref.py", {"logits", "80", std::to_string(os),
                                                   dir / "ours.pt", x, dir / "out.pt"}) == 0);
      CHECK(relative_error(ours, tensor_from(dir / "out.pt", "logits")) <= 1e-5);
    }
  }
}

TEST_CASE("scripts/export_torchvision_weights.py turns a saved state_dict into loadable weights") {
  TempDir dir("export");
  REQUIRE(run_python("torchvision_ref.py", {"raw", "80", dir / "raw.pt"}) == 0);
  REQUIRE(run(MOBILENET_PYTHON,
              {std::string(MOBILENET_SOURCE_DIR) + "/scripts/export_torchvision_weights.py",
               dir / "out.pt", "--num-classes", "80", "--checkpoint", dir / "raw.pt"},
              /*quiet=*/true) == 0);
  MobileNetV2 model(seed_model_options());
  CHECK(load_weights(*model, dir / "out.pt").complete());
  save_weights(*model, dir / "back.pt");
  CHECK(run_python("torchvision_ref.py", {"same", dir / "out.pt", dir / "back.pt"}) == 0);
}

TEST_CASE("load_weights is strict by default and reports every mismatch; non-strict skips them") {
  TempDir dir("strict");
  MobileNetV2 source(MobileNetV2Options().num_classes(80));
  save_weights(*source, dir / "w.pt");
  MobileNetV2 other(MobileNetV2Options().num_classes(10));
  auto before = other->classifier->parameters()[0].clone();
  try {
    load_weights(*other, dir / "w.pt");
    FAIL("strict load of a mismatched classifier did not throw");
  } catch (const c10::Error& e) {
    const std::string msg = e.what();
    CHECK(msg.find("classifier.1.weight: file [80, 1280] vs model [10, 1280]") !=
          std::string::npos);
    CHECK(msg.find("classifier.1.bias") != std::string::npos);
    CHECK(msg.find(dir / "w.pt") != std::string::npos);
  }
  auto report = load_weights(*other, dir / "w.pt", LoadOptions().strict(false));
  CHECK(report.mismatched.size() == 2);
  CHECK(report.loaded == 312);
  CHECK(torch::equal(other->classifier->parameters()[0], before));
  CHECK(torch::equal(other->features->parameters()[0], source->features->parameters()[0]));

  MobileNetV1 v1;
  auto r = load_weights(*v1, dir / "w.pt", LoadOptions().strict(false));
  CHECK(!r.missing.empty());
  CHECK(!r.unexpected.empty());
  std::ofstream(dir / "junk.pt") << "not a torch file";
  CHECK_THROWS_WITH_AS(load_weights(*other, dir / "junk.pt"), doctest::Contains("junk.pt"),
                       c10::Error);
  CHECK_THROWS_WITH_AS(load_weights(*other, dir / "absent.pt"), doctest::Contains("absent.pt"),
                       c10::Error);
}

TEST_CASE("summary of the seed model matches torchsummary's figures computed in Python") {
  TempDir dir("summary");
  REQUIRE(run_python("torchvision_ref.py", {"summary", "80", "16", "256", dir / "s.txt"}) == 0);
  std::ifstream in(dir / "s.txt");
  int64_t rows = 0, params = 0;
  double fwd = 0, input_mb = 0, params_mb = 0;
  in >> rows >> params >> fwd >> input_mb >> params_mb;
  MobileNetV2 model(seed_model_options());
  auto s = summarize(*model, seed_input_shape());
  CHECK(static_cast<int64_t>(s.rows.size()) == rows);
  CHECK(s.total_params == params);
  CHECK(s.forward_backward_mb == doctest::Approx(fwd).epsilon(1e-12));
  CHECK(s.input_mb == doctest::Approx(input_mb).epsilon(1e-12));
  CHECK(s.params_mb == doctest::Approx(params_mb).epsilon(1e-12));
  CHECK(s.leaf_layers == 141);
  const auto text = s.to_string();
  CHECK(text.find("Total params: 2,326,352\n") != std::string::npos);
  CHECK(text.find("Input size (MB): 0.75\n") != std::string::npos);
  CHECK(text.find("Params size (MB): 8.87\n") != std::string::npos);
  CHECK(text.find("Leaf layers: 141\n") != std::string::npos);
  CHECK(text.find("InvertedResidual-9") != std::string::npos);
  // Frozen parameters show up as non-trainable.
  for (auto& p : model->classifier->parameters()) p.set_requires_grad(false);
  auto frozen = summarize(*model, seed_input_shape());
  CHECK(frozen.trainable_params == 2326352 - (1280 * 80 + 80));
  CHECK(model->is_training());  // mode restored
}

TEST_CASE("to_channels_last stores conv weights NHWC and leaves the outputs unchanged") {
  torch::manual_seed(8);
  MobileNetV2 model(MobileNetV2Options().num_classes(5).width_mult(0.25));
  model->eval();
  torch::NoGradGuard g;
  auto x = torch::randn({2, 3, 32, 32});
  auto before = model(x);
  to_channels_last(*model);
  CHECK(model->features[0]->parameters()[0].is_contiguous(at::MemoryFormat::ChannelsLast));
  CHECK(relative_error(model(x.contiguous(at::MemoryFormat::ChannelsLast)), before) <= 1e-5);
}

namespace {
// Non-trivial BatchNorm statistics and affine parameters, so folding them is really tested
// (fresh modules have mean 0, var 1, gamma 1, beta 0).
void randomize_batchnorm(torch::nn::Module& model) {
  torch::NoGradGuard g;
  for (auto& m : model.modules()) {
    if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) {
      bn->running_mean.normal_(0, 0.5);
      bn->running_var.uniform_(0.3, 2.0);
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0, 0.3);
    }
  }
}
}  // namespace

// 1x1, stride-1, unpadded, ungrouped Conv2d modules of a model, counted on its modules.
template <typename Model>
int64_t pointwise_convolutions(Model& model) {
  int64_t n = 0;
  for (auto& m : model.modules()) {
    if (auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(m)) {
      const auto& o = conv->options;
      if (o.groups() != 1 || (*o.kernel_size())[0] != 1 || (*o.kernel_size())[1] != 1 ||
          (*o.stride())[0] != 1 || (*o.stride())[1] != 1) {
        continue;
      }
      // Unpadded iff a 3x3 input stays 3x3 (the padding option is a variant whose type differs
      // between LibTorch 1.13 and 2.x).
      torch::NoGradGuard no_grad;
      n += conv->forward(torch::zeros({1, o.in_channels(), 3, 3})).size(2) == 3;
    }
  }
  return n;
}

TEST_CASE("prepare_for_inference equals the eval forward within 1e-5 (V2 at OS 32/16/8, V1, norm_layer)") {
  torch::manual_seed(11);
  auto x = torch::randn({2, 3, 64, 64});
  auto check = [&](auto& model) {
    randomize_batchnorm(*model);
    model->eval();
    torch::Tensor expected;
    {
      torch::NoGradGuard g;
      expected = model(x);
    }
    for (auto format : {InferenceMemoryFormat::kChannelsLast, InferenceMemoryFormat::kContiguous,
                        InferenceMemoryFormat::kMeasure}) {
      using Backend = InferenceNode::Backend;
      for (std::optional<Backend> backend :
           {std::optional<Backend>(), std::optional(Backend::kATen),
            std::optional(Backend::kMkldnn), std::optional(Backend::kGemm)}) {
        CAPTURE(static_cast<int>(format));
        CAPTURE(static_cast<int>(backend.value_or(Backend(-1))));
        auto fast = prepare_for_inference(
            *model, InferenceOptions().memory_format(format).backend(backend).example_input(x));
        if (backend == Backend::kGemm) {
          // Every 1x1 stride-1 convolution (expansions, projections, V1's pointwise) is one.
          CHECK(fast.num_gemm_convolutions() == pointwise_convolutions(*model));
          CHECK(fast.num_gemm_convolutions() > 0);
        }
        CHECK(relative_error(fast(x), expected) <= 1e-5);
        // Any input layout is accepted.
        CHECK(relative_error(fast(x.contiguous(at::MemoryFormat::ChannelsLast)), expected) <=
              1e-5);
      }
    }
  };
  for (int64_t os : {32, 16, 8}) {
    CAPTURE(os);
    MobileNetV2 model(MobileNetV2Options().num_classes(7).width_mult(0.5).output_stride(os));
    check(model);
  }
  MobileNetV1 v1(MobileNetV1Options().num_classes(7).width_mult(0.25).output_stride(16));
  check(v1);
  // Blocks built through a norm_layer hold their norm in an AnyModule.
  MobileNetV2 any(MobileNetV2Options().num_classes(7).width_mult(0.5).norm_layer(
      batch_norm_layer()));
  check(any);
}

TEST_CASE("prepare_for_inference leaves no BatchNorm: 52 folded convolutions, 10 residuals") {
  // torchvision's mobilenet_v2: 52 Conv2d, 52 BatchNorm2d, 10 blocks with use_res_connect.
  MobileNetV2 model(MobileNetV2Options().num_classes(3));
  auto fast = prepare_for_inference(
      *model, InferenceOptions().memory_format(InferenceMemoryFormat::kChannelsLast)
                  .backend(InferenceNode::Backend::kATen));
  CHECK(fast.num_convolutions() == 52);
  CHECK(fast.memory_format() == at::MemoryFormat::ChannelsLast);
  int64_t residuals = 0, folded = 0;
  using Node = mobilenet::InferenceNode;
  std::function<void(const std::vector<Node>&)> walk = [&](const std::vector<Node>& nodes) {
    for (const auto& n : nodes) {
      residuals += n.kind == Node::Kind::kResidual;
      folded += n.batchnorm_folded;
      walk(n.body);
    }
  };
  walk(fast.nodes());
  CHECK(residuals == 10);
  CHECK(folded == 52);
  // The model itself is untouched and still trains.
  CHECK(model->features[0]->parameters()[0].requires_grad());
}

TEST_CASE("prepare_for_inference names a module it cannot fold instead of guessing") {
  torch::nn::Sequential features(ConvBnAct<>(ConvBnActOptions(3, 8)),
                                 torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)));
  torch::nn::Sequential classifier(torch::nn::Linear(8, 2));
  CHECK_THROWS_WITH(prepare_for_inference(features, classifier),
                    doctest::Contains("unsupported module torch::nn::MaxPool2d"));
  torch::nn::Sequential relu_first{torch::nn::Sequential{ReLU6()}};
  CHECK_THROWS_WITH(prepare_for_inference(relu_first, classifier),
                    doctest::Contains("must directly follow a convolution"));
}

TEST_CASE("ReLU6 in float32 backpropagates like torch.nn.ReLU6: no gradient at 0 and 6") {
  // PyTorch's ReLU6 is hardtanh(0, 6), whose gradient is 1 only strictly inside (0, 6). The
  // in-place variant (the models' default) must agree, and so must the out-of-place one.
  for (bool inplace : {true, false}) {
    CAPTURE(inplace);
    auto x = torch::tensor({-1.0f, 0.0f, 3.0f, 6.0f, 7.0f}).requires_grad_();
    ReLU6 act(ReLU6Options().inplace(inplace));
    auto y = act(x * 1);  // in-place needs a non-leaf
    CHECK(torch::equal(y, torch::tensor({0.0f, 0.0f, 3.0f, 6.0f, 6.0f})));
    y.sum().backward();
    CHECK(torch::equal(x.grad(), torch::tensor({0.0f, 0.0f, 1.0f, 0.0f, 0.0f})));
  }
}
