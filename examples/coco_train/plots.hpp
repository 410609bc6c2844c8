// Renders the run folder's plots.gp with gnuplot. gnuplot is started from an argument vector
// (posix_spawnp, no shell) inside the run folder, and plots.gp names its files relative to
// it: no character of --out reaches a shell or the gnuplot script.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace coco_train {

/// What render_plots did, as one line for the user.
struct PlotResult {
  bool rendered = false;
  std::string message;
};

inline PlotResult render_plots(const std::string& dir) {
  const std::string by_hand = "run 'gnuplot plots.gp' in " + dir;
  posix_spawn_file_actions_t actions;
  if (posix_spawn_file_actions_init(&actions) != 0) return {false, "cannot start gnuplot: " + by_hand};
  // gnuplot's own chatter (font warnings) would bury the run's summary.
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
  char program[] = "gnuplot", script[] = "plots.gp";
  char* argv[] = {program, script, nullptr};
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, program, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (err == ENOENT) return {false, "gnuplot not found (install it and " + by_hand + ")"};
  if (err != 0) return {false, std::string("cannot start gnuplot: ") + std::strerror(err) + " (" + by_hand + ")"};
  int status = 0;
  while (waitpid(pid, &status, 0) == -1) {
    if (errno != EINTR) return {false, "lost the gnuplot process: " + by_hand};
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    return {true, "plots: " + dir + "/{loss,f1,map,per_class_ap}.png"};
  }
  return {false, "gnuplot failed on plots.gp (" + by_hand + " to see why)"};
}

}  // namespace coco_train
