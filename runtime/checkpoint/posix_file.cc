// POSIX file helpers for checkpoints (see posix_file.h).
#include "runtime/checkpoint/posix_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "runtime/check.h"

namespace lockstep::checkpoint_io {
namespace {

std::string os_error(int err) { return std::strerror(err); }

// Closes on scope exit unless released; a close that reports an error must go through close_checked.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

void close_checked(Fd& fd, const std::string& verb, const std::string& name) {
  // Linux releases the descriptor even when close fails, so it is never retried.
  const int rc = ::close(fd.release());
  LOCKSTEP_FAIL_IF(rc != 0 && errno != EINTR) << verb << " " << name << ": " << os_error(errno);
}

}  // namespace

void write_file_synced(const std::string& dir, const std::string& name, std::string_view bytes) {
  const std::string path = dir + "/" + name;
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  LOCKSTEP_FAIL_IF(fd.get() < 0) << "creating " << name << ": " << os_error(errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    LOCKSTEP_FAIL_IF(n < 0) << "writing " << name << ": " << os_error(errno);
    LOCKSTEP_FAIL_IF(n == 0) << "writing " << name << ": write returned 0 at byte " << done << " of "
                             << bytes.size();
    done += static_cast<size_t>(n);
  }
  LOCKSTEP_FAIL_IF(::fsync(fd.get()) != 0) << "syncing " << name << ": " << os_error(errno);
  close_checked(fd, "closing", name);
}

void sync_dir(const std::string& dir, const std::string& label) {
  Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  LOCKSTEP_FAIL_IF(fd.get() < 0) << "opening " << label << ": " << os_error(errno);
  LOCKSTEP_FAIL_IF(::fsync(fd.get()) != 0) << "syncing " << label << ": " << os_error(errno);
  close_checked(fd, "closing", label);
}

std::optional<std::string> read_file(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it. Reads of a
  // regular file ignore the flag.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (fd.get() < 0 && errno == ENOENT) return std::nullopt;
  LOCKSTEP_FAIL_IF(fd.get() < 0) << "opening " << name << ": " << os_error(errno);
  struct stat st {};
  LOCKSTEP_FAIL_IF(::fstat(fd.get(), &st) != 0) << "stat " << name << ": " << os_error(errno);
  LOCKSTEP_FAIL_IF(!S_ISREG(st.st_mode)) << name << " is " << (S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket") << ", not a regular file";
  std::string bytes(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    LOCKSTEP_FAIL_IF(n < 0) << "reading " << name << ": " << os_error(errno);
    if (n == 0) break;  // shrank while being read: the size check against MANIFEST reports it
    done += static_cast<size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

std::string remove_tree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  return ec ? ec.message() : std::string();
}

}  // namespace lockstep::checkpoint_io
