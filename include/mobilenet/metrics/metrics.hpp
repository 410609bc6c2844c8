#pragma once
/// \file
/// Multi-label classification metrics on Eigen (no LibTorch needed; metrics_torch.hpp adapts
/// torch::Tensor). Numbers follow scikit-learn 1.2's `precision_recall_fscore_support`,
/// `accuracy` per element and `average_precision_score`.
///
///     mobilenet::MetricsAccumulator acc(num_classes);
///     for (auto& batch : val) acc.add(batch_probabilities, batch_targets);   // N x C each
///     std::cout << acc.report(class_names);               // per-class table + summary
///     std::vector<float> thr = acc.tune_thresholds();     // per-class F1-optimal thresholds
///     mobilenet::MetricsSummary s = acc.summary(thr);     // micro/macro F1, mAP, ...
///     mobilenet::PaperMetrics p = acc.paper_metrics(0.5f, 3);  // CP/CR/CF1/OP/OR/OF1, all + top-3
///
/// Conventions:
/// - scores are probabilities (or any monotone score); a sample is predicted positive for class
///   c when score >= threshold[c];
/// - targets in [0, 1]; a target counts as positive when >= 0.5 (soft labels such as 0.5
///   "maybe" count as positive);
/// - zero_division: precision of a class with no positive prediction and recall of a class with
///   no positive target are set to 0 (default) or 1, as scikit-learn's `zero_division`. F1 is
///   2PR/(P+R), and 0 when P + R = 0;
/// - average precision of a class without any positive target is undefined (NaN) and left out
///   of mAP; the number of such classes is reported. (scikit-learn 1.2 counts them as 0.)
///
/// The papers' protocol (ML-GCN, CVPR 2019, and the papers that reuse its evaluation code: ASL,
/// Query2Label, ...), see paper_metrics(): per class c, Nc = correctly predicted, Np = predicted,
/// Ng = positive targets;
///   CP = mean_c Nc/Np, CR = mean_c Nc/Ng, CF1 = 2 CP CR / (CP + CR) (not the mean of per-class
///   F1), OP = sum Nc / sum Np, OR = sum Nc / sum Ng, OF1 = 2 OP OR / (OP + OR),
/// for two prediction rules: "all" (score >= threshold) and "top-k" (among the image's k highest
/// scores, ties broken by the lower class index, and score >= threshold). Edge cases:
/// - a class never predicted (Np = 0) has precision 0, ML-GCN's code convention (it replaces
///   Np = 0 by 1 before dividing); it still counts in CP's mean over all classes;
/// - a class without positive targets (Ng = 0) has recall 0 in CR's mean over all classes
///   (ML-GCN's code gives NaN there; the count is reported as classes_without_positives);
/// - OP uses the true sum of Np, as the papers' formula (ML-GCN's code sums the replaced Np, so
///   each never-predicted class adds 1 to its denominator); OP = 0 when nothing is predicted,
///   OR = 0 without any positive target, CF1 = 0 when CP + CR = 0 and OF1 = 0 when OP + OR = 0
///   (ML-GCN: NaN).
/// Images without positive targets count like any other (their predictions are false positives).

#include <mobilenet/metrics/detail/metrics_sort.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <limits>
#include <ostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace mobilenet {

/// Value of precision (recall) when a class has no positive prediction (target), as
/// scikit-learn's `zero_division` parameter ("warn" behaves as zero).
enum class ZeroDivision { zero, one };

/// Precision / recall / F1 at fixed thresholds: per class, micro, macro and weighted by support.
struct ThresholdMetrics {
  std::vector<float> thresholds;              ///< per class, as used
  std::vector<int64_t> tp, fp, fn;            ///< per class counts
  std::vector<int64_t> support;               ///< per class positives (tp + fn)
  std::vector<double> precision, recall, f1;  ///< per class
  double micro_precision = 0, micro_recall = 0, micro_f1 = 0;  ///< from counts summed over classes
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;  ///< unweighted mean over classes
  double weighted_precision = 0, weighted_recall = 0, weighted_f1 = 0;  ///< mean weighted by support
  double element_accuracy = 0;  ///< correct (sample, class) decisions / (samples * classes)
  int64_t num_samples = 0;
};

/// Average precision per class and its mean.
struct AveragePrecision {
  std::vector<double> per_class;  ///< NaN for classes without positive targets
  double mean = std::numeric_limits<double>::quiet_NaN();  ///< mAP over defined classes (NaN if none)
  int64_t num_undefined = 0;      ///< classes without positive targets, excluded from `mean`
};

/// The papers' six numbers for one prediction rule (see the file comment for the edge cases).
struct PaperScores {
  double class_precision = 0;    ///< CP: mean over all classes of Nc/Np
  double class_recall = 0;       ///< CR: mean over all classes of Nc/Ng
  double class_f1 = 0;           ///< CF1 = 2 CP CR / (CP + CR)
  double overall_precision = 0;  ///< OP = sum Nc / sum Np
  double overall_recall = 0;     ///< OR = sum Nc / sum Ng
  double overall_f1 = 0;         ///< OF1 = 2 OP OR / (OP + OR)
  int64_t classes_without_predictions = 0;  ///< classes with Np = 0 (precision 0 in CP)
};

/// The multi-label protocol of ML-GCN / ASL papers, from MetricsAccumulator::paper_metrics().
struct PaperMetrics {
  int64_t top_k = 3;  ///< k of the `top` rule
  PaperScores all;    ///< predicted iff score >= threshold ("All" in the papers' tables)
  PaperScores top;    ///< predicted iff among the image's top_k scores and score >= threshold
  int64_t classes_without_positives = 0;  ///< classes with Ng = 0 (recall 0 in CR)
};

/// The headline numbers of an evaluation (what a training log prints each epoch).
struct MetricsSummary {
  int64_t num_samples = 0, num_classes = 0;
  double element_accuracy = 0;
  double micro_precision = 0, micro_recall = 0, micro_f1 = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double mean_average_precision = std::numeric_limits<double>::quiet_NaN();
  int64_t classes_without_positives = 0;  ///< excluded from mean_average_precision
  PaperMetrics paper;  ///< CP/CR/CF1/OP/OR/OF1 at the same thresholds, all and top-k
};

/// One line: "samples 5000 | acc 0.9797 | micro P/R/F1 0.91/0.45/0.60 | macro F1 ... | mAP ...
/// | all CP/CR/CF1 ... OP/OR/OF1 ... | top-3 CP/CR/CF1 ... OP/OR/OF1 ...".
inline std::ostream& operator<<(std::ostream& os, const MetricsSummary& s) {
  char buf[640];
  const PaperScores& a = s.paper.all;
  const PaperScores& t = s.paper.top;
  std::snprintf(buf, sizeof buf,
                "samples %lld | acc %.4f | micro P/R/F1 %.4f/%.4f/%.4f | macro P/R/F1 "
                "%.4f/%.4f/%.4f | mAP %.4f (%lld classes without positives) | all CP/CR/CF1 "
                "%.4f/%.4f/%.4f OP/OR/OF1 %.4f/%.4f/%.4f | top-%lld CP/CR/CF1 %.4f/%.4f/%.4f "
                "OP/OR/OF1 %.4f/%.4f/%.4f",
                static_cast<long long>(s.num_samples), s.element_accuracy, s.micro_precision,
                s.micro_recall, s.micro_f1, s.macro_precision, s.macro_recall, s.macro_f1,
                s.mean_average_precision, static_cast<long long>(s.classes_without_positives),
                a.class_precision, a.class_recall, a.class_f1, a.overall_precision,
                a.overall_recall, a.overall_f1, static_cast<long long>(s.paper.top_k),
                t.class_precision, t.class_recall, t.class_f1, t.overall_precision,
                t.overall_recall, t.overall_f1);
  return os << buf;
}

/// Streaming accumulator of (scores, targets) batches, N x C each, for a fixed number of
/// classes. Stores 5 bytes per (sample, class), class-major so that ranking metrics sort each
/// class's column once. Not thread-safe; add() from one thread.
class MetricsAccumulator {
 public:
  /// `num_classes` > 0.
  explicit MetricsAccumulator(int64_t num_classes) : num_classes_(num_classes) {
    if (num_classes <= 0) {
      throw std::invalid_argument("MetricsAccumulator: num_classes must be > 0, got " +
                                  std::to_string(num_classes));
    }
    scores_.resize(static_cast<size_t>(num_classes));
    labels_.resize(static_cast<size_t>(num_classes));
    positives_.assign(static_cast<size_t>(num_classes), 0);
  }

  /// Adds a batch given as row-major N x C arrays (one row per sample). Throws
  /// std::invalid_argument on a NaN score or a target outside [0, 1], naming sample and class;
  /// the accumulator is then left unchanged.
  void add(const float* scores, const float* targets, int64_t rows) {
    if (rows < 0) throw std::invalid_argument("MetricsAccumulator::add: negative row count");
    const size_t c_count = static_cast<size_t>(num_classes_);
    const size_t n = static_cast<size_t>(rows);
    for (size_t i = 0; i < n * c_count; ++i) {  // validate first: all or nothing
      if (std::isnan(scores[i]) || !(targets[i] >= 0.0f && targets[i] <= 1.0f)) {
        std::ostringstream msg;
        msg << "MetricsAccumulator::add: sample " << num_samples_ + static_cast<int64_t>(i / c_count)
            << " class " << i % c_count << ": ";
        if (std::isnan(scores[i])) msg << "score is NaN";
        else msg << "target " << targets[i] << " is outside [0, 1]";
        throw std::invalid_argument(msg.str());
      }
    }
    const size_t old = static_cast<size_t>(num_samples_);
    for (size_t c = 0; c < c_count; ++c) {
      scores_[c].resize(old + n);
      labels_[c].resize(old + n);
    }
    // Transpose in blocks of rows that stay in cache, instead of one pass over the whole
    // batch per class.
    constexpr size_t kBlock = 128;
    for (size_t r0 = 0; r0 < n; r0 += kBlock) {
      const size_t r1 = std::min(n, r0 + kBlock);
      for (size_t c = 0; c < c_count; ++c) {
        float* s = scores_[c].data() + old;
        uint8_t* l = labels_[c].data() + old;
        int64_t pos = 0;
        for (size_t r = r0; r < r1; ++r) {
          s[r] = scores[r * c_count + c];
          const uint8_t y = targets[r * c_count + c] >= 0.5f;
          l[r] = y;
          pos += y;
        }
        positives_[c] += pos;
      }
    }
    num_samples_ += rows;
  }

  /// Adds a batch from Eigen matrices (any layout or scalar type): scores and targets N x C.
  template <class ScoresDerived, class TargetsDerived>
  void add(const Eigen::MatrixBase<ScoresDerived>& scores,
           const Eigen::MatrixBase<TargetsDerived>& targets) {
    if (scores.rows() != targets.rows() || scores.cols() != targets.cols() ||
        scores.cols() != num_classes_) {
      std::ostringstream msg;
      msg << "MetricsAccumulator::add: scores shape [" << scores.rows() << ", " << scores.cols()
          << "] and targets shape [" << targets.rows() << ", " << targets.cols()
          << "] must both be [N, " << num_classes_ << "]";
      throw std::invalid_argument(msg.str());
    }
    using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const RowMajor s = scores.template cast<float>();
    const RowMajor t = targets.template cast<float>();
    add(s.data(), t.data(), s.rows());
  }

  /// Forgets all samples (keeps the number of classes and the allocated memory).
  void reset() {
    for (auto& s : scores_) s.clear();
    for (auto& l : labels_) l.clear();
    positives_.assign(positives_.size(), 0);
    num_samples_ = 0;
  }

  int64_t num_samples() const { return num_samples_; }
  int64_t num_classes() const { return num_classes_; }
  /// Positive targets seen per class.
  const std::vector<int64_t>& positives() const { return positives_; }

  /// Precision / recall / F1 / accuracy with one threshold for all classes (default 0.5).
  ThresholdMetrics at_threshold(float threshold = 0.5f,
                                ZeroDivision zero_division = ZeroDivision::zero) const {
    return at_threshold(std::vector<float>(static_cast<size_t>(num_classes_), threshold),
                        zero_division);
  }

  /// Same with one threshold per class (e.g. from tune_thresholds()).
  ThresholdMetrics at_threshold(const std::vector<float>& thresholds,
                                ZeroDivision zero_division = ZeroDivision::zero) const {
    check_thresholds(thresholds, "at_threshold");
    const size_t C = static_cast<size_t>(num_classes_);
    ThresholdMetrics m;
    m.thresholds = thresholds;
    m.num_samples = num_samples_;
    m.tp.resize(C);
    m.fp.resize(C);
    m.fn.resize(C);
    m.support.resize(C);
    m.precision.resize(C);
    m.recall.resize(C);
    m.f1.resize(C);
    const double zd = zero_division == ZeroDivision::one ? 1.0 : 0.0;
    int64_t tp_sum = 0, pred_sum = 0, true_sum = 0, correct = 0;
    for (size_t c = 0; c < C; ++c) {
      const float thr = thresholds[c];
      const float* s = scores_[c].data();
      const uint8_t* l = labels_[c].data();
      int64_t tp = 0, pred = 0;
      for (size_t i = 0, n = scores_[c].size(); i < n; ++i) {
        const int64_t p = s[i] >= thr;
        pred += p;
        tp += p & l[i];
      }
      const int64_t pos = positives_[c];
      m.tp[c] = tp;
      m.fp[c] = pred - tp;
      m.fn[c] = pos - tp;
      m.support[c] = pos;
      prf(tp, pred, pos, zd, m.precision[c], m.recall[c], m.f1[c]);
      tp_sum += tp;
      pred_sum += pred;
      true_sum += pos;
      correct += num_samples_ - (pred - tp) - (pos - tp);
    }
    prf(tp_sum, pred_sum, true_sum, zd, m.micro_precision, m.micro_recall, m.micro_f1);
    m.macro_precision = mean(m.precision);
    m.macro_recall = mean(m.recall);
    m.macro_f1 = mean(m.f1);
    if (true_sum == 0) {
      // scikit-learn: nothing to weight by; precision/F1 are zero_division only when nothing
      // was predicted either.
      m.weighted_recall = zd;
      m.weighted_precision = m.weighted_f1 = pred_sum == 0 ? zd : 0.0;
    } else {
      m.weighted_precision = weighted(m.precision, m.support);
      m.weighted_recall = weighted(m.recall, m.support);
      m.weighted_f1 = weighted(m.f1, m.support);
    }
    m.element_accuracy = num_samples_ == 0 ? std::numeric_limits<double>::quiet_NaN()
                                           : static_cast<double>(correct) /
                                                 (static_cast<double>(num_samples_) * C);
    return m;
  }

  /// Average precision per class (scikit-learn's `average_precision_score`: the step-wise area
  /// under the precision-recall curve, sum over distinct scores of (R_k - R_k-1) * P_k, tied
  /// scores forming one step) and mAP over the classes that have positives.
  AveragePrecision average_precision() const {
    AveragePrecision ap;
    ap.per_class.assign(static_cast<size_t>(num_classes_), std::numeric_limits<double>::quiet_NaN());
    double sum = 0;
    int64_t defined = 0;
    for_each_sorted_class([&](size_t c, const uint64_t* keys, size_t n) {
      const int64_t positives = positives_[c];
      if (positives == 0) return;
      double area = 0;
      int64_t tp = 0, seen = 0, tp_step = 0;
      for (size_t i = n; i > 0;) {  // descending scores, one step per distinct score
        const uint64_t score = keys[i - 1] >> 1;
        do {
          tp += static_cast<int64_t>(keys[i - 1] & 1u);
          ++seen;
          --i;
        } while (i > 0 && (keys[i - 1] >> 1) == score);
        if (tp != tp_step) {
          area += static_cast<double>(tp - tp_step) / static_cast<double>(positives) *
                  (static_cast<double>(tp) / static_cast<double>(seen));
          tp_step = tp;
        }
      }
      ap.per_class[c] = area;
      sum += area;
      ++defined;
    });
    ap.num_undefined = num_classes_ - defined;
    if (defined > 0) ap.mean = sum / static_cast<double>(defined);
    return ap;
  }

  /// Per-class thresholds maximising F-beta (beta = 1: F1) on the accumulated samples: for each
  /// class, over all cut points between distinct scores, the best one (the highest threshold
  /// on ties), placed half-way between the lowest score kept positive and the next lower score
  /// so that it transfers to new data. Classes without positives get `fallback`. Evaluating
  /// at_threshold(result) on the same samples gives exactly those per-class optima.
  std::vector<float> tune_thresholds(double beta = 1.0, float fallback = 0.5f) const {
    if (!(beta > 0)) {
      throw std::invalid_argument("MetricsAccumulator::tune_thresholds: beta must be > 0, got " +
                                  std::to_string(beta));
    }
    const double b2 = beta * beta;
    std::vector<float> thresholds(static_cast<size_t>(num_classes_), fallback);
    for_each_sorted_class([&](size_t c, const uint64_t* keys, size_t n) {
      const int64_t positives = positives_[c];
      if (positives == 0) return;
      double best = -1;
      size_t best_end = 0;  // keys[best_end..n) are predicted positive
      int64_t tp = 0;
      for (size_t i = n; i > 0;) {
        const uint64_t score = keys[i - 1] >> 1;
        do {
          tp += static_cast<int64_t>(keys[i - 1] & 1u);
          --i;
        } while (i > 0 && (keys[i - 1] >> 1) == score);
        const double predicted = static_cast<double>(n - i);
        const double f = (1 + b2) * static_cast<double>(tp) /
                         ((1 + b2) * static_cast<double>(tp) + b2 * static_cast<double>(positives - tp) +
                          (predicted - static_cast<double>(tp)));
        if (f > best) {
          best = f;
          best_end = i;
        }
      }
      const float lowest_kept = detail::metrics_key_float(static_cast<uint32_t>(keys[best_end] >> 1));
      float thr = lowest_kept;
      if (best_end > 0) {
        const float next = detail::metrics_key_float(static_cast<uint32_t>(keys[best_end - 1] >> 1));
        const float mid = static_cast<float>(0.5 * (static_cast<double>(lowest_kept) + next));
        if (mid > next && mid <= lowest_kept && std::isfinite(mid)) thr = mid;  // else adjacent floats
      }
      thresholds[c] = thr;
    });
    return thresholds;
  }

  /// The papers' CP, CR, CF1, OP, OR, OF1 (ML-GCN protocol, conventions in the file comment)
  /// for two rules: `all` predicts a class when score >= threshold; `top` only when the class
  /// is also among the image's `top_k` highest scores (ties go to the lower class index, as a
  /// stable sort by descending score). The papers use threshold 0.5 on probabilities (0 on
  /// logits) and top_k = 3. `top_k` >= 1; top_k >= num_classes makes the two rules equal.
  /// Example: `double cf1_top3 = acc.paper_metrics(0.5f, 3).top.class_f1;`
  PaperMetrics paper_metrics(float threshold = 0.5f, int64_t top_k = 3) const {
    return paper_metrics(std::vector<float>(static_cast<size_t>(num_classes_), threshold), top_k);
  }

  /// Same with one threshold per class. The top-k ranking is over all classes' scores; each
  /// of the k kept classes must then reach its own threshold.
  PaperMetrics paper_metrics(const std::vector<float>& thresholds, int64_t top_k = 3) const {
    check_thresholds(thresholds, "paper_metrics");
    if (top_k < 1) {
      throw std::invalid_argument("MetricsAccumulator::paper_metrics: top_k must be >= 1, got " +
                                  std::to_string(top_k));
    }
    const size_t C = static_cast<size_t>(num_classes_);
    const size_t n = static_cast<size_t>(num_samples_);
    const ThresholdMetrics at = at_threshold(thresholds);
    const std::vector<int64_t>& correct_all = at.tp;
    std::vector<int64_t> predicted_all(C);
    for (size_t c = 0; c < C; ++c) predicted_all[c] = at.tp[c] + at.fp[c];
    std::vector<int64_t> correct_top = correct_all, predicted_top = predicted_all;
    const size_t k = static_cast<size_t>(std::min<int64_t>(top_k, num_classes_));
    if (k < C) {
      std::fill(correct_top.begin(), correct_top.end(), 0);
      std::fill(predicted_top.begin(), predicted_top.end(), 0);
      // Rows are gathered from the class-major storage a block at a time, so that the C
      // column streams are read sequentially.
      constexpr size_t kBlock = 256;
      std::vector<float> block(kBlock * C);
      std::vector<uint32_t> order(C);
      for (size_t r0 = 0; r0 < n; r0 += kBlock) {
        const size_t rows = std::min(n - r0, kBlock);
        for (size_t c = 0; c < C; ++c) {
          const float* s = scores_[c].data() + r0;
          for (size_t r = 0; r < rows; ++r) block[r * C + c] = s[r];
        }
        for (size_t r = 0; r < rows; ++r) {
          const float* row = block.data() + r * C;
          for (size_t c = 0; c < C; ++c) order[c] = static_cast<uint32_t>(c);
          std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k),
                            order.end(), [row](uint32_t a, uint32_t b) {
                              return row[a] > row[b] || (row[a] == row[b] && a < b);
                            });
          for (size_t j = 0; j < k; ++j) {
            const uint32_t c = order[j];
            if (row[c] >= thresholds[c]) {
              ++predicted_top[c];
              correct_top[c] += labels_[c][r0 + r];
            }
          }
        }
      }
    }
    PaperMetrics m;
    m.top_k = top_k;
    m.all = paper_scores(correct_all, predicted_all);
    m.top = paper_scores(correct_top, predicted_top);
    for (int64_t pos : positives_) m.classes_without_positives += pos == 0;
    return m;
  }

  /// Headline numbers at one threshold (default 0.5); the papers' metrics use the same
  /// threshold and `top_k`.
  MetricsSummary summary(float threshold = 0.5f, ZeroDivision zero_division = ZeroDivision::zero,
                         int64_t top_k = 3) const {
    return make_summary(at_threshold(threshold, zero_division), average_precision(),
                        paper_metrics(threshold, top_k));
  }

  /// Headline numbers at per-class thresholds.
  MetricsSummary summary(const std::vector<float>& thresholds,
                         ZeroDivision zero_division = ZeroDivision::zero,
                         int64_t top_k = 3) const {
    return make_summary(at_threshold(thresholds, zero_division), average_precision(),
                        paper_metrics(thresholds, top_k));
  }

  /// Printable report at per-class thresholds: one row per class (precision, recall, F1,
  /// support, threshold, AP), micro / macro / weighted averages, accuracy and mAP, then the
  /// papers' CP/CR/CF1/OP/OR/OF1 for all predictions and the top `top_k`.
  /// `class_names` may be empty (classes are numbered) or hold one name per class.
  /// Example: `std::cout << acc.report(names, acc.tune_thresholds());`
  std::string report(const std::vector<std::string>& class_names,
                     const std::vector<float>& thresholds,
                     ZeroDivision zero_division = ZeroDivision::zero, int64_t top_k = 3) const {
    if (!class_names.empty() && static_cast<int64_t>(class_names.size()) != num_classes_) {
      throw std::invalid_argument("MetricsAccumulator::report: " +
                                  std::to_string(class_names.size()) + " class names for " +
                                  std::to_string(num_classes_) + " classes");
    }
    const auto m = at_threshold(thresholds, zero_division);
    const auto ap = average_precision();
    size_t width = 12;
    for (const auto& n : class_names) width = std::max(width, n.size() + 1);
    std::ostringstream os;
    os << std::fixed << std::setprecision(4);
    os << std::left << std::setw(static_cast<int>(width)) << "class" << std::right
       << std::setw(10) << "precision" << std::setw(10) << "recall" << std::setw(10) << "f1"
       << std::setw(10) << "support" << std::setw(11) << "threshold" << std::setw(10) << "AP"
       << "\n";
    for (size_t c = 0; c < static_cast<size_t>(num_classes_); ++c) {
      const std::string name = class_names.empty() ? std::to_string(c) : class_names[c];
      os << std::left << std::setw(static_cast<int>(width)) << name << std::right << std::setw(10)
         << m.precision[c] << std::setw(10) << m.recall[c] << std::setw(10) << m.f1[c]
         << std::setw(10) << m.support[c] << std::setw(11) << m.thresholds[c];
      if (std::isnan(ap.per_class[c])) os << std::setw(10) << "-";
      else os << std::setw(10) << ap.per_class[c];
      os << "\n";
    }
    int64_t total_support = 0;
    for (auto s : m.support) total_support += s;
    auto avg_row = [&](const char* name, double p, double r, double f) {
      os << std::left << std::setw(static_cast<int>(width)) << name << std::right << std::setw(10)
         << p << std::setw(10) << r << std::setw(10) << f << std::setw(10) << total_support << "\n";
    };
    os << "\n";
    avg_row("micro avg", m.micro_precision, m.micro_recall, m.micro_f1);
    avg_row("macro avg", m.macro_precision, m.macro_recall, m.macro_f1);
    avg_row("weighted avg", m.weighted_precision, m.weighted_recall, m.weighted_f1);
    os << "\nsamples " << num_samples_ << ", classes " << num_classes_
       << ", element accuracy " << m.element_accuracy << ", mAP " << ap.mean << " over "
       << num_classes_ - ap.num_undefined << " classes";
    if (ap.num_undefined > 0) {
      os << " (" << ap.num_undefined << " without positives: AP undefined, excluded)";
    }
    os << "\n";
    const auto paper = paper_metrics(thresholds, top_k);
    os << "\n" << std::left << std::setw(static_cast<int>(width)) << "ML-GCN" << std::right;
    for (const char* h : {"CP", "CR", "CF1", "OP", "OR", "OF1"}) os << std::setw(10) << h;
    os << "\n";
    auto paper_row = [&](const std::string& name, const PaperScores& p) {
      os << std::left << std::setw(static_cast<int>(width)) << name << std::right;
      for (double v : {p.class_precision, p.class_recall, p.class_f1, p.overall_precision,
                       p.overall_recall, p.overall_f1}) {
        os << std::setw(10) << v;
      }
      os << "\n";
    };
    paper_row("all", paper.all);
    paper_row("top-" + std::to_string(top_k), paper.top);
    return os.str();
  }

  /// Printable report at one threshold for all classes.
  std::string report(const std::vector<std::string>& class_names = {}, float threshold = 0.5f,
                     ZeroDivision zero_division = ZeroDivision::zero, int64_t top_k = 3) const {
    return report(class_names, std::vector<float>(static_cast<size_t>(num_classes_), threshold),
                  zero_division, top_k);
  }

 private:
  static void prf(int64_t tp, int64_t pred, int64_t pos, double zd, double& p, double& r,
                  double& f) {
    // Same operations as scikit-learn (P and R first, then F from them) for bitwise-close values.
    p = pred == 0 ? zd : static_cast<double>(tp) / static_cast<double>(pred);
    r = pos == 0 ? zd : static_cast<double>(tp) / static_cast<double>(pos);
    const double denom = p + r;
    f = denom == 0 ? 0.0 : 2 * p * r / denom;
  }

  /// CP/CR/CF1/OP/OR/OF1 from per-class counts, with the conventions of the file comment.
  PaperScores paper_scores(const std::vector<int64_t>& correct,
                           const std::vector<int64_t>& predicted) const {
    PaperScores p;
    double precision_sum = 0, recall_sum = 0;
    int64_t correct_sum = 0, predicted_sum = 0, positive_sum = 0;
    for (size_t c = 0; c < correct.size(); ++c) {
      const double nc = static_cast<double>(correct[c]);
      if (predicted[c] > 0) precision_sum += nc / static_cast<double>(predicted[c]);
      else ++p.classes_without_predictions;
      if (positives_[c] > 0) recall_sum += nc / static_cast<double>(positives_[c]);
      correct_sum += correct[c];
      predicted_sum += predicted[c];
      positive_sum += positives_[c];
    }
    auto ratio = [](int64_t a, int64_t b) {
      return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
    };
    auto f1 = [](double precision, double recall) {
      const double denom = precision + recall;
      return denom == 0 ? 0.0 : 2 * precision * recall / denom;
    };
    const double classes = static_cast<double>(correct.size());
    p.class_precision = precision_sum / classes;
    p.class_recall = recall_sum / classes;
    p.class_f1 = f1(p.class_precision, p.class_recall);
    p.overall_precision = ratio(correct_sum, predicted_sum);
    p.overall_recall = ratio(correct_sum, positive_sum);
    p.overall_f1 = f1(p.overall_precision, p.overall_recall);
    return p;
  }

  static double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return s / static_cast<double>(v.size());
  }

  static double weighted(const std::vector<double>& v, const std::vector<int64_t>& w) {
    double s = 0, ws = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      s += v[i] * static_cast<double>(w[i]);
      ws += static_cast<double>(w[i]);
    }
    return s / ws;
  }

  void check_thresholds(const std::vector<float>& thresholds, const char* where) const {
    if (static_cast<int64_t>(thresholds.size()) != num_classes_) {
      throw std::invalid_argument(std::string("MetricsAccumulator::") + where + ": " +
                                  std::to_string(thresholds.size()) + " thresholds for " +
                                  std::to_string(num_classes_) + " classes");
    }
  }

  MetricsSummary make_summary(const ThresholdMetrics& m, const AveragePrecision& ap,
                              const PaperMetrics& paper) const {
    MetricsSummary s;
    s.num_samples = num_samples_;
    s.num_classes = num_classes_;
    s.element_accuracy = m.element_accuracy;
    s.micro_precision = m.micro_precision;
    s.micro_recall = m.micro_recall;
    s.micro_f1 = m.micro_f1;
    s.macro_precision = m.macro_precision;
    s.macro_recall = m.macro_recall;
    s.macro_f1 = m.macro_f1;
    s.mean_average_precision = ap.mean;
    s.classes_without_positives = ap.num_undefined;
    s.paper = paper;
    return s;
  }

  /// Calls fn(class, sorted keys, n) for every class, keys ascending by score. The two key
  /// buffers are allocated once per call and reused for all classes.
  template <class Fn>
  void for_each_sorted_class(Fn&& fn) const {
    const size_t n = static_cast<size_t>(num_samples_);
    if (n == 0) return;
    std::vector<uint64_t> keys(n), tmp(n);
    for (size_t c = 0; c < static_cast<size_t>(num_classes_); ++c) {
      if (positives_[c] == 0) continue;  // nothing to rank: AP undefined, threshold fallback
      const float* s = scores_[c].data();
      const uint8_t* l = labels_[c].data();
      for (size_t i = 0; i < n; ++i) {
        keys[i] = (static_cast<uint64_t>(detail::metrics_float_key(s[i])) << 1) | l[i];
      }
      fn(c, detail::metrics_sort_keys(keys, tmp), n);
    }
  }

  int64_t num_classes_;
  int64_t num_samples_ = 0;
  std::vector<std::vector<float>> scores_;    // [class][sample]
  std::vector<std::vector<uint8_t>> labels_;  // [class][sample], 0/1
  std::vector<int64_t> positives_;            // per class
};

}  // namespace mobilenet
