#pragma once
/// \file distributed/launch.hpp
/// launch_local: runs N ranks of a program on this machine, like torchrun's standalone mode.

#include <mobilenet/distributed/detail/distributed_backend.hpp>
#include <mobilenet/distributed/detail/distributed_launch.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace mobilenet {

/// How launch_local starts ranks. Example: `LaunchOptions(2).grace(std::chrono::seconds(10))`
struct LaunchOptions {
  /* implicit */ LaunchOptions(int64_t nproc) : nproc_(nproc) {}
  /// Number of ranks to start on this machine.
  TORCH_ARG(int64_t, nproc);
  /// MASTER_ADDR given to the ranks. Default 127.0.0.1 (loopback only).
  TORCH_ARG(std::string, master_addr) = "127.0.0.1";
  /// MASTER_PORT given to the ranks; 0 (default) picks a free port.
  TORCH_ARG(int64_t, master_port) = 0;
  /// Program to start; empty (default) means this program (/proc/self/exe).
  TORCH_ARG(std::string, executable) = "";
  /// After a rank fails, how long the others get to notice and exit with their own error
  /// before they are sent SIGTERM (then SIGKILL 2 s later). Default 10 s.
  TORCH_ARG(std::chrono::milliseconds, grace) = std::chrono::seconds(10);
  /// Wall-clock limit for the whole job, 0 = none. Default 0.
  TORCH_ARG(std::chrono::milliseconds, job_timeout) = std::chrono::milliseconds(0);
  /// OMP_NUM_THREADS for each rank when the variable is not already set: 0 (default) gives
  /// hardware threads / nproc, at least 1, so ranks do not oversubscribe the cores.
  TORCH_ARG(int64_t, threads_per_rank) = 0;
};

/// A TCP port that is free on `address` now (the OS picks it). Another process could take
/// it before it is used; fine for tests and one-machine launches.
inline int free_port(const std::string& address = "127.0.0.1") {
  return detail::free_tcp_port(address);
}

/// Runs `options.nproc()` copies of a program (this one by default) with arguments `args`
/// (without argv[0]) and RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and
/// MASTER_PORT set, and waits for all of them. If one fails, the others get `grace` to exit
/// on their own, then are terminated. Returns when every rank exited with status 0; throws
/// DistributedError describing each rank's exit otherwise. The ranks inherit stdout/stderr.
/// Example (in main): `if (nproc > 1 && !std::getenv("RANK")) { launch_local(nproc, args); return 0; }`
inline void launch_local(const LaunchOptions& options, const std::vector<std::string>& args) {
  using Clock = std::chrono::steady_clock;
  const int64_t n = options.nproc();
  TORCH_CHECK(n >= 1, "launch_local: nproc must be >= 1, got ", n);
  const int64_t port =
      options.master_port() > 0 ? options.master_port() : free_port(options.master_addr());
  TORCH_CHECK(port <= 65535, "launch_local: master_port must be <= 65535, got ", port);
  const std::string exe =
      options.executable().empty() ? detail::self_executable() : options.executable();
  const bool threads_set = detail::getenv_string("OMP_NUM_THREADS").has_value();
  const int64_t hardware = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t threads =
      options.threads_per_rank() > 0 ? options.threads_per_rank() : std::max<int64_t>(1, hardware / n);
  const auto base = detail::environment_without(
      {"RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"});
  std::vector<std::string> argv{exe};
  argv.insert(argv.end(), args.begin(), args.end());

  std::vector<pid_t> pids;
  std::vector<int> status(static_cast<size_t>(n), 0);
  std::vector<bool> running;
  auto signal_running = [&](int sig) {
    for (size_t r = 0; r < pids.size(); ++r) {
      if (running[r]) {
        ::kill(pids[r], sig);
      }
    }
  };
  for (int64_t r = 0; r < n; ++r) {
    auto env = base;
    env.push_back(detail::dist_str("RANK=", r));
    env.push_back(detail::dist_str("LOCAL_RANK=", r));
    env.push_back(detail::dist_str("WORLD_SIZE=", n));
    env.push_back(detail::dist_str("LOCAL_WORLD_SIZE=", n));
    env.push_back("MASTER_ADDR=" + options.master_addr());
    env.push_back(detail::dist_str("MASTER_PORT=", port));
    if (!threads_set || options.threads_per_rank() > 0) {
      env.push_back(detail::dist_str("OMP_NUM_THREADS=", threads));
    }
    try {
      pids.push_back(detail::spawn_process(exe, argv, env));
      running.push_back(true);
    } catch (...) {
      signal_running(SIGKILL);
      for (auto pid : pids) {
        ::waitpid(pid, nullptr, 0);
      }
      throw;
    }
  }

  int64_t first_failure = -1;
  bool timed_out = false;
  const auto start = Clock::now();
  Clock::time_point failed_at{}, terminated_at{};
  bool terminated = false, killed = false;
  size_t alive = pids.size();
  while (alive > 0) {
    for (size_t r = 0; r < pids.size(); ++r) {
      if (!running[r]) {
        continue;
      }
      int st = 0;
      const pid_t done = ::waitpid(pids[r], &st, WNOHANG);
      if (done == pids[r] || (done < 0 && errno == ECHILD)) {
        running[r] = false;
        status[r] = done == pids[r] ? st : 0;
        --alive;
        const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        if (!ok && first_failure < 0) {
          first_failure = static_cast<int64_t>(r);
          failed_at = Clock::now();
        }
      }
    }
    const auto now = Clock::now();
    if (!timed_out && options.job_timeout().count() > 0 && now - start > options.job_timeout() &&
        alive > 0) {
      timed_out = true;
      if (first_failure < 0) {
        failed_at = now - options.grace();  // terminate at once
      }
    }
    const bool failing = first_failure >= 0 || timed_out;
    if (failing && !terminated && alive > 0 && now - failed_at >= options.grace()) {
      signal_running(SIGTERM);
      terminated = true;
      terminated_at = now;
    }
    if (terminated && !killed && alive > 0 && now - terminated_at > std::chrono::seconds(2)) {
      signal_running(SIGKILL);
      killed = true;
    }
    if (alive > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (first_failure < 0 && !timed_out) {
    return;
  }
  std::string report = timed_out ? detail::dist_str("launch_local: the job exceeded its ",
                                                    detail::seconds(options.job_timeout()),
                                                    " s limit")
                                 : detail::dist_str("launch_local: rank ", first_failure,
                                                    " of ", n, " failed first");
  for (int64_t r = 0; r < n; ++r) {
    report += detail::dist_str("; rank ", r, " ", detail::describe_wait_status(status[r]));
  }
  throw DistributedError(report);
}

/// launch_local with this program's own arguments (argv[1..]).
inline void launch_local(const LaunchOptions& options, int argc, char** argv) {
  launch_local(options, std::vector<std::string>(argv + 1, argv + argc));
}

}  // namespace mobilenet
