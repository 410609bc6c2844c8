// Multi-label metrics: parity with scikit-learn (tests/python/metrics_reference.py, run in the
// same process tree) within 1e-9, threshold tuning against a brute-force search, the papers'
// CP/CR/CF1/OP/OR/OF1 against a NumPy implementation of ML-GCN's formulas
// (tests/python/paper_metrics_reference.py) within 1e-12, the torch adapter, reporting and
// input checks.
#include <mobilenet/metrics/metrics.hpp>
#include <mobilenet/metrics/metrics_torch.hpp>

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <Eigen/Core>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "support.hpp"

namespace fs = std::filesystem;
using namespace mobilenet;

namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Case {
  std::string name;
  RowMatrix scores, targets;
  std::vector<float> thresholds;
  ZeroDivision zero_division = ZeroDivision::zero;
  double beta = 0;              // > 0: also check tune_thresholds(beta)
  std::vector<int64_t> batches;  // sizes the accumulator is fed with (sum = N)
};

RowMatrix uniform(int64_t n, int64_t c, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(0.f, 1.f);
  RowMatrix m(n, c);
  for (int64_t i = 0; i < m.size(); ++i) m.data()[i] = u(rng);
  return m;
}

/// Targets correlated with the scores (so AP is far from trivial), positive rate ~ rate.
RowMatrix targets_for(const RowMatrix& scores, double rate, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0., 1.);
  RowMatrix t(scores.rows(), scores.cols());
  for (int64_t i = 0; i < t.size(); ++i) {
    const double p = std::min(1.0, 2 * rate * (0.3 + 0.7 * scores.data()[i]));
    t.data()[i] = u(rng) < p ? 1.f : 0.f;
  }
  return t;
}

std::vector<int64_t> uneven_batches(int64_t n) {
  std::vector<int64_t> b;
  for (int64_t size = 1, left = n; left > 0; size = size * 3 + 1) {
    b.push_back(std::min(size, left));
    left -= b.back();
  }
  return b;
}

void write_values(std::ofstream& out, const float* p, int64_t n) {
  char buf[32];
  for (int64_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%.9g ", static_cast<double>(p[i]));
    out << buf;
  }
  out << "\n";
}

using Reference = std::map<std::string, std::vector<double>>;

Reference read_reference(const fs::path& file) {
  std::ifstream in(file);
  REQUIRE(in.is_open());
  Reference ref;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string key, token;
    ls >> key;
    while (ls >> token) ref[key].push_back(std::strtod(token.c_str(), nullptr));  // parses "nan"
  }
  return ref;
}

/// Runs the Python reference once over all cases.
std::map<std::string, Reference> run_reference(const std::vector<Case>& cases) {
  const fs::path dir = fs::current_path() / "metrics_reference";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& c : cases) {
    std::ofstream out(dir / (c.name + ".in"));
    out << c.scores.rows() << " " << c.scores.cols() << " "
        << (c.zero_division == ZeroDivision::one ? 1 : 0) << " " << c.beta << "\n";
    write_values(out, c.scores.data(), c.scores.size());
    write_values(out, c.targets.data(), c.targets.size());
    write_values(out, c.thresholds.data(), static_cast<int64_t>(c.thresholds.size()));
  }
  INFO("reference script: metrics_reference.py ", dir.string());
  REQUIRE(mobilenet::test::run_python("metrics_reference.py", {dir.string()}) == 0);
  std::map<std::string, Reference> refs;
  for (const auto& c : cases) refs[c.name] = read_reference(dir / (c.name + ".out"));
  return refs;
}

bool close(double a, double b, double tol = 1e-9) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  return std::abs(a - b) <= tol;
}

void check_vector(const std::string& what, const std::vector<double>& ours,
                  const std::vector<double>& ref) {
  CAPTURE(what);
  REQUIRE(ours.size() == ref.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    CAPTURE(i);
    CAPTURE(ours[i]);
    CAPTURE(ref[i]);
    CHECK(close(ours[i], ref[i]));
  }
}

template <class T>
std::vector<double> as_double(const std::vector<T>& v) {
  return std::vector<double>(v.begin(), v.end());
}

MetricsAccumulator feed(const RowMatrix& scores, const RowMatrix& targets,
                        const std::vector<int64_t>& batches) {
  MetricsAccumulator acc(scores.cols());
  int64_t row = 0;
  for (int64_t b : batches) {
    acc.add(scores.middleRows(row, b), targets.middleRows(row, b));
    row += b;
  }
  REQUIRE(row == scores.rows());
  return acc;
}

MetricsAccumulator feed(const Case& c) { return feed(c.scores, c.targets, c.batches); }

std::vector<Case> parity_cases() {
  std::mt19937 rng(1234);
  std::vector<Case> cases;
  auto add = [&](std::string name, RowMatrix s, RowMatrix t, std::vector<float> thr,
                 ZeroDivision zd, double beta) {
    const int64_t n = s.rows();
    cases.push_back(Case{std::move(name), std::move(s), std::move(t), std::move(thr), zd, beta,
                         uneven_batches(n)});
  };
  auto same = [](int64_t c, float v) { return std::vector<float>(static_cast<size_t>(c), v); };

  {  // random scores, one threshold
    auto s = uniform(600, 20, rng);
    auto t = targets_for(s, 0.2, rng);
    add("random", s, t, same(20, 0.5f), ZeroDivision::zero, 1.0);
    add("random_zero_division_one", s, t, same(20, 0.9f), ZeroDivision::one, 0);
  }
  {  // ties: scores on an 11-value grid, and a class with all scores equal
    auto s = uniform(400, 12, rng);
    for (int64_t i = 0; i < s.size(); ++i) s.data()[i] = std::round(s.data()[i] * 10) / 10;
    s.col(3).setConstant(0.3f);
    auto t = targets_for(s, 0.3, rng);
    add("tie_heavy", s, t, same(12, 0.5f), ZeroDivision::zero, 1.0);
    add("tie_heavy_f2", s, t, same(12, 0.3f), ZeroDivision::one, 2.0);
  }
  {  // all-zero and all-one targets
    auto s = uniform(80, 6, rng);
    add("all_zero_targets", s, RowMatrix::Zero(80, 6), same(6, 0.5f), ZeroDivision::zero, 1.0);
    add("all_zero_targets_zd1", s, RowMatrix::Zero(80, 6), same(6, 0.5f), ZeroDivision::one, 0);
    add("all_one_targets", s, RowMatrix::Ones(80, 6), same(6, 0.5f), ZeroDivision::zero, 1.0);
    add("all_zero_scores", RowMatrix::Zero(80, 6), targets_for(s, 0.3, rng), same(6, 0.5f),
        ZeroDivision::one, 1.0);
    add("all_one_scores_all_zero_targets", RowMatrix::Ones(80, 6), RowMatrix::Zero(80, 6),
        same(6, 0.5f), ZeroDivision::one, 0);
  }
  {  // some empty classes, per-class thresholds, soft targets holding 0.5
    auto s = uniform(300, 10, rng);
    auto t = targets_for(s, 0.25, rng);
    t.col(2).setZero();
    t.col(7).setZero();
    std::vector<float> thr;
    for (int i = 0; i < 10; ++i) thr.push_back(0.05f + 0.09f * static_cast<float>(i));
    for (int64_t i = 0; i < t.rows(); i += 7) t(i, 4) = 0.5f;
    add("empty_classes_per_class_thresholds", s, t, thr, ZeroDivision::zero, 1.0);
  }
  {  // logits-like scores with negative values and exact -0 / +0 ties
    auto s = uniform(200, 5, rng);
    s = (s.array() - 0.5f) * 20;
    for (int64_t i = 0; i < s.rows(); i += 5) s(i, 1) = (i % 10 == 0) ? -0.0f : 0.0f;
    add("signed_scores", s, targets_for(uniform(200, 5, rng), 0.3, rng), same(5, 0.0f),
        ZeroDivision::zero, 1.0);
  }
  {  // large enough to take the radix-sort path with many ties
    auto s = uniform(3000, 4, rng);
    for (int64_t i = 0; i < s.rows(); ++i) s(i, 0) = std::round(s(i, 0) * 50) / 50;
    add("large_radix", s, targets_for(s, 0.1, rng), same(4, 0.5f), ZeroDivision::zero, 0);
  }
  return cases;
}

}  // namespace

TEST_CASE("precision, recall, F1, accuracy and AP equal scikit-learn within 1e-9 "
          "(random, tie-heavy, all-zero, all-one, empty classes, per-class thresholds)") {
  const auto cases = parity_cases();
  const auto refs = run_reference(cases);
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const auto& ref = refs.at(c.name);
    const auto acc = feed(c);
    CHECK(acc.num_samples() == c.scores.rows());
    const auto m = acc.at_threshold(c.thresholds, c.zero_division);
    check_vector("precision", m.precision, ref.at("precision"));
    check_vector("recall", m.recall, ref.at("recall"));
    check_vector("f1", m.f1, ref.at("f1"));
    check_vector("support", as_double(m.support), ref.at("support"));
    check_vector("micro", {m.micro_precision, m.micro_recall, m.micro_f1}, ref.at("micro"));
    check_vector("macro", {m.macro_precision, m.macro_recall, m.macro_f1}, ref.at("macro"));
    check_vector("weighted", {m.weighted_precision, m.weighted_recall, m.weighted_f1},
                 ref.at("weighted"));
    check_vector("accuracy", {m.element_accuracy}, ref.at("accuracy"));

    const auto ap = acc.average_precision();
    check_vector("ap", ap.per_class, ref.at("ap"));
    check_vector("map", {ap.mean}, ref.at("map"));
    CHECK(static_cast<double>(ap.num_undefined) == ref.at("ap_undefined").at(0));

    const auto s = acc.summary(c.thresholds, c.zero_division);
    CHECK(close(s.micro_f1, m.micro_f1, 0));
    CHECK(close(s.macro_f1, m.macro_f1, 0));
    CHECK(close(s.mean_average_precision, ap.mean, 0));
    CHECK(s.classes_without_positives == ap.num_undefined);

    if (c.beta > 0) {
      // The tuned thresholds reach, on the same data, the best F-beta of a brute-force search
      // over every score as threshold (fbeta_score in scikit-learn).
      const auto thr = acc.tune_thresholds(c.beta, 0.5f);
      const auto tuned = acc.at_threshold(thr);
      const auto& best = ref.at("best_fbeta");
      const double b2 = c.beta * c.beta;
      for (size_t j = 0; j < thr.size(); ++j) {
        CAPTURE(j);
        if (std::isnan(best[j])) {
          CHECK(thr[j] == 0.5f);  // class without positives keeps the fallback
          continue;
        }
        const double tp = static_cast<double>(tuned.tp[j]);
        const double f = (1 + b2) * tp /
                         ((1 + b2) * tp + b2 * static_cast<double>(tuned.fn[j]) +
                          static_cast<double>(tuned.fp[j]));
        CHECK(close(f, best[j]));
      }
    }
  }
}

TEST_CASE("tuned thresholds sit half-way between the kept and the next lower score") {
  MetricsAccumulator acc(1);
  Eigen::MatrixXf s(5, 1), t(5, 1);
  s << 0.9f, 0.8f, 0.6f, 0.2f, 0.1f;
  t << 1, 1, 0, 1, 0;
  acc.add(s, t);
  // Candidates: >=0.9 F1 .5, >=0.8 .8, >=0.6 .667, >=0.2 .857, >=0.1 .75 -> keep down to 0.2.
  const auto thr = acc.tune_thresholds();
  REQUIRE(thr.size() == 1);
  CHECK(thr[0] == doctest::Approx(0.15f));
  CHECK(acc.at_threshold(thr).f1[0] == doctest::Approx(6.0 / 7.0));
  // beta = 0.5 favours precision: keep only 0.9 and 0.8 (F0.5 = 1).
  CHECK(acc.tune_thresholds(0.5)[0] == doctest::Approx(0.7f));
  CHECK_THROWS_AS(acc.tune_thresholds(0), std::invalid_argument);
}

TEST_CASE("classes without positives have undefined AP, are excluded from mAP and counted") {
  MetricsAccumulator acc(3);
  Eigen::MatrixXf s(4, 3), t(4, 3);
  s << 0.9f, 0.1f, 0.5f,  //
      0.2f, 0.8f, 0.5f,   //
      0.7f, 0.3f, 0.5f,   //
      0.1f, 0.6f, 0.5f;
  t << 1, 0, 0,  //
      0, 0, 0,   //
      1, 0, 0,   //
      0, 0, 0;
  acc.add(s, t);
  const auto ap = acc.average_precision();
  CHECK(ap.per_class[0] == doctest::Approx(1.0));
  CHECK(std::isnan(ap.per_class[1]));
  CHECK(std::isnan(ap.per_class[2]));
  CHECK(ap.num_undefined == 2);
  CHECK(ap.mean == doctest::Approx(1.0));
  const auto report = acc.report({"cat", "dog", "zebra"});
  CHECK(report.find("zebra") != std::string::npos);
  CHECK(report.find("2 without positives") != std::string::npos);

  MetricsAccumulator empty(2);
  CHECK(std::isnan(empty.average_precision().mean));
  CHECK(empty.average_precision().num_undefined == 2);
}

TEST_CASE("the accumulator gives the same numbers whatever the batching and layout") {
  std::mt19937 rng(99);
  const RowMatrix s = uniform(257, 7, rng);
  const RowMatrix t = targets_for(s, 0.3, rng);
  MetricsAccumulator whole(7), rows(7), colmajor(7);
  whole.add(s.data(), t.data(), s.rows());
  for (int64_t i = 0; i < s.rows(); ++i) rows.add(s.row(i), t.row(i));
  const Eigen::MatrixXd sd = s.cast<double>(), td = t.cast<double>();  // column-major double
  colmajor.add(sd, td);
  for (const auto* other : {&rows, &colmajor}) {
    CHECK(other->average_precision().per_class == whole.average_precision().per_class);
    CHECK(other->at_threshold(0.4f).f1 == whole.at_threshold(0.4f).f1);
    CHECK(other->tune_thresholds() == whole.tune_thresholds());
  }
  whole.reset();
  CHECK(whole.num_samples() == 0);
  whole.add(s.data(), t.data(), s.rows());
  CHECK(whole.average_precision().per_class == rows.average_precision().per_class);
}

TEST_CASE("bad input fails with messages naming the shapes, the sample and the class") {
  MetricsAccumulator acc(3);
  auto message = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const std::exception& e) {
      return e.what();
    }
    return "no exception";
  };
  Eigen::MatrixXf s = Eigen::MatrixXf::Constant(2, 3, 0.5f), t = Eigen::MatrixXf::Zero(2, 3);
  Eigen::MatrixXf wrong = Eigen::MatrixXf::Zero(2, 4);
  auto m = message([&] { acc.add(s, wrong); });
  CHECK(m.find("[2, 3]") != std::string::npos);
  CHECK(m.find("[2, 4]") != std::string::npos);
  s(1, 2) = std::nanf("");
  m = message([&] { acc.add(s, t); });
  CHECK(m.find("sample 1 class 2") != std::string::npos);
  CHECK(m.find("NaN") != std::string::npos);
  CHECK(acc.num_samples() == 0);  // nothing of the bad batch was kept
  s(1, 2) = 0.5f;
  t(0, 1) = 2.0f;
  m = message([&] { acc.add(s, t); });
  CHECK(m.find("sample 0 class 1") != std::string::npos);
  CHECK_THROWS_AS(acc.at_threshold(std::vector<float>{0.5f}), std::invalid_argument);
  CHECK_THROWS_AS(MetricsAccumulator(0), std::invalid_argument);
  CHECK_THROWS_AS(acc.report({"a", "b"}), std::invalid_argument);

  m = message([&] { accumulate(acc, torch::zeros({4, 3}), torch::zeros({4, 2})); });
  CHECK(m.find("[4, 3]") != std::string::npos);
  CHECK(m.find("[4, 2]") != std::string::npos);
}

TEST_CASE("the torch adapter feeds probabilities or logits of any dtype like the Eigen API") {
  torch::manual_seed(3);
  auto logits = torch::randn({64, 5}) * 3;
  auto targets = (torch::rand({64, 5}) < 0.3).to(torch::kFloat);
  MetricsAccumulator from_logits(5), from_probs(5), from_eigen(5);
  accumulate_logits(from_logits, logits.to(torch::kDouble), targets.to(torch::kBool));
  auto probs = torch::sigmoid(logits);
  accumulate(from_probs, probs, targets);
  from_eigen.add(probs.contiguous().data_ptr<float>(), targets.contiguous().data_ptr<float>(), 64);
  CHECK(from_probs.average_precision().per_class == from_eigen.average_precision().per_class);
  CHECK(from_logits.at_threshold(0.5f).f1 == from_eigen.at_threshold(0.5f).f1);
  const auto thr = from_eigen.tune_thresholds();
  auto tensor = thresholds_tensor(thr);
  CHECK((tensor.sizes() == torch::IntArrayRef{5}));
  auto pred = (probs >= tensor).to(torch::kLong).sum(0);
  const auto tuned = from_eigen.at_threshold(thr);
  for (int64_t c = 0; c < 5; ++c) {
    CHECK(pred[c].item<int64_t>() == tuned.tp[static_cast<size_t>(c)] + tuned.fp[static_cast<size_t>(c)]);
  }
}

TEST_CASE("the report lists every class, the averages and the summary line") {
  std::mt19937 rng(5);
  const RowMatrix s = uniform(50, 3, rng);
  const RowMatrix t = targets_for(s, 0.4, rng);
  MetricsAccumulator acc(3);
  acc.add(s, t);
  const auto r = acc.report({"person", "bicycle", "car"});
  for (const char* part : {"class", "precision", "recall", "support", "threshold", "AP", "person",
                           "bicycle", "car", "micro avg", "macro avg", "weighted avg",
                           "element accuracy", "mAP"}) {
    CAPTURE(part);
    CHECK(r.find(part) != std::string::npos);
  }
  std::ostringstream os;
  os << acc.summary();
  CHECK(os.str().find("samples 50") != std::string::npos);
  CHECK(os.str().find("mAP") != std::string::npos);
  MESSAGE("\n" << r << os.str());
}

namespace {

struct PaperCase {
  std::string name;
  RowMatrix scores, targets;
  std::vector<float> thresholds;
  int64_t top_k = 3;
};

/// Runs tests/python/paper_metrics_reference.py once over all cases.
std::map<std::string, Reference> run_paper_reference(const std::vector<PaperCase>& cases) {
  const fs::path dir = fs::current_path() / "paper_metrics_reference";
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const auto& c : cases) {
    std::ofstream out(dir / (c.name + ".in"));
    out << c.scores.rows() << " " << c.scores.cols() << " " << c.top_k << "\n";
    write_values(out, c.scores.data(), c.scores.size());
    write_values(out, c.targets.data(), c.targets.size());
    write_values(out, c.thresholds.data(), static_cast<int64_t>(c.thresholds.size()));
  }
  INFO("reference script: paper_metrics_reference.py ", dir.string());
  REQUIRE(mobilenet::test::run_python("paper_metrics_reference.py", {dir.string()}) == 0);
  std::map<std::string, Reference> refs;
  for (const auto& c : cases) refs[c.name] = read_reference(dir / (c.name + ".out"));
  return refs;
}

std::vector<PaperCase> paper_cases() {
  std::mt19937 rng(4321);
  std::vector<PaperCase> cases;
  auto same = [](int64_t c, float v) { return std::vector<float>(static_cast<size_t>(c), v); };
  {  // random, and with many positives per image so that top-3 drops true positives
    auto s = uniform(500, 20, rng);
    cases.push_back({"random", s, targets_for(s, 0.2, rng), same(20, 0.5f), 3});
    auto d = uniform(300, 8, rng);
    cases.push_back({"dense_positives", d, targets_for(d, 0.6, rng), same(8, 0.5f), 3});
  }
  {  // cross-class ties on an 11-value grid, and rows where every class ties
    auto s = uniform(400, 12, rng);
    for (int64_t i = 0; i < s.size(); ++i) s.data()[i] = std::round(s.data()[i] * 10) / 10;
    for (int64_t i = 0; i < s.rows(); i += 9) s.row(i).setConstant(0.7f);
    cases.push_back({"ties", s, targets_for(s, 0.3, rng), same(12, 0.5f), 3});
  }
  {  // a class never predicted, one at exactly the threshold (predicted, rarely in the top 3),
     // a class without positives, and 50 images without positives
    auto s = uniform(200, 10, rng);
    auto t = targets_for(s, 0.3, rng);
    s.col(2) *= 0.45f;
    s.col(7).setConstant(0.5f);
    t.col(5).setZero();
    t.topRows(50).setZero();
    cases.push_back({"edge_classes", s, t, same(10, 0.5f), 3});
  }
  {  // k = 1, k >= C (top = all), per-class thresholds with k = 2
    auto s = uniform(150, 6, rng);
    auto t = targets_for(s, 0.3, rng);
    cases.push_back({"k1", s, t, same(6, 0.5f), 1});
    cases.push_back({"k_at_least_c", s, t, same(6, 0.5f), 8});
    std::vector<float> thr;
    for (int i = 0; i < 6; ++i) thr.push_back(0.2f + 0.12f * static_cast<float>(i));
    cases.push_back({"per_class_thresholds", s, t, thr, 2});
    auto w = uniform(200, 20, rng);
    cases.push_back({"k10_of_20", w, targets_for(w, 0.4, rng), same(20, 0.3f), 10});
  }
  {  // nothing predicted; no positive target at all
    auto s = uniform(80, 5, rng);
    cases.push_back({"nothing_predicted", RowMatrix::Constant(80, 5, 0.2f),
                     targets_for(s, 0.3, rng), same(5, 0.5f), 3});
    cases.push_back({"no_positives", s, RowMatrix::Zero(80, 5), same(5, 0.5f), 3});
  }
  {  // logits with threshold 0 and exact -0 / +0 ties
    auto s = uniform(200, 5, rng);
    s = (s.array() - 0.5f) * 20;
    for (int64_t i = 0; i < s.rows(); i += 4) {
      s(i, 1) = -0.0f;
      s(i, 3) = 0.0f;
    }
    cases.push_back({"signed_zero_ties", s, targets_for(uniform(200, 5, rng), 0.3, rng),
                     same(5, 0.0f), 3});
  }
  {  // COCO's class count over several row blocks
    auto s = uniform(1000, 80, rng);
    cases.push_back({"coco_sized", s, targets_for(s, 0.04, rng), same(80, 0.5f), 3});
  }
  return cases;
}

std::vector<double> as_vector(const PaperScores& p) {
  return {p.class_precision, p.class_recall,  p.class_f1,
          p.overall_precision, p.overall_recall, p.overall_f1,
          static_cast<double>(p.classes_without_predictions)};
}

}  // namespace

TEST_CASE("CP, CR, CF1, OP, OR, OF1 (all and top-k) equal a NumPy implementation of ML-GCN's "
          "formulas within 1e-12 (random, ties, never-predicted and empty classes, k = 1, "
          "k = 10 of 20, k >= C, per-class thresholds, signed zeros)") {
  const auto cases = paper_cases();
  const auto refs = run_paper_reference(cases);
  for (const auto& c : cases) {
    CAPTURE(c.name);
    const auto& ref = refs.at(c.name);
    const auto acc = feed(c.scores, c.targets, uneven_batches(c.scores.rows()));
    const PaperMetrics m = acc.paper_metrics(c.thresholds, c.top_k);
    CHECK(m.top_k == c.top_k);
    const auto ours_all = as_vector(m.all), ours_top = as_vector(m.top);
    check_vector("all", ours_all, ref.at("all"));
    check_vector("top", ours_top, ref.at("top"));
    CHECK(static_cast<double>(m.classes_without_positives) == ref.at("without_positives").at(0));

    // Against ML-GCN's code taken literally: the same numbers wherever it is defined and our
    // conventions do not apply; NaN for CR where a class has no positives.
    // (No structured binding: clang 14 cannot capture one in CAPTURE's lambda.)
    for (const auto& rule_and_ours : {std::make_pair(std::string("all"), ours_all),
                                      std::make_pair(std::string("top"), ours_top)}) {
      const std::string& rule = rule_and_ours.first;
      const auto& ours = rule_and_ours.second;
      CAPTURE(rule);
      const auto& lit = ref.at("mlgcn_" + rule);  // OP OR OF1 CP CR CF1
      CHECK(close(ours[0], lit[3], 1e-12));       // CP: a never-predicted class has precision 0
      if (m.classes_without_positives > 0) {
        CHECK(std::isnan(lit[4]));
      } else if (ours[6] == 0 && !std::isnan(lit[5])) {
        check_vector("literal", {ours[3], ours[4], ours[5], ours[0], ours[1], ours[2]}, lit);
      }
    }
  }
}

TEST_CASE("paper metrics on a hand-worked example: top-3 ties go to the lower class index") {
  Eigen::MatrixXf s(3, 4), t(3, 4);
  s << 0.9f, 0.8f, 0.8f, 0.8f,  // ties: classes 1 and 2 make the top 3, class 3 does not
      0.6f, 0.2f, 0.7f, 0.55f,  //
      0.1f, 0.3f, 0.4f, 0.2f;   // nothing predicted, no positive
  t << 1, 0, 0, 1,  //
      0, 0, 1, 1,   //
      0, 0, 0, 0;   // class 1 has no positive target
  MetricsAccumulator acc(4);
  acc.add(s, t);
  const auto m = acc.paper_metrics(0.5f, 3);
  // all: Nc = {1, 0, 1, 2}, Np = {2, 1, 2, 2}, Ng = {1, 0, 1, 2}
  CHECK(m.all.class_precision == doctest::Approx(0.5));
  CHECK(m.all.class_recall == doctest::Approx(0.75));
  CHECK(m.all.class_f1 == doctest::Approx(0.6));
  CHECK(m.all.overall_precision == doctest::Approx(4.0 / 7));
  CHECK(m.all.overall_recall == doctest::Approx(1.0));
  CHECK(m.all.overall_f1 == doctest::Approx(8.0 / 11));
  // top-3: image 0 loses class 3 -> Nc = {1, 0, 1, 1}, Np = {2, 1, 2, 1}
  CHECK(m.top.class_precision == doctest::Approx(0.5));
  CHECK(m.top.class_recall == doctest::Approx(0.625));
  CHECK(m.top.class_f1 == doctest::Approx(5.0 / 9));
  CHECK(m.top.overall_precision == doctest::Approx(0.5));
  CHECK(m.top.overall_recall == doctest::Approx(0.75));
  CHECK(m.top.overall_f1 == doctest::Approx(0.6));
  CHECK(m.classes_without_positives == 1);
  CHECK(m.all.classes_without_predictions == 0);
  // k = 1 keeps only each image's best class: 0 for image 0, 2 for image 1.
  const auto top1 = acc.paper_metrics(0.5f, 1).top;
  CHECK(top1.overall_precision == doctest::Approx(1.0));
  CHECK(top1.overall_recall == doctest::Approx(0.5));
  CHECK(top1.classes_without_predictions == 2);
}

TEST_CASE("paper metrics reach the summary, its printed line and the report") {
  std::mt19937 rng(17);
  const RowMatrix s = uniform(120, 6, rng);
  const RowMatrix t = targets_for(s, 0.4, rng);
  MetricsAccumulator acc(6);
  acc.add(s, t);
  const auto direct = acc.paper_metrics(0.4f, 2);
  const auto summary = acc.summary(0.4f, ZeroDivision::zero, 2);
  CHECK(summary.paper.top_k == 2);
  CHECK(as_vector(summary.paper.all) == as_vector(direct.all));
  CHECK(as_vector(summary.paper.top) == as_vector(direct.top));
  const std::vector<float> thr(6, 0.4f);
  CHECK(as_vector(acc.summary(thr, ZeroDivision::zero, 2).paper.top) == as_vector(direct.top));
  CHECK(acc.summary().paper.top_k == 3);

  std::ostringstream line;
  line << summary;
  char expected[64];
  std::snprintf(expected, sizeof expected, "top-2 CP/CR/CF1 %.4f/", direct.top.class_precision);
  CHECK(line.str().find(expected) != std::string::npos);
  CHECK(line.str().find("all CP/CR/CF1") != std::string::npos);

  const auto report = acc.report({}, 0.4f, ZeroDivision::zero, 2);
  for (const char* part : {"ML-GCN", "CP", "CR", "CF1", "OP", "OR", "OF1", "all", "top-2"}) {
    CAPTURE(part);
    CHECK(report.find(part) != std::string::npos);
  }
  std::ostringstream of1;
  of1 << std::fixed << std::setprecision(4) << direct.top.overall_f1;
  CHECK(report.find(of1.str()) != std::string::npos);
  CHECK(acc.report().find("top-3") != std::string::npos);
}

TEST_CASE("paper metrics: empty accumulator gives zeros, bad top_k and thresholds throw") {
  MetricsAccumulator acc(3);
  const auto m = acc.paper_metrics();
  CHECK(as_vector(m.all) == std::vector<double>{0, 0, 0, 0, 0, 0, 3});
  CHECK(as_vector(m.top) == std::vector<double>{0, 0, 0, 0, 0, 0, 3});
  CHECK(m.classes_without_positives == 3);
  try {
    (void)acc.paper_metrics(0.5f, 0);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("top_k must be >= 1, got 0") != std::string::npos);
  }
  CHECK_THROWS_AS((void)acc.paper_metrics(std::vector<float>{0.5f}), std::invalid_argument);
}
