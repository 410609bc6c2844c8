#pragma once
// Shared by the benchmark programs: clocks and running the Python baseline.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

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

/// Runs a shell command and returns what it printed on stdout.
inline std::string run(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  TORCH_CHECK(pipe, "cannot run ", cmd);
  char buf[256];
  while (fgets(buf, sizeof buf, pipe.get())) out += buf;
  return out;
}

/// The number after "key " in a baseline's output.
inline double field(const std::string& text, const std::string& key) {
  auto at = text.find(key + " ");
  TORCH_CHECK(at != std::string::npos, "Python baseline printed no '", key, "':\n", text);
  return std::stod(text.substr(at + key.size() + 1));
}

}  // namespace bench
