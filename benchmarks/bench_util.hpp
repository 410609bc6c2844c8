#pragma once
// The shared harness of the benchmark programs: an honest C++-versus-Python comparison.
//
//  - The Python side runs in a child process whose environment lacks OPENBLAS_CORETYPE and
//    OPENBLAS_L2_SIZE (with both set, PIL + torchvision processes on this kind of machine often
//    fall into a slow mode; see issue 10). Only the child's environment changes.
//  - Measurements interleave, C++ then Python, round after round (A B A B A B), so a burst of
//    load hits both sides; medians are reported with each side's best, which shows whether
//    Python ran in its fast mode.
//  - Both sides use the same thread count: the child reports torch's, and the harness refuses
//    to compare when it differs from what the C++ side asked for.
//  - The run refuses to start when the 1-minute load average exceeds 0.5 (--max-load changes
//    the threshold, which is printed), unless --allow-load is given; then every result line
//    says UNDER LOAD.
//  - The environment (CPU, cores, versions, relevant variables, date) is printed first.
//
// No LibTorch here: bench_metrics uses it without LibTorch. Errors are std::runtime_error.
#include <mobilenet/io/allocator.hpp>
#include <mobilenet/io/process.hpp>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifndef MOBILENET_PYTHON
#define MOBILENET_PYTHON "/usr/bin/python3"
#endif

namespace bench {

/// Wall-clock seconds.
inline double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// CPU seconds of this process: steadier than wall time on a shared machine.
inline double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

/// Variables the Python child must not inherit (issue 10: they put PIL + torchvision into a
/// slow mode). Removed from the child only; tests and CI keep them.
inline const std::vector<std::string>& python_removed_env() {
  static const std::vector<std::string> names{"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"};
  return names;
}

/// Both sides of every benchmark run with the allocator setting of <mobilenet/io/allocator.hpp>:
/// the harness applies it to this process (Harness::start) and to the Python child's
/// environment, since without it glibc's fresh mmap per large activation costs the Python side
/// page faults the C++ side does not pay. A benchmark may turn it off for both
/// (bench_train_step --no-allocator-tuning).
inline bool& heap_allocator() {
  static bool on = true;
  return on;
}

/// Runs a program from an argument vector (no shell) and returns what it printed on stdout;
/// throws when it cannot start or exits with an error.
inline std::string run(const std::vector<std::string>& argv,
                       const mobilenet::ProcessOptions& options = {}) {
  mobilenet::ProcessOptions o = options;
  const auto r = mobilenet::run_process(argv, o.capture_stdout(true));
  if (!r.ok()) {
    throw std::runtime_error(argv[0] + " exited with " + std::to_string(r.exit_code) + "; it printed:\n" + r.out);
  }
  return r.out;
}

/// Runs a Python script once with the stack's reference Python, without the variables of
/// python_removed_env().
inline std::string run_python(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv{MOBILENET_PYTHON, script};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, mobilenet::ProcessOptions().unset_env(python_removed_env()));
}

/// The number after "key " in a baseline's output.
inline double field(const std::string& text, const std::string& key) {
  auto at = text.find(key + " ");
  if (at == std::string::npos) {
    throw std::runtime_error("Python baseline printed no '" + key + "':\n" + text);
  }
  return std::stod(text.substr(at + key.size() + 1));
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Median milliseconds of `runs` calls of `fn` after `warmup` untimed ones, on `clock`
/// (now: wall, cpu_now: this process's CPU time).
template <typename Fn>
double median_ms(Fn&& fn, int64_t warmup, int64_t runs, double (*clock)() = now) {
  for (int64_t i = 0; i < warmup; ++i) fn();
  std::vector<double> times;
  for (int64_t i = 0; i < runs; ++i) {
    const double t = clock();
    fn();
    times.push_back(1000 * (clock() - t));
  }
  return median(times);
}

/// Runs a benchmark's main body and turns an exception into a message and exit status 1.
template <typename Body>
int guarded(const char* program, Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  }
}

/// --rounds, --allow-load and --max-load, shared by every benchmark.
struct HarnessOptions {
  /// Interleaved C++/Python rounds; the medians over them are reported.
  int rounds = 3;
  /// Run even when the machine is busy; every result line is then marked UNDER LOAD.
  bool allow_load = false;
  /// Highest 1-minute load average at which a run counts as quiet. Default 0.5 (the 2-core
  /// development machine); on a fresh many-core machine the average still counts a build
  /// that just ended for a minute or more, so scripts/device_check.sh raises it.
  double max_load = 0.5;
};

/// Adds --rounds and --allow-load to a CLI11 app (a template, so this header needs no CLI11).
template <typename App>
void add_harness_flags(App& app, HarnessOptions& o) {
  app.add_option("--rounds", o.rounds, "interleaved C++/Python rounds (medians reported)")
      ->capture_default_str();
  app.add_flag("--allow-load", o.allow_load,
               "run although the 1-minute load average exceeds --max-load (results marked UNDER LOAD)");
  app.add_option("--max-load", o.max_load,
                 "highest 1-minute load average that counts as a quiet machine (printed)")
      ->capture_default_str();
}

/// Reads --rounds N, --allow-load and --max-load X from argv, for programs without CLI11.
/// Unknown arguments are returned in order.
inline std::vector<std::string> parse_harness_flags(int argc, char** argv, HarnessOptions& o) {
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--allow-load") {
      o.allow_load = true;
    } else if (a == "--rounds" && i + 1 < argc) {
      o.rounds = std::stoi(argv[++i]);
    } else if (a == "--max-load" && i + 1 < argc) {
      o.max_load = std::stod(argv[++i]);
    } else {
      rest.push_back(a);
    }
  }
  return rest;
}

inline double load_average_1min() {
  double load[1] = {0};
  return getloadavg(load, 1) == 1 ? load[0] : -1;
}

inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

/// A Python process that serves measurement rounds: the harness writes one command line per
/// round ("NAME ARG ..."), the child (benchmarks/bench_child.py) runs it and answers with
/// "key value" lines and a line "end". It starts with its environment cleaned (see
/// python_removed_env) and OMP/MKL/OpenBLAS thread variables set to `threads`, and first
/// reports its versions and torch's thread count.
class PythonChild {
 public:
  /// `python`: the interpreter (default: the stack's reference Python).
  PythonChild(const std::string& script, const std::vector<std::string>& args, int threads,
              std::string python = MOBILENET_PYTHON) {
    // A child that dies must surface as an error from round(), not kill us on the next write.
    signal(SIGPIPE, SIG_IGN);
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(to_child[0], 0);
      dup2(from_child[1], 1);
      close(to_child[0]);
      close(to_child[1]);
      close(from_child[0]);
      close(from_child[1]);
      for (const auto& name : python_removed_env()) unsetenv(name.c_str());
      if (heap_allocator()) {
        for (const auto& [name, value] : mobilenet::keep_activations_on_heap_env()) {
          setenv(name.c_str(), value.c_str(), 1);
        }
      }
      const std::string t = std::to_string(threads);
      for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
        setenv(name, t.c_str(), 1);
      }
      setenv("MOBILENET_BENCH_THREADS", t.c_str(), 1);
      std::vector<std::string> all{python, script};
      all.insert(all.end(), args.begin(), args.end());
      std::vector<char*> argv;
      for (auto& a : all) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      std::perror(("bench: exec " + python).c_str());
      _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    in_ = fdopen(from_child[0], "r");
    out_ = fdopen(to_child[1], "w");
    info_ = read_answer("start-up");
  }
  PythonChild(const PythonChild&) = delete;
  PythonChild& operator=(const PythonChild&) = delete;
  ~PythonChild() {
    if (out_) {
      std::fputs("quit\n", out_);
      std::fclose(out_);
    }
    if (in_) std::fclose(in_);
    if (pid_ > 0) waitpid(pid_, nullptr, 0);
  }

  /// What the child reported at start-up (python, torch, torchvision, threads, ...).
  const std::map<std::string, std::string>& info() const { return info_; }

  /// Runs one round and returns the child's "key value" numbers.
  std::map<std::string, double> round(const std::string& command) {
    if (std::fputs((command + "\n").c_str(), out_) < 0 || std::fflush(out_) != 0) {
      throw std::runtime_error("the Python side is gone (could not send '" + command + "')");
    }
    std::map<std::string, double> numbers;
    for (const auto& [k, v] : read_answer(command)) numbers[k] = std::stod(v);
    return numbers;
  }

 private:
  std::map<std::string, std::string> read_answer(const std::string& what) {
    std::map<std::string, std::string> answer;
    char buf[4096];
    std::string all;
    while (std::fgets(buf, sizeof buf, in_)) {
      std::string line(buf);
      while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
      if (line == "end") return answer;
      all += line + "\n";
      const auto space = line.find(' ');
      if (space != std::string::npos) answer[line.substr(0, space)] = line.substr(space + 1);
    }
    throw std::runtime_error("the Python side ended during '" + what + "'; it printed:\n" + all);
  }

  pid_t pid_ = -1;
  FILE* in_ = nullptr;
  FILE* out_ = nullptr;
  std::map<std::string, std::string> info_;
};

/// One measured quantity on both sides, one sample per round.
struct Series {
  Series(std::string name, std::string unit, bool higher_is_better, std::string goal = "")
      : name(std::move(name)), unit(std::move(unit)), higher_is_better(higher_is_better),
        goal(std::move(goal)) {}
  std::string name;
  std::string unit;
  bool higher_is_better;         ///< throughput (true) or latency (false)
  std::string goal;              ///< e.g. ">= 1.1x", shown beside the ratio
  std::string other = "Python";  ///< what `py` holds, in the report (e.g. "floor")
  std::vector<double> cpp, py;

  double best(const std::vector<double>& v) const {
    if (v.empty()) return 0;
    return higher_is_better ? *std::max_element(v.begin(), v.end())
                            : *std::min_element(v.begin(), v.end());
  }
  /// C++ / Python of the medians.
  double ratio() const { return median(cpp) / median(py); }
};

/// Load check, environment print-out, thread parity and the report. One per program.
class Harness {
 public:
  Harness(std::string title, HarnessOptions options)
      : title_(std::move(title)), options_(options) {}

  const HarnessOptions& options() const { return options_; }
  bool under_load() const { return under_load_; }
  /// "  UNDER LOAD" when the run is not quiet, else "".
  std::string mark() const { return under_load_ ? "  UNDER LOAD" : ""; }

  /// Checks the load average, then prints the title and the environment. Returns false (the
  /// program should exit with a non-zero status) when the machine is busy and --allow-load
  /// was not given. `settings` are the benchmark's own (threads, batch, ...), printed too.
  bool start(const std::vector<std::pair<std::string, std::string>>& settings) {
    const double load = load_average_1min();
    under_load_ = load > options_.max_load;
    if (under_load_ && !options_.allow_load) {
      std::fprintf(stderr,
                   "%s: refusing to run: the 1-minute load average is %.2f (> %.2f), so the "
                   "timings would measure the other processes. Run on a quiet machine, or "
                   "pass --allow-load to run anyway with every result marked UNDER LOAD "
                   "(--max-load sets the threshold).\n",
                   title_.c_str(), load, options_.max_load);
      return false;
    }
    if (options_.rounds < 1) throw std::runtime_error("--rounds must be >= 1");
    std::time_t t = std::time(nullptr);
    char date[64];
    std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&t));
    cpu_set_t set;
    CPU_ZERO(&set);
    const int usable = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : -1;
    std::printf("== %s ==\n", title_.c_str());
    std::printf("date          %s\n", date);
    std::printf("cpu           %s, %u hardware threads, %d usable by this process\n",
                cpu_model().c_str(), std::thread::hardware_concurrency(), usable);
    std::printf("load (1 min)  %.2f at start, threshold %.2f%s%s\n", load, options_.max_load,
                options_.max_load != HarnessOptions().max_load ? " (set by --max-load)" : "",
                under_load_ ? "  -> UNDER LOAD (--allow-load): timings are not quiet-machine "
                              "figures" : " (quiet)");
#ifdef TORCH_VERSION
    std::printf("LibTorch      %s\n", TORCH_VERSION);
#endif
    std::printf("env           ");
    for (const char* name : {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                             "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_PRELOAD",
                             "MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_"}) {
      const char* v = std::getenv(name);
      std::printf("%s=%s ", name, v ? v : "(unset)");
    }
    std::printf("\n              (the Python child runs without");
    for (const auto& name : python_removed_env()) std::printf(" %s", name.c_str());
    std::printf(")\n");
    if (heap_allocator()) {
      mobilenet::keep_activations_on_heap();
      std::printf("allocator     both sides: glibc large blocks on the heap, never trimmed, 2 arenas "
                  "(mallopt here; the child's env:");
      for (const auto& [name, value] : mobilenet::keep_activations_on_heap_env()) {
        std::printf(" %s=%s", name.c_str(), value.c_str());
      }
      std::printf(")\n");
    } else {
      std::printf("allocator     both sides: glibc defaults\n");
    }
    std::printf("rounds        %d, interleaved C++ / Python; medians reported\n",
                options_.rounds);
    for (const auto& [k, v] : settings) std::printf("%-13s %s\n", k.c_str(), v.c_str());
    std::fflush(stdout);
    return true;
  }

  /// Prints the child's versions and checks that it uses `threads` intra-op threads.
  void check_child(const PythonChild& child, int threads) {
    const auto& info = child.info();
    auto get = [&](const std::string& k) {
      auto it = info.find(k);
      return it == info.end() ? std::string("?") : it->second;
    };
    std::printf("Python        %s, torch %s, torchvision %s, %s threads; removed env: %s\n",
                get("python").c_str(), get("torch").c_str(), get("torchvision").c_str(),
                get("threads").c_str(), get("removed_env_absent").c_str());
    std::fflush(stdout);
    if (get("threads") != std::to_string(threads)) {
      throw std::runtime_error("thread counts differ: C++ uses " + std::to_string(threads) +
                               ", the Python side " + get("threads"));
    }
    if (get("removed_env_absent") != "yes") {
      throw std::runtime_error("the Python side still sees OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE");
    }
  }

  /// Prints a line before the rounds start and one marker per round (progress on stderr).
  void round_started(int r) const {
    std::fprintf(stderr, "[%s] round %d/%d\n", title_.c_str(), r + 1, options_.rounds);
  }

  /// One result line: medians, bests, the ratio of the medians and the goal.
  void report(const Series& s) const {
    std::printf("  %-34s C++ %9.2f %-5s (best %9.2f)  %s %9.2f (best %9.2f)  "
                "C++/%s %.2fx%s%s%s%s%s\n",
                s.name.c_str(), median(s.cpp), s.unit.c_str(), s.best(s.cpp), s.other.c_str(),
                median(s.py), s.best(s.py), s.other.c_str(), s.ratio(), speedup(s).c_str(), s.goal.empty() ? "" : " (goal ",
                s.goal.c_str(), s.goal.empty() ? "" : ")", mark().c_str());
    std::fflush(stdout);
  }

  /// For times and sizes: " (Python/C++ N.Nx)", easier to read than a small ratio.
  static std::string speedup(const Series& s) {
    if (s.higher_is_better || s.ratio() <= 0) return "";
    char buf[64];
    std::snprintf(buf, sizeof buf, " (Python/C++ %.1fx)", 1 / s.ratio());
    return buf;
  }

  /// Prints the per-round values of a series (to judge the spread).
  void report_rounds(const Series& s) const {
    std::printf("  %-34s C++:", s.name.c_str());
    for (double v : s.cpp) std::printf(" %.2f", v);
    std::printf("  %s:", s.other.c_str());
    for (double v : s.py) std::printf(" %.2f", v);
    std::printf("%s\n", mark().c_str());
  }

 private:
  std::string title_;
  HarnessOptions options_;
  bool under_load_ = false;
};

}  // namespace bench
