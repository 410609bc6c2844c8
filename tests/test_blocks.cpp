// Blocks (ConvBnAct, InvertedResidual, DepthwiseSeparable) and initializers.
#include <doctest/doctest.h>
#include <mobilenet/mobilenet.hpp>

#include <cmath>
#include <sstream>
#include <type_traits>

using namespace mobilenet;

namespace {
int64_t count_leaves(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& c : m.modules(false)) n += c->children().empty();
  return n;
}
std::vector<int64_t> vec(const torch::ExpandingArray<2>& a) { return torch::IntArrayRef(a).vec(); }
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("ConvBnAct pads by dilation*(k-1)/2 so stride 1 keeps the size") {
  torch::manual_seed(0);
  for (int64_t d : {1, 2, 4}) {
    ConvBnAct<> block(ConvBnActOptions(4, 8).dilation(d));
    CHECK(vec(*mobilenet::detail::variant_get_if<torch::ExpandingArray<2>>(block->conv->options.padding())) ==
          std::vector<int64_t>{d, d});
    CHECK_FALSE(block->conv->options.bias());
    auto y = block(torch::randn({2, 4, 9, 9}));
    CHECK(y.sizes() == torch::IntArrayRef({2, 8, 9, 9}));
    CHECK(y.min().item<float>() >= 0);
    CHECK(y.max().item<float>() <= 6);
  }
  ConvBnAct<> strided(ConvBnActOptions(4, 8).stride(2));
  CHECK(strided(torch::randn({1, 4, 9, 9})).sizes() == torch::IntArrayRef({1, 8, 5, 5}));
  ConvBnAct<NoActivation> linear(ConvBnActOptions(4, 8).kernel_size(1));
  CHECK(count_leaves(*linear) == 2);
  CHECK(count_leaves(*strided) == 3);
  // Without activation negative values survive.
  CHECK(linear(torch::randn({2, 4, 5, 5})).min().item<float>() < 0);
}

TEST_CASE("ConvBnAct names its children 0, 1, 2 like torchvision's Conv2dNormActivation") {
  ConvBnAct<> block(ConvBnActOptions(3, 8));
  std::vector<std::string> names;
  for (const auto& [name, t] : state_dict(*block)) names.push_back(name);
  CHECK(names == std::vector<std::string>{"0.weight", "1.weight", "1.bias", "1.running_mean",
                                          "1.running_var", "1.num_batches_tracked"});
}

TEST_CASE("InvertedResidual keeps the skip only when stride 1 and in == out") {
  torch::manual_seed(1);
  struct Case {
    int64_t in, out, stride;
    bool skip;
  };
  for (auto c : {Case{8, 8, 1, true}, Case{8, 16, 1, false}, Case{8, 8, 2, false},
                 Case{8, 16, 2, false}}) {
    InvertedResidual<> block(InvertedResidualOptions(c.in, c.out).stride(c.stride));
    CHECK(block->options.use_residual() == c.skip);
    // Zeroing the projection's BN makes the branch output 0: what is left is the skip.
    {
      torch::NoGradGuard g;
      auto bn = block->conv->ptr(block->conv->size() - 1)->as<torch::nn::BatchNorm2dImpl>();
      REQUIRE(bn != nullptr);
      bn->weight.zero_();
      bn->bias.zero_();
    }
    block->eval();
    auto x = torch::randn({2, c.in, 8, 8});
    auto y = block(x);
    CHECK(y.size(1) == c.out);
    CHECK(y.size(2) == 8 / c.stride);
    if (c.skip) {
      CHECK(torch::equal(y, x));
    } else {
      CHECK(y.abs().max().item<float>() == 0);
    }
  }
}

TEST_CASE("InvertedResidual skips the expansion when expand_ratio is 1") {
  InvertedResidual<> t1(InvertedResidualOptions(16, 16).expand_ratio(1));
  InvertedResidual<> t6(InvertedResidualOptions(16, 16).expand_ratio(6));
  CHECK(t1->conv->size() == 3);  // dw, project conv, project bn
  CHECK(t6->conv->size() == 4);  // expand, dw, project conv, project bn
  CHECK(count_leaves(*t1) == 5);
  CHECK(count_leaves(*t6) == 8);
  // Expansion width is round(in * t), as torchvision.
  InvertedResidual<> odd(InvertedResidualOptions(10, 10).expand_ratio(2.5));
  auto first = odd->conv->ptr(0)->as<ConvBnActImpl<>>();
  REQUIRE(first != nullptr);
  CHECK(first->options.out_channels() == 25);
}

TEST_CASE("InvertedResidual's depthwise conv carries the dilation") {
  InvertedResidual<> block(InvertedResidualOptions(8, 8).dilation(4));
  auto dw = block->conv->ptr(1)->as<ConvBnActImpl<>>();
  REQUIRE(dw != nullptr);
  CHECK(vec(dw->conv->options.dilation()) == std::vector<int64_t>{4, 4});
  CHECK(dw->conv->options.groups() == 48);
  CHECK(block(torch::randn({1, 8, 7, 7})).sizes() == torch::IntArrayRef({1, 8, 7, 7}));
}

TEST_CASE("InvertedResidual rejects invalid options naming the option and value") {
  CHECK(error_of([] { InvertedResidual<>(InvertedResidualOptions(8, 8).stride(3)); })
            .find("stride must be 1 or 2, got 3") != std::string::npos);
  CHECK(error_of([] { InvertedResidual<>(InvertedResidualOptions(0, 8)); })
            .find("in_channels must be > 0, got 0") != std::string::npos);
  CHECK(error_of([] { InvertedResidual<>(InvertedResidualOptions(8, -1)); })
            .find("out_channels must be > 0, got -1") != std::string::npos);
  CHECK(error_of([] { InvertedResidual<>(InvertedResidualOptions(8, 8).dilation(0)); })
            .find("dilation must be >= 1, got 0") != std::string::npos);
  CHECK(error_of([] { InvertedResidual<>(InvertedResidualOptions(8, 8).expand_ratio(0.5)); })
            .find("expand_ratio must be >= 1, got 0.5") != std::string::npos);
}

TEST_CASE("InvertedResidual prints its options") {
  InvertedResidual<> block(InvertedResidualOptions(32, 16).stride(2).dilation(2));
  std::ostringstream s;
  block->pretty_print(s);
  CHECK(s.str() ==
        "mobilenet::InvertedResidual(in=32, out=16, stride=2, expand_ratio=6, dilation=2)");
}

TEST_CASE("DepthwiseSeparable is dw 3x3 + BN + ReLU then pw 1x1 + BN + ReLU") {
  torch::manual_seed(2);
  DepthwiseSeparable<> block(DepthwiseSeparableOptions(8, 16).stride(2));
  CHECK(block->depthwise->conv->options.groups() == 8);
  CHECK(vec(block->depthwise->conv->options.kernel_size()) == std::vector<int64_t>{3, 3});
  CHECK(vec(block->pointwise->conv->options.kernel_size()) == std::vector<int64_t>{1, 1});
  CHECK(count_leaves(*block) == 6);
  // 8*9 + 2*8 + 8*16 + 2*16
  int64_t params = 0;
  for (auto& p : block->parameters()) params += p.numel();
  CHECK(params == 8 * 9 + 2 * 8 + 8 * 16 + 2 * 16);
  auto x = torch::randn({2, 8, 10, 10}, torch::requires_grad());
  auto y = block(x);
  CHECK(y.sizes() == torch::IntArrayRef({2, 16, 5, 5}));
  CHECK(y.min().item<float>() >= 0);  // ReLU, not ReLU6: values above 6 are allowed
  y.sum().backward();
  CHECK(x.grad().sizes() == x.sizes());
  CHECK_THROWS_WITH_AS(DepthwiseSeparable<>(DepthwiseSeparableOptions(8, 16).stride(4)),
                       doctest::Contains("stride must be 1 or 2, got 4"), c10::Error);
}

TEST_CASE("ReLU6 clamps to [0, 6] and has a bf16 backward on CPU") {
  auto x = torch::linspace(-10, 10, 41, torch::kBFloat16).requires_grad_();
  ReLU6 act(ReLU6Options().inplace(false));
  auto y = act(x);
  CHECK(torch::equal(y, torch::clamp(x, 0, 6)));
  y.sum().backward();
  // clamp passes the gradient at the bounds too (hardtanh does not); measure-zero in training.
  auto inside = (x.detach() >= 0).logical_and(x.detach() <= 6);
  CHECK(torch::equal(x.grad().to(torch::kBool), inside));
}

TEST_CASE("init_model applies Kaiming fan_out to convs, N(0, std) to linears, 1/0 to BN") {
  torch::manual_seed(3);
  torch::nn::Sequential net(torch::nn::Conv2d(torch::nn::Conv2dOptions(64, 256, 3).bias(true)),
                            torch::nn::BatchNorm2d(256), torch::nn::Linear(512, 400));
  {
    torch::NoGradGuard g;
    for (auto& b : net->buffers()) b.fill_(5);
    for (auto& p : net->parameters()) p.fill_(5);
  }
  for (double std : {0.01, 1.0}) {
    init_model(*net, InitPolicy().linear_std(std));
    auto conv = net->ptr(0)->as<torch::nn::Conv2dImpl>();
    auto bn = net->ptr(1)->as<torch::nn::BatchNorm2dImpl>();
    auto lin = net->ptr(2)->as<torch::nn::LinearImpl>();
    // He normal with fan_out = out_channels * k * k and gain sqrt(2).
    const double expected = std::sqrt(2.0 / (256 * 9));
    CHECK(conv->weight.std().item<double>() == doctest::Approx(expected).epsilon(0.02));
    CHECK(conv->weight.mean().item<double>() == doctest::Approx(0).epsilon(expected * 0.02));
    CHECK(conv->bias.abs().max().item<double>() == 0);
    CHECK(lin->weight.std().item<double>() == doctest::Approx(std).epsilon(0.02));
    CHECK(lin->bias.abs().max().item<double>() == 0);
    CHECK(torch::equal(bn->weight, torch::ones_like(bn->weight)));
    CHECK(torch::equal(bn->bias, torch::zeros_like(bn->bias)));
    CHECK(torch::equal(bn->running_mean, torch::zeros_like(bn->running_mean)));
    CHECK(torch::equal(bn->running_var, torch::ones_like(bn->running_var)));
    CHECK(bn->num_batches_tracked.item<int64_t>() == 0);
  }
  CHECK(init_policy("seed").linear_std() == 1.0);
  CHECK(init_policy("torchvision").linear_std() == 0.01);
  CHECK_THROWS_WITH_AS(init_policy("xavier"), doctest::Contains("'xavier'"), c10::Error);
}

TEST_CASE("Blocks with Norm = AnyModule build every norm from norm_layer, BatchNorm2d when null") {
  // The default blocks hold a concrete BatchNorm2d: no type erasure on the default path.
  static_assert(std::is_same_v<decltype(ConvBnActImpl<>::norm), torch::nn::BatchNorm2d>);
  std::vector<int64_t> asked;
  NormLayer counting = [&](int64_t c) {
    asked.push_back(c);
    return torch::nn::AnyModule(torch::nn::BatchNorm2d(c));
  };
  torch::manual_seed(4);
  InvertedResidual<> fixed(InvertedResidualOptions(8, 16).stride(2));
  torch::manual_seed(4);
  InvertedResidual<ReLU6, torch::nn::AnyModule> erased(
      InvertedResidualOptions(8, 16).stride(2).norm_layer(counting));
  CHECK(asked == std::vector<int64_t>{48, 48, 16});  // expansion, depthwise, projection
  std::vector<std::string> keys_fixed, keys_erased;
  for (const auto& [name, t] : state_dict(*fixed)) keys_fixed.push_back(name);
  for (const auto& [name, t] : state_dict(*erased)) keys_erased.push_back(name);
  CHECK(keys_erased == keys_fixed);
  auto x = torch::randn({2, 8, 9, 9});
  CHECK(torch::equal(erased(x), fixed(x)));  // train mode: batch statistics
  CHECK(count_leaves(*erased) == count_leaves(*fixed));

  asked.clear();
  DepthwiseSeparable<ReLU, torch::nn::AnyModule> dws(
      DepthwiseSeparableOptions(8, 16).norm_layer(counting));
  CHECK(asked == std::vector<int64_t>{8, 16});

  ConvBnAct<ReLU6, torch::nn::AnyModule> null_layer(ConvBnActOptions(3, 8));
  CHECK(null_layer->norm.ptr()->as<torch::nn::BatchNorm2dImpl>() != nullptr);

  // Any module with BatchNorm2d's forward fits, e.g. GroupNorm.
  ConvBnAct<NoActivation, torch::nn::AnyModule> grouped(
      ConvBnActOptions(4, 8).kernel_size(1).norm_layer([](int64_t c) {
        return torch::nn::AnyModule(torch::nn::GroupNorm(torch::nn::GroupNormOptions(2, c)));
      }));
  auto group_norm = grouped->norm.ptr()->as<torch::nn::GroupNormImpl>();
  REQUIRE(group_norm != nullptr);
  auto input = torch::randn({2, 4, 5, 5});
  CHECK(torch::allclose(grouped(input),
                        torch::group_norm(grouped->conv(input), 2, group_norm->weight,
                                          group_norm->bias, 1e-5)));
}

TEST_CASE("norm_layer on a block with a fixed Norm, or a factory returning nothing, is an error") {
  NormLayer layer = [](int64_t c) { return torch::nn::AnyModule(torch::nn::BatchNorm2d(c)); };
  CHECK(error_of([&] { ConvBnAct<>(ConvBnActOptions(3, 8).norm_layer(layer)); })
            .find("ConvBnAct: norm_layer is set, but this block's Norm template argument is a "
                  "fixed type; use Norm = torch::nn::AnyModule") != std::string::npos);
  CHECK(error_of([&] { InvertedResidual<>(InvertedResidualOptions(8, 8).norm_layer(layer)); })
            .find("norm_layer is set") != std::string::npos);
  NormLayer empty = [](int64_t) { return torch::nn::AnyModule(); };
  CHECK(error_of([&] {
          ConvBnAct<ReLU6, torch::nn::AnyModule>(ConvBnActOptions(3, 8).norm_layer(empty));
        }).find("ConvBnAct: norm_layer returned an empty module for 8 channels") !=
        std::string::npos);
}

TEST_CASE("batch_norm_layer passes its options on, with each layer's channel count") {
  auto layer = batch_norm_layer(torch::nn::BatchNormOptions(0).eps(1e-3).momentum(0.01));
  auto module = layer(24);
  auto bn = module.ptr()->as<torch::nn::BatchNorm2dImpl>();
  REQUIRE(bn != nullptr);
  CHECK(bn->options.num_features() == 24);
  CHECK(bn->options.eps() == 1e-3);
  CHECK(bn->options.momentum().value() == 0.01);
  auto plain = batch_norm_layer()(5);
  CHECK(plain.ptr()->as<torch::nn::BatchNorm2dImpl>()->options.eps() == 1e-5);
}

TEST_CASE("init_model resets every BatchNorm-like module, whatever its type") {
  torch::nn::Sequential net(torch::nn::BatchNorm3d(4), torch::nn::BatchNorm2d(4),
                            torch::nn::GroupNorm(2, 4), torch::nn::Conv2d(4, 4, 1));
  CHECK(is_batch_norm(*net->ptr(0)));
  CHECK(is_batch_norm(*net->ptr(1)));
  CHECK_FALSE(is_batch_norm(*net->ptr(2)));
  CHECK_FALSE(is_batch_norm(*net->ptr(3)));
  {
    torch::NoGradGuard g;
    for (auto& b : net->buffers()) b.fill_(5);
    for (auto& p : net->parameters()) p.fill_(5);
  }
  init_model(*net);
  auto bn3 = net->ptr(0)->as<torch::nn::BatchNorm3dImpl>();
  CHECK(torch::equal(bn3->weight, torch::ones({4})));
  CHECK(torch::equal(bn3->bias, torch::zeros({4})));
  CHECK(torch::equal(bn3->running_mean, torch::zeros({4})));
  CHECK(torch::equal(bn3->running_var, torch::ones({4})));
  CHECK(bn3->num_batches_tracked.item<int64_t>() == 0);
  // GroupNorm is no BatchNorm: init_model leaves it alone, as torchvision's loop does.
  auto gn = net->ptr(2)->as<torch::nn::GroupNormImpl>();
  CHECK(torch::equal(gn->weight, torch::full({4}, 5.0f)));
}
