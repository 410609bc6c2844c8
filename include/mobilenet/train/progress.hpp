#pragma once
/// \file progress.hpp
/// A one-line progress bar for long loops: done/total, rate, ETA and any extra fields.

#include <chrono>
#include <cstdio>
#include <string>
#include <unistd.h>

namespace mobilenet {

/// Redraws one line at most every `min_interval_ms`; on a terminal with '\r', otherwise
/// (logs, CI) as a fresh line every `log_every` seconds so files stay readable.
/// Example: `ProgressBar bar("epoch 3", n); bar.update(i, images, "loss 0.123"); bar.finish();`
class ProgressBar {
 public:
  ProgressBar(std::string label, int64_t total, std::FILE* stream = stderr)
      : label_(std::move(label)),
        total_(total),
        stream_(stream),
        tty_(isatty(fileno(stream)) != 0),
        start_(Clock::now()),
        last_(start_) {}

  /// `done` of `total` units finished; `items` processed so far (for the rate, e.g. images).
  void update(int64_t done, int64_t items, const std::string& extra = "") {
    const auto now = Clock::now();
    const double since_last = seconds(last_, now);
    // Always show the first update, so a log says early that work has started.
    if (drawn_ && done < total_ && since_last < (tty_ ? 0.2 : kLogEverySeconds)) return;
    drawn_ = true;
    last_ = now;
    draw(done, items, extra, now);
  }

  /// Draws the final state and ends the line.
  void finish(int64_t items, const std::string& extra = "") {
    draw(total_, items, extra, Clock::now());
    if (tty_) std::fputc('\n', stream_);
    std::fflush(stream_);
  }

  double elapsed() const { return seconds(start_, Clock::now()); }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr double kLogEverySeconds = 10.0;  // non-tty: one line per 10 s
  static double seconds(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
  }

  void draw(int64_t done, int64_t items, const std::string& extra, Clock::time_point now) {
    constexpr int kWidth = 24;
    const double t = seconds(start_, now);
    const double frac = total_ > 0 ? static_cast<double>(done) / total_ : 1.0;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    const double rate = t > 0 ? items / t : 0.0;
    const double eta = done > 0 ? t * (total_ - done) / done : 0.0;
    std::fprintf(stream_, "%s%s [%s] %lld/%lld %.1f img/s ETA %02d:%02d %s%s", tty_ ? "\r" : "",
                 label_.c_str(), bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), rate, static_cast<int>(eta) / 60,
                 static_cast<int>(eta) % 60, extra.c_str(), tty_ ? "\x1b[K" : "\n");
    std::fflush(stream_);
  }

  std::string label_;
  int64_t total_;
  std::FILE* stream_;
  bool tty_;
  Clock::time_point start_;
  Clock::time_point last_;
  bool drawn_ = false;
};

}  // namespace mobilenet
