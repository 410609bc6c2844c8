#pragma once
/// \file metrics_log.hpp
/// The training run's metrics.csv: the one owner of its columns. The Trainer appends a row per
/// epoch, the plots script is generated from the same column names, and a resumed run drops
/// rows past the checkpoint's epoch (so a failed save never duplicates rows).

#include <mobilenet/train/evaluate.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace mobilenet {

/// One epoch's row: training loss, validation metrics of the raw weights and of their EMA.
struct EpochRecord {
  int64_t epoch = 0;  ///< 0: the untrained model
  double train_loss = std::numeric_limits<double>::quiet_NaN();
  double lr = std::numeric_limits<double>::quiet_NaN();  ///< at the epoch's last step
  double seconds = 0;                                    ///< training time of the epoch
  const Evaluation* val = nullptr;                       ///< raw weights (required)
  const Evaluation* ema = nullptr;                       ///< EMA weights (optional)
};

/// Appends EpochRecords to a CSV file. Example:
/// `MetricsLog log(out / "metrics.csv"); log.start(resume_epoch); log.append(record);`
class MetricsLog {
 public:
  explicit MetricsLog(std::string path) : path_(std::move(path)) {}

  /// The columns, in order. Plots and readers look columns up by these names.
  static const std::vector<std::string>& columns() {
    static const std::vector<std::string> c = {
        "epoch",          "train_loss",     "val_loss",       "accuracy",
        "micro_precision", "micro_recall",  "micro_f1",       "macro_precision",
        "macro_recall",   "macro_f1",       "tuned_micro_f1", "tuned_macro_f1",
        "map",            "cp",             "cr",             "cf1",
        "op",             "or",             "of1",            "cf1_top3",
        "of1_top3",       "ema_val_loss",   "ema_map",        "lr",
        "seconds"};
    return c;
  }

  /// Starts the log: a fresh file with the header when `keep_epochs` < 0, otherwise keeps the
  /// header and the rows of epochs 0..keep_epochs (a resumed run) and drops the rest.
  void start(int64_t keep_epochs = -1) {
    std::vector<std::string> kept;
    if (keep_epochs >= 0) {
      std::ifstream in(path_);
      std::string line;
      bool header = true;
      while (std::getline(in, line)) {
        if (header) {
          header = false;
          TORCH_CHECK(line == header_line(), "metrics log '", path_,
                      "' has other columns than this version writes: '", line, "'");
          continue;
        }
        if (!line.empty() && std::stoll(line.substr(0, line.find(','))) <= keep_epochs) {
          kept.push_back(line);
        }
      }
    }
    std::ofstream out(path_, std::ios::trunc);
    TORCH_CHECK(out, "cannot write metrics log '", path_, "'");
    out << header_line() << "\n";
    for (const auto& l : kept) out << l << "\n";
    TORCH_CHECK(out.flush(), "cannot write metrics log '", path_, "'");
  }

  /// Appends one row.
  void append(const EpochRecord& r) {
    TORCH_CHECK(r.val != nullptr, "MetricsLog::append: the record has no validation metrics");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Evaluation& v = *r.val;
    const std::vector<double> values = {
        double(r.epoch), r.train_loss, v.loss, v.at_half.element_accuracy,
        v.at_half.micro_precision, v.at_half.micro_recall, v.at_half.micro_f1,
        v.at_half.macro_precision, v.at_half.macro_recall, v.at_half.macro_f1,
        v.tuned.micro_f1, v.tuned.macro_f1, v.ap.mean, v.paper.all.class_precision,
        v.paper.all.class_recall, v.paper.all.class_f1, v.paper.all.overall_precision,
        v.paper.all.overall_recall, v.paper.all.overall_f1, v.paper.top.class_f1,
        v.paper.top.overall_f1,
        r.ema ? r.ema->loss : nan, r.ema ? r.ema->ap.mean : nan, r.lr, r.seconds};
    TORCH_CHECK(values.size() == columns().size(), "MetricsLog: row and columns disagree");
    std::ofstream out(path_, std::ios::app);
    out << std::setprecision(6);
    for (size_t i = 0; i < values.size(); ++i) out << (i ? "," : "") << values[i];
    out << "\n";
    TORCH_CHECK(out.flush(), "cannot append to metrics log '", path_, "'");
  }

  const std::string& path() const { return path_; }

  /// gnuplot script drawing loss.png, f1.png and map.png from this log (and per_class_ap.png
  /// from `per_class_csv`, "class,ap,threshold"). Every file name is relative to the folder
  /// gnuplot runs in (the run folder), so no user-chosen path ends up inside the script.
  /// EMA curves are drawn only `with_ema` (gnuplot refuses a column that is all missing).
  static std::string gnuplot_script(const std::string& log_file, const std::string& per_class_csv,
                                    bool with_ema) {
    // gnuplot's single-quoted strings escape a quote by doubling it.
    auto quote = [](const std::string& text) {
      std::string q = "'";
      for (char ch : text) q += ch == '\'' ? std::string("''") : std::string(1, ch);
      return q + "'";
    };
    auto col = [](const std::string& name) {
      for (const auto& c : columns()) {
        if (c == name) return "'" + c + "'";
      }
      TORCH_CHECK(false, "MetricsLog: no column '", name, "'");
    };
    std::ostringstream gp;
    auto plot = [&](const std::string& file, const std::string& title,
                    std::vector<std::pair<std::string, std::string>> lines) {
      if (!with_ema) {
        lines.erase(std::remove_if(lines.begin(), lines.end(),
                                   [](const auto& l) { return l.first.rfind("ema_", 0) == 0; }),
                    lines.end());
      }
      gp << "set output " << quote(file) << "\nset title " << quote(title) << "\nplot ";
      for (size_t i = 0; i < lines.size(); ++i) {
        gp << (i ? ", '' " : quote(log_file) + " ") << "using " << col("epoch") << ":"
           << col(lines[i].first) << " with linespoints title '" << lines[i].second << "'";
      }
      gp << "\n";
    };
    gp << "set datafile separator ','\nset datafile missing 'nan'\n"
          "set terminal pngcairo size 900,500 noenhanced\n"
          "set key outside right\nset grid\nset xlabel 'epoch'\nset xtics 1\n";
    plot("loss.png", "loss", {{"train_loss", "train"}, {"val_loss", "val"}, {"ema_val_loss", "val (EMA)"}});
    plot("f1.png", "F1 (micro / macro, at 0.5 and tuned; CF1 / OF1 as in the papers)",
         {{"micro_f1", "micro @0.5"}, {"macro_f1", "macro @0.5"}, {"tuned_micro_f1", "micro tuned"},
          {"tuned_macro_f1", "macro tuned"}, {"cf1", "CF1"}, {"of1", "OF1"}, {"cf1_top3", "CF1 top-3"}});
    plot("map.png", "mAP", {{"map", "val mAP"}, {"ema_map", "val mAP (EMA)"}});
    gp << "set output 'per_class_ap.png'\nset title 'average precision per class'\n"
          "set style fill solid 0.6\nset boxwidth 0.8\nset xtics rotate by 60 right\n"
          "set xlabel ''\nset xtics autofreq\nset yrange [0:1]\n"
          "plot " << quote(per_class_csv) << " using 0:'ap':xtic(1) with boxes notitle\n";
    return gp.str();
  }

 private:
  static std::string header_line() {
    std::string h;
    for (const auto& c : columns()) h += (h.empty() ? "" : ",") + c;
    return h;
  }
  std::string path_;
};

}  // namespace mobilenet
