// Multi-label losses: parity with torchvision / PyTorch / the ASL paper formula (computed by
// tests/python/losses_reference.py in the same run), finite-difference gradients in float64,
// numerical robustness and input checks.
#include <mobilenet/nn/losses.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "support.hpp"

namespace fs = std::filesystem;
using namespace mobilenet;

namespace {

using LossFn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;

/// One parity case: inputs, the loss under test (reduction none), and the reference kind.
struct Case {
  std::string name;
  std::string kind;                       // focal | bce | asl | softf1_macro | softf1_micro
  std::map<std::string, double> params;  // written for the Python side
  torch::Tensor logits, targets, pos_weight;
  LossFn loss;
  // filled after running the reference
  torch::Tensor v;  // output weights: the gradient compared is d(sum(v * loss)) / d logits
};

void write_values(std::ofstream& out, const torch::Tensor& t) {
  auto d = t.to(torch::kDouble).contiguous().reshape(-1);
  const double* p = d.data_ptr<double>();
  char buf[40];
  for (int64_t i = 0; i < d.numel(); ++i) {
    std::snprintf(buf, sizeof buf, "%.17g ", p[i]);
    out << buf;
  }
  out << "\n";
}

std::vector<double> read_values(std::ifstream& in, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) {
    in >> x;
  }
  REQUIRE(in.good());
  return v;
}

/// Writes every case, runs the Python reference once, and compares loss values and gradients.
void check_against_reference(std::vector<Case>& cases, double tol, double tol_f32) {
  const fs::path dir = fs::current_path() / "losses_reference";
  fs::remove_all(dir);
  fs::create_directories(dir);
  torch::manual_seed(7);
  for (auto& c : cases) {
    const auto n = c.logits.size(0), k = c.logits.size(1);
    auto none = c.loss(c.logits, c.targets);
    c.v = torch::rand({none.numel()}, torch::kDouble) + 0.5;
    std::ofstream out(dir / (c.name + ".in"));
    out << c.kind << " " << (c.logits.scalar_type() == torch::kDouble ? "float64" : "float32")
        << "\n";
    for (const auto& [key, value] : c.params) out << key << " " << value << " ";
    out << "end\n" << n << " " << k << "\n";
    write_values(out, c.logits);
    write_values(out, c.targets);
    write_values(out, c.v);
    if (c.pos_weight.defined()) write_values(out, c.pos_weight);
  }
  INFO("reference script: losses_reference.py ", dir.string());
  REQUIRE(mobilenet::test::run_python("losses_reference.py", {dir.string()}) == 0);

  for (auto& c : cases) {
    CAPTURE(c.name);
    std::ifstream in(dir / (c.name + ".out"));
    REQUIRE(in.is_open());
    int64_t k = 0;
    in >> k;
    auto ref_loss = read_values(in, k);
    auto ref_grad = read_values(in, c.logits.numel());

    auto x = c.logits.detach().clone().requires_grad_(true);
    auto loss = c.loss(x, c.targets).reshape(-1);
    REQUIRE(loss.numel() == k);
    (c.v.to(loss.dtype()) * loss).sum().backward();
    auto l = loss.detach().to(torch::kDouble);
    auto g = x.grad().to(torch::kDouble).reshape(-1);
    double worst_loss = 0, worst_grad = 0;
    for (int64_t i = 0; i < k; ++i) {
      const double r = ref_loss[static_cast<size_t>(i)];
      worst_loss = std::max(worst_loss, std::abs(l[i].item<double>() - r) / std::max(1.0, std::abs(r)));
    }
    for (int64_t i = 0; i < g.numel(); ++i) {
      const double r = ref_grad[static_cast<size_t>(i)];
      worst_grad = std::max(worst_grad, std::abs(g[i].item<double>() - r) / std::max(1.0, std::abs(r)));
    }
    CHECK(std::isfinite(worst_loss));
    CHECK(std::isfinite(worst_grad));
    const double t = c.logits.scalar_type() == torch::kDouble ? tol : tol_f32;
    CHECK(worst_loss <= t);
    CHECK(worst_grad <= t);
  }
}

torch::Tensor saturated_logits(int64_t n, int64_t c, torch::Dtype dtype) {
  // Extremes of the supported range, mixed with moderate values.
  auto sign = torch::randint(0, 2, {n, c}, torch::kLong).to(dtype) * 2 - 1;
  auto mag = torch::tensor({100.0, 60.0, 30.0, 17.0, 5.0}, dtype)
                 .index({torch::randint(0, 5, {n, c}, torch::kLong)});
  return sign * mag;
}

torch::Tensor hard_targets(int64_t n, int64_t c, torch::Dtype dtype, double p = 0.2) {
  return (torch::rand({n, c}, torch::kDouble) < p).to(dtype);
}

/// Adds the standard family of inputs (random, saturated, all-negative, soft) for one loss.
void add_family(std::vector<Case>& cases, const std::string& base, const std::string& kind,
                const std::map<std::string, double>& params, const LossFn& fn) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    const std::string d = dtype == torch::kDouble ? "_f64" : "_f32";
    auto make = [&](const std::string& what, torch::Tensor x, torch::Tensor y) {
      cases.push_back(Case{base + "_" + what + d, kind, params, x, y, {}, fn, {}});
    };
    make("random", torch::randn({48, 12}, dtype) * 3, hard_targets(48, 12, dtype));
    make("saturated", saturated_logits(40, 10, dtype), hard_targets(40, 10, dtype, 0.5));
    make("all_negative", torch::randn({32, 8}, dtype) * 4, torch::zeros({32, 8}, dtype));
    auto soft = torch::tensor({0.0, 0.5, 1.0, 0.25}, dtype)
                    .index({torch::randint(0, 4, {32, 8}, torch::kLong)});
    make("soft", torch::randn({32, 8}, dtype) * 3, soft);
  }
}

/// Central differences of sum(v * loss(x)) in float64, element by element.
torch::Tensor finite_difference_grad(const LossFn& fn, const torch::Tensor& x,
                                     const torch::Tensor& y, const torch::Tensor& v,
                                     double h = 1e-6) {
  torch::NoGradGuard no_grad;
  auto xf = x.detach().clone().contiguous();
  auto grad = torch::zeros_like(xf);
  double* px = xf.data_ptr<double>();
  double* pg = grad.data_ptr<double>();
  auto f = [&] { return (v * fn(xf, y).reshape(-1)).sum().item<double>(); };
  for (int64_t i = 0; i < xf.numel(); ++i) {
    const double keep = px[i];
    px[i] = keep + h;
    const double up = f();
    px[i] = keep - h;
    const double down = f();
    px[i] = keep;
    pg[i] = (up - down) / (2 * h);
  }
  return grad;
}

void check_gradient(const LossFn& fn, const torch::Tensor& x, const torch::Tensor& y) {
  auto xa = x.detach().clone().requires_grad_(true);
  auto out = fn(xa, y).reshape(-1);
  auto v = torch::rand({out.numel()}, torch::kDouble) + 0.5;
  (v * out).sum().backward();
  auto numeric = finite_difference_grad(fn, x, y, v);
  auto err = ((xa.grad() - numeric).abs() / (numeric.abs() + 1.0)).max().item<double>();
  CHECK(err < 1e-6);
}

}  // namespace

TEST_CASE("sigmoid focal loss equals torchvision.ops.sigmoid_focal_loss within 1e-6") {
  torch::manual_seed(1);
  std::vector<Case> cases;
  for (auto [alpha, gamma] : std::vector<std::pair<double, double>>{{0.25, 2.0}, {-1.0, 2.0},
                                                                    {0.5, 0.0}, {0.75, 1.5}}) {
    const std::string base = "focal_a" + std::to_string(int(alpha * 100)) + "_g" +
                             std::to_string(int(gamma * 10));
    add_family(cases, base, "focal", {{"alpha", alpha}, {"gamma", gamma}},
               [alpha = alpha, gamma = gamma](const torch::Tensor& x, const torch::Tensor& y) {
                 return sigmoid_focal_loss(
                     x, y, SigmoidFocalLossOptions().alpha(alpha).gamma(gamma).reduction(Reduction::none));
               });
  }
  check_against_reference(cases, 1e-6, 1e-6);
}

// The reference evaluates the paper's formula in float64; float32 inputs differ from it by
// float32 rounding (a few ulps), so they get a relative 1e-5.
TEST_CASE("asymmetric loss equals a Python implementation of the ASL paper formula within 1e-6 "
          "in float64 (1e-5 relative in float32)") {
  torch::manual_seed(2);
  std::vector<Case> cases;
  struct P { double gn, gp, clip, eps; };
  for (auto p : {P{4, 1, 0.05, 1e-8}, P{2, 0, 0.0, 1e-8}, P{0, 0, 0.1, 1e-6}, P{3, 2, 0.2, 1e-8}}) {
    const std::string base = "asl_gn" + std::to_string(int(p.gn)) + "_gp" +
                             std::to_string(int(p.gp)) + "_m" + std::to_string(int(p.clip * 100));
    add_family(cases, base, "asl",
               {{"gamma_neg", p.gn}, {"gamma_pos", p.gp}, {"clip", p.clip}, {"eps", p.eps}},
               [p](const torch::Tensor& x, const torch::Tensor& y) {
                 return asymmetric_loss(x, y, AsymmetricLossOptions()
                                                  .gamma_neg(p.gn).gamma_pos(p.gp).clip(p.clip)
                                                  .eps(p.eps).reduction(Reduction::none));
               });
  }
  check_against_reference(cases, 1e-6, 1e-5);
}

TEST_CASE("BCE with logits and pos_weight equals PyTorch's functional within 1e-6") {
  torch::manual_seed(3);
  std::vector<Case> cases;
  add_family(cases, "bce", "bce", {}, [](const torch::Tensor& x, const torch::Tensor& y) {
    return bce_with_logits_loss(x, y, BCEWithLogitsLossOptions().reduction(Reduction::none));
  });
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    auto pw = torch::rand({12}, dtype) * 5 + 0.1;
    Case c{std::string("bce_pos_weight") + (dtype == torch::kDouble ? "_f64" : "_f32"), "bce",
           {{"pos_weight", 1}}, torch::randn({48, 12}, dtype) * 3, hard_targets(48, 12, dtype),
           pw,
           [pw](const torch::Tensor& x, const torch::Tensor& y) {
             return bce_with_logits_loss(
                 x, y, BCEWithLogitsLossOptions().pos_weight(pw).reduction(Reduction::none));
           },
           {}};
    cases.push_back(c);
  }
  check_against_reference(cases, 1e-6, 1e-6);
}

TEST_CASE("soft-F1 loss (macro and micro) equals its defining formula in PyTorch within 1e-6") {
  torch::manual_seed(4);
  std::vector<Case> cases;
  add_family(cases, "softf1_macro", "softf1_macro", {{"eps", 1e-8}},
             [](const torch::Tensor& x, const torch::Tensor& y) {
               return soft_f1_loss(x, y, SoftF1LossOptions().reduction(Reduction::none));
             });
  add_family(cases, "softf1_micro", "softf1_micro", {{"eps", 1e-8}},
             [](const torch::Tensor& x, const torch::Tensor& y) {
               return soft_f1_loss(x, y, SoftF1LossOptions().average(F1Average::micro));
             });
  check_against_reference(cases, 1e-6, 1e-6);
}

TEST_CASE("focal, ASL and soft-F1 gradients match central finite differences in float64") {
  torch::manual_seed(5);
  auto x = torch::randn({6, 5}, torch::kDouble) * 2.5;
  auto y_hard = hard_targets(6, 5, torch::kDouble, 0.4);
  auto y_soft = torch::rand({6, 5}, torch::kDouble);
  std::vector<std::pair<std::string, LossFn>> losses = {
      {"focal", [](const torch::Tensor& a, const torch::Tensor& b) {
         return sigmoid_focal_loss(a, b, SigmoidFocalLossOptions().reduction(Reduction::none));
       }},
      {"focal gamma 0.5", [](const torch::Tensor& a, const torch::Tensor& b) {
         return sigmoid_focal_loss(a, b, SigmoidFocalLossOptions().gamma(0.5).reduction(Reduction::none));
       }},
      {"asl", [](const torch::Tensor& a, const torch::Tensor& b) {
         return asymmetric_loss(a, b, AsymmetricLossOptions().reduction(Reduction::none));
       }},
      {"asl no clip", [](const torch::Tensor& a, const torch::Tensor& b) {
         return asymmetric_loss(a, b, AsymmetricLossOptions().clip(0).gamma_pos(2).reduction(Reduction::none));
       }},
      {"soft-f1 macro", [](const torch::Tensor& a, const torch::Tensor& b) {
         return soft_f1_loss(a, b, SoftF1LossOptions().reduction(Reduction::none));
       }},
      {"soft-f1 micro", [](const torch::Tensor& a, const torch::Tensor& b) {
         return soft_f1_loss(a, b, SoftF1LossOptions().average(F1Average::micro));
       }},
      {"bce pos_weight", [](const torch::Tensor& a, const torch::Tensor& b) {
         return bce_with_logits_loss(a, b, BCEWithLogitsLossOptions()
                                               .pos_weight(torch::linspace(0.5, 3, 5, torch::kDouble))
                                               .reduction(Reduction::none));
       }},
  };
  for (const auto& loss : losses) {
    // Not a structured binding: clang 14 cannot capture those (CAPTURE uses a lambda).
    const auto& name = loss.first;
    CAPTURE(name);
    check_gradient(loss.second, x, y_hard);
    check_gradient(loss.second, x, y_soft);
  }
}

TEST_CASE("every loss has finite values and gradients for |logits| up to 100") {
  torch::manual_seed(6);
  auto x = torch::cat({torch::full({1, 4}, 100.0), torch::full({1, 4}, -100.0),
                       torch::tensor({{100.0, -100.0, 0.0, 88.7}})});
  auto y = torch::tensor({{1.0, 0.0, 0.5, 1.0}, {1.0, 0.0, 0.5, 0.0}, {0.0, 1.0, 1.0, 0.0}});
  std::vector<LossFn> losses = {
      [](const torch::Tensor& a, const torch::Tensor& b) { return bce_with_logits_loss(a, b); },
      [](const torch::Tensor& a, const torch::Tensor& b) { return sigmoid_focal_loss(a, b); },
      [](const torch::Tensor& a, const torch::Tensor& b) {
        return sigmoid_focal_loss(a, b, SigmoidFocalLossOptions().gamma(0.5));
      },
      [](const torch::Tensor& a, const torch::Tensor& b) { return asymmetric_loss(a, b); },
      [](const torch::Tensor& a, const torch::Tensor& b) {
        return asymmetric_loss(a, b, AsymmetricLossOptions().clip(0).gamma_neg(0.5).gamma_pos(0.5));
      },
      [](const torch::Tensor& a, const torch::Tensor& b) { return soft_f1_loss(a, b); },
  };
  for (auto dtype : {torch::kFloat, torch::kHalf, torch::kBFloat16}) {
    for (size_t i = 0; i < losses.size(); ++i) {
      CAPTURE(i);
      CAPTURE(dtype);
      auto xa = x.to(dtype).detach().clone().requires_grad_(true);
      auto loss = losses[i](xa, y.to(dtype));
      loss.backward();
      CHECK(std::isfinite(loss.item<double>()));
      CHECK(torch::isfinite(xa.grad()).all().item<bool>());
    }
  }
}

TEST_CASE("float16 and bfloat16 logits are computed in float32") {
  torch::manual_seed(8);
  auto x32 = (torch::randn({16, 6}) * 4).to(torch::kHalf).to(torch::kFloat);  // exact in fp16
  auto y = hard_targets(16, 6, torch::kFloat);
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    auto x = x32.to(dtype);
    auto xf = x.to(torch::kFloat);
    auto same = [&](const torch::Tensor& lo, const torch::Tensor& hi) {
      CHECK((lo.scalar_type() == torch::kFloat));
      CHECK(torch::equal(lo, hi));
    };
    same(sigmoid_focal_loss(x, y), sigmoid_focal_loss(xf, y));
    same(asymmetric_loss(x, y.to(dtype)), asymmetric_loss(xf, y));
    same(bce_with_logits_loss(x, y), bce_with_logits_loss(xf, y));
    same(soft_f1_loss(x, y), soft_f1_loss(xf, y));
  }
}

TEST_CASE("shape and dtype mismatches fail with a message naming both shapes") {
  auto x = torch::zeros({4, 3});
  auto expect_message = [](const std::function<void()>& f, const std::vector<std::string>& parts) {
    try {
      f();
      FAIL("no exception");
    } catch (const c10::Error& e) {
      const std::string msg = e.what();
      for (const auto& p : parts) {
        CAPTURE(msg);
        CHECK(msg.find(p) != std::string::npos);
      }
    }
  };
  expect_message([&] { sigmoid_focal_loss(x, torch::zeros({4, 5})); },
                 {"sigmoid_focal_loss", "[4, 3]", "[4, 5]"});
  expect_message([&] { asymmetric_loss(x, torch::zeros({3, 4})); },
                 {"asymmetric_loss", "[4, 3]", "[3, 4]"});
  expect_message([&] { soft_f1_loss(x, torch::zeros({4})); }, {"soft_f1_loss", "[4, 3]", "[4]"});
  expect_message([&] { bce_with_logits_loss(x, torch::zeros({4, 3}, torch::kLong)); },
                 {"bce_with_logits_loss", "Long", "[4, 3]"});
  expect_message([&] { sigmoid_focal_loss(x.to(torch::kDouble), torch::zeros({4, 3})); },
                 {"dtype mismatch", "Double", "Float", "[4, 3]"});
  expect_message([&] {
    bce_with_logits_loss(x, torch::zeros({4, 3}),
                         BCEWithLogitsLossOptions().pos_weight(torch::ones({2})));
  }, {"pos_weight", "[2]", "[4, 3]"});
  CHECK_THROWS_AS(sigmoid_focal_loss(x, x, SigmoidFocalLossOptions().gamma(-1)), c10::Error);
  CHECK_THROWS_AS(AsymmetricLoss(AsymmetricLossOptions().clip(1.5)), c10::Error);
}

TEST_CASE("reductions: none keeps elements (per class for soft-F1), mean and sum reduce them") {
  torch::manual_seed(9);
  auto x = torch::randn({8, 5});
  auto y = hard_targets(8, 5, torch::kFloat, 0.5);
  auto none = asymmetric_loss(x, y, AsymmetricLossOptions().reduction(Reduction::none));
  CHECK((none.sizes() == x.sizes()));
  CHECK(torch::allclose(asymmetric_loss(x, y), none.mean()));
  CHECK(torch::allclose(asymmetric_loss(x, y, AsymmetricLossOptions().reduction(Reduction::sum)),
                        none.sum()));
  auto per_class = soft_f1_loss(x, y, SoftF1LossOptions().reduction(Reduction::none));
  CHECK((per_class.sizes() == torch::IntArrayRef{5}));
  CHECK(torch::allclose(soft_f1_loss(x, y), per_class.mean()));
  CHECK(soft_f1_loss(x, y, SoftF1LossOptions().average(F1Average::micro)).dim() == 0);
  CHECK((reduction_from_string("sum") == Reduction::sum));
  CHECK_THROWS_AS(reduction_from_string("avg"), std::invalid_argument);
}

TEST_CASE("loss modules equal their functions, print their options and follow .to()") {
  torch::manual_seed(10);
  auto x = torch::randn({8, 5});
  auto y = hard_targets(8, 5, torch::kFloat, 0.5);
  SigmoidFocalLoss focal(SigmoidFocalLossOptions().alpha(0.5).gamma(1));
  CHECK(torch::equal(focal(x, y), sigmoid_focal_loss(x, y, SigmoidFocalLossOptions().alpha(0.5).gamma(1))));
  AsymmetricLoss asl;
  CHECK(torch::equal(asl(x, y), asymmetric_loss(x, y)));
  SoftF1Loss f1(SoftF1LossOptions().average(F1Average::micro));
  CHECK(torch::equal(f1(x, y), soft_f1_loss(x, y, SoftF1LossOptions().average(F1Average::micro))));
  auto pw = torch::linspace(1, 3, 5);
  BCEWithLogitsLoss bce(BCEWithLogitsLossOptions().pos_weight(pw));
  CHECK(torch::equal(bce(x, y), bce_with_logits_loss(x, y, BCEWithLogitsLossOptions().pos_weight(pw))));
  bce->to(torch::kDouble);
  CHECK((bce->pos_weight.scalar_type() == torch::kDouble));
  CHECK(bce->named_buffers().contains("pos_weight"));

  std::ostringstream os;
  os << *asl;
  CHECK(os.str() == "mobilenet::AsymmetricLoss(gamma_neg=4, gamma_pos=1, clip=0.05, eps=1e-08, "
                    "reduction=mean)");
  os.str("");
  os << *focal;
  CHECK(os.str() == "mobilenet::SigmoidFocalLoss(alpha=0.5, gamma=1, reduction=mean)");

  auto by_name = make_loss("asl");
  CHECK(torch::equal(by_name.forward(x, y), asymmetric_loss(x, y)));
  CHECK_THROWS_AS(make_loss("hinge"), std::invalid_argument);
  // The options-taking factory builds the named loss with its own options.
  const auto focal_options = SigmoidFocalLossOptions().alpha(0.5).gamma(1.0);
  auto configured = make_loss(LossOptions("focal").focal(focal_options));
  CHECK(torch::equal(configured.forward(x, y), sigmoid_focal_loss(x, y, focal_options)));
  CHECK_THROWS_AS(make_loss(LossOptions("hinge")), std::invalid_argument);
}

TEST_CASE("soft-F1 loss rewards recall: raising positive logits lowers it") {
  auto y = torch::tensor({{1.0, 0.0}, {1.0, 0.0}, {0.0, 1.0}, {0.0, 0.0}});
  auto low = torch::full({4, 2}, -2.0);
  auto better = low.clone();
  better.index_put_({y > 0.5}, 2.0);
  CHECK(soft_f1_loss(better, y).item<double>() < soft_f1_loss(low, y).item<double>());
  CHECK(soft_f1_loss(better * 10, y).item<double>() < 0.01);
}
