#pragma once
/// \file distributed/detail/distributed_launch.hpp
/// POSIX process plumbing for mobilenet::launch_local: free ports, spawning ranks, reaping.

#include <mobilenet/distributed/detail/distributed_backend.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;  // POSIX: declared by no standard header

namespace mobilenet {
namespace detail {

/// Closes a file descriptor at scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

/// A TCP port that was free a moment ago on `address` (IPv4), found by binding port 0.
inline int free_tcp_port(const std::string& address) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    throw DistributedError(dist_str("free_port: socket() failed: ", std::strerror(errno)));
  }
  FdCloser closer(fd);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  const std::string ip = address == "localhost" ? "127.0.0.1" : address;
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    throw DistributedError(dist_str("free_port: '", address, "' is not an IPv4 address"));
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw DistributedError(
        dist_str("free_port: cannot bind to ", address, ": ", std::strerror(errno)));
  }
  socklen_t length = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    throw DistributedError(dist_str("free_port: getsockname failed: ", std::strerror(errno)));
  }
  return ntohs(addr.sin_port);
}

/// Absolute path of the running executable (Linux: /proc/self/exe).
inline std::string self_executable() {
  std::vector<char> buffer(4096);
  const ssize_t n = ::readlink("/proc/self/exe", buffer.data(), buffer.size() - 1);
  if (n <= 0) {
    throw DistributedError(
        "launch_local: cannot find this program's path (/proc/self/exe); set "
        "LaunchOptions::executable");
  }
  return std::string(buffer.data(), static_cast<size_t>(n));
}

/// NULL-terminated array of C strings viewing `strings` (which must outlive it).
inline std::vector<char*> c_string_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) {
    out.push_back(s.data());
  }
  out.push_back(nullptr);
  return out;
}

/// Starts `executable` with `argv` and `envp` in a child process and returns its pid. The
/// child gets SIGTERM if this process dies, so a crashed launcher leaves no orphan ranks.
inline pid_t spawn_process(const std::string& executable, std::vector<std::string> argv,
                           std::vector<std::string> envp) {
  // Everything is prepared before fork(): a forked child of a multi-threaded program may
  // only make async-signal-safe calls before exec.
  auto argv_c = c_string_array(argv);
  auto envp_c = c_string_array(envp);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    throw DistributedError(dist_str("launch_local: fork failed: ", std::strerror(errno)));
  }
  if (pid == 0) {
#if defined(__linux__)
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) {
      ::_exit(127);  // the launcher died between fork and prctl
    }
#else
    (void)parent;
#endif
    ::execve(executable.c_str(), argv_c.data(), envp_c.data());
    ::_exit(127);  // exec failed; the launcher reports exit status 127
  }
  return pid;
}

/// "exited with status 1", "was killed by signal 9 (Killed)".
inline std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) {
    return dist_str("exited with status ", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return dist_str("was killed by signal ", WTERMSIG(status), " (", ::strsignal(WTERMSIG(status)),
                    ")");
  }
  return dist_str("ended with wait status ", status);
}

/// The environment of this process without the variables in `drop` ("NAME").
inline std::vector<std::string> environment_without(const std::vector<std::string>& drop) {
  std::vector<std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string item(*entry);
    const std::string name = item.substr(0, item.find('='));
    bool keep = true;
    for (const auto& d : drop) {
      keep = keep && name != d;
    }
    if (keep) {
      out.push_back(item);
    }
  }
  return out;
}

}  // namespace detail
}  // namespace mobilenet
