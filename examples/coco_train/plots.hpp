// Renders the run folder's plots.gp with gnuplot. gnuplot is started from an argument vector
// (posix_spawnp, no shell) inside the run folder, and plots.gp names its files relative to
// it: no character of --out reaches a shell or the gnuplot script.
#pragma once

#include <mobilenet/io/process.hpp>

#include <cerrno>
#include <string>

namespace coco_train {

/// What render_plots did, as one line for the user.
struct PlotResult {
  bool rendered = false;
  std::string message;
};

inline PlotResult render_plots(const std::string& dir) {
  const std::string by_hand = "run 'gnuplot plots.gp' in " + dir;
  try {
    // quiet: gnuplot's own chatter (font warnings) would bury the run's summary.
    const auto r = mobilenet::run_process({"gnuplot", "plots.gp"},
                                          mobilenet::ProcessOptions().quiet(true).directory(dir));
    if (r.ok()) return {true, "plots: " + dir + "/{loss,f1,map,per_class_ap}.png"};
    return {false, "gnuplot failed on plots.gp (" + by_hand + " to see why)"};
  } catch (const mobilenet::ProcessError& e) {
    if (e.error_number() == ENOENT) return {false, "gnuplot not found (install it and " + by_hand + ")"};
    return {false, std::string(e.what()) + " (" + by_hand + ")"};
  } catch (const std::exception& e) {
    return {false, std::string(e.what()) + ": " + by_hand};
  }
}

}  // namespace coco_train
