#pragma once
/// \file io/atomic_file.hpp
/// Whole-file writes that a crash, a full disk or a power cut can never leave half done, and
/// whole-file reads that refuse what is not a regular file. POSIX only.

#include <c10/util/Exception.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

namespace mobilenet {
namespace detail {

/// The system's text for an errno value ("No space left on device"); thread-safe, unlike
/// strerror.
inline std::string errno_text(int err) { return std::system_category().message(err); }

}  // namespace detail

/// Replaces `path` with `bytes` so that readers, and the disk after a power cut, see either
/// the old file or the new one: writes `path`.tmp with checked writes, fsyncs it, renames it
/// over `path` and fsyncs the folder. On any failure the temporary is removed, `path` is left
/// as it was, and c10::Error names the file and the system's reason.
inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  TORCH_CHECK(fd >= 0, "cannot write '", path, "': cannot create '", tmp, "': ",
              detail::errno_text(errno));
  auto fail = [&](const char* step, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    TORCH_CHECK(false, "cannot write '", path, "': ", step, " '", tmp, "' failed: ",
                detail::errno_text(err), " (the previous '", path, "', if any, is unchanged)");
  };
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    // write() returning 0 for a non-empty request never happens on a regular file; treat it
    // as "no space" rather than loop forever.
    if (n <= 0) fail("writing", n < 0 ? errno : ENOSPC);
    done += size_t(n);
  }
  // Without this, a power cut after the rename can leave an empty or partial file under the
  // final name (delayed allocation).
  if (::fsync(fd) != 0) fail("flushing", errno);
  // close() can report deferred write errors (NFS).
  const int closed = ::close(fd);
  fd = -1;
  if (closed != 0) fail("closing", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("renaming", errno);
  // Make the rename itself durable. A folder we may not open, or a file system that cannot
  // fsync one (EINVAL), leaves nothing more to do, and the new file is in place: not an error.
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    const int synced = ::fsync(dfd);
    const int err = errno;
    ::close(dfd);
    TORCH_CHECK(synced == 0 || err == EINVAL || err == ENOTSUP, "wrote '", path,
                "' but flushing its folder '", dir, "' failed: ", detail::errno_text(err));
  }
}

/// The whole content of `path`. Refuses anything but a regular file before reading (a FIFO
/// would block forever); c10::Error names the file and the system's reason.
inline std::string read_file_checked(const std::string& path) {
  // O_NONBLOCK: opening a FIFO with no writer must not block; it is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  TORCH_CHECK(fd >= 0, "cannot read '", path, "': ", detail::errno_text(errno));
  std::string bytes;
  auto fail = [&](const std::string& why) {
    ::close(fd);
    TORCH_CHECK(false, "cannot read '", path, "': ", why);
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(detail::errno_text(errno));
  if (!S_ISREG(st.st_mode)) fail("not a regular file");
  bytes.resize(size_t(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(detail::errno_text(errno));
    if (n == 0) break;  // shrank while we read: keep what is there, the caller checks it
    done += size_t(n);
  }
  bytes.resize(done);
  ::close(fd);
  return bytes;
}

}  // namespace mobilenet
