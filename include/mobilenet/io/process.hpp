// Child programs started from an argument vector (posix_spawnp): no shell ever parses an
// argument, so a path with spaces, quotes or `$(...)` is passed through as it is.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

namespace mobilenet {

/// A child program could not be started (not found, not executable, ...).
class ProcessError : public std::runtime_error {
 public:
  ProcessError(std::string program, int error_number)
      : std::runtime_error("cannot start " + program + ": " + std::strerror(error_number)),
        program_(std::move(program)), error_number_(error_number) {}
  const std::string& program() const { return program_; }
  int error_number() const { return error_number_; }  ///< errno, e.g. ENOENT

 private:
  std::string program_;
  int error_number_;
};

/// How run_process starts a child.
/// Example: `ProcessOptions().capture_stdout(true).unset_env({"OPENBLAS_CORETYPE"})`.
struct ProcessOptions {
  /// Collect the child's stdout into ProcessResult::out (otherwise it is inherited).
  ProcessOptions& capture_stdout(bool v) { capture_stdout_ = v; return *this; }
  /// Send the child's stdout and stderr to /dev/null (ignored with capture_stdout for stdout).
  ProcessOptions& quiet(bool v) { quiet_ = v; return *this; }
  /// The child's working directory (default: ours).
  ProcessOptions& directory(std::string d) { directory_ = std::move(d); return *this; }
  /// Variables removed from the child's environment.
  ProcessOptions& unset_env(std::vector<std::string> names) { unset_ = std::move(names); return *this; }
  /// A variable set (or replaced) in the child's environment.
  ProcessOptions& set_env(const std::string& name, const std::string& value) {
    set_.emplace_back(name, value);
    return *this;
  }

  bool capture_stdout_ = false, quiet_ = false;
  std::string directory_;
  std::vector<std::string> unset_;
  std::vector<std::pair<std::string, std::string>> set_;
};

/// What a finished child did.
struct ProcessResult {
  int exit_code = -1;  ///< the exit status, or -1 when a signal ended it
  std::string out;     ///< its stdout, with ProcessOptions::capture_stdout
  bool ok() const { return exit_code == 0; }
};

/// Runs `argv[0]` (searched on PATH when it has no '/') with arguments `argv` and waits for it.
/// Throws ProcessError when it cannot be started, std::invalid_argument for an empty argv.
inline ProcessResult run_process(const std::vector<std::string>& argv,
                                 const ProcessOptions& options = {}) {
  if (argv.empty()) throw std::invalid_argument("run_process: empty argument vector");
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    bool drop = false;
    for (const auto& u : options.unset_) drop = drop || name == u;
    for (const auto& s : options.set_) drop = drop || name == s.first;
    if (!drop) env.push_back(entry);
  }
  for (const auto& s : options.set_) env.push_back(s.first + "=" + s.second);
  std::vector<char*> envp, args;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;  // posix_spawn takes char*, not const char*
  for (auto& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);

  int fds[2] = {-1, -1};
  if (options.capture_stdout_ && pipe2(fds, O_CLOEXEC) != 0) throw ProcessError(argv[0], errno);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (options.capture_stdout_) posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  if (options.quiet_) {
    if (!options.capture_stdout_) {
      posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  }
  if (!options.directory_.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.directory_.c_str());
  }
  pid_t pid = 0;
  const int err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ProcessResult result;
  if (options.capture_stdout_) {
    close(fds[1]);
    char buf[4096];
    for (ssize_t n; err == 0 && ((n = read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR));) {
      if (n > 0) result.out.append(buf, size_t(n));
    }
    close(fds[0]);
  }
  if (err != 0) throw ProcessError(argv[0], err);
  int status = 0;
  while (waitpid(pid, &status, 0) == -1) {
    if (errno != EINTR) throw std::runtime_error("lost the child process " + argv[0]);
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace mobilenet
