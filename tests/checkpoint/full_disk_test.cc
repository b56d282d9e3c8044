// Failed writes: a full disk (a small tmpfs mounted in a private mount namespace, root only) and a
// file size limit (RLIMIT_FSIZE, anyone) make write_checkpoint throw naming the file and the OS
// error, leave no new or temporary directory, and leave the existing checkpoint byte-identical.
// Each scenario runs in a forked child (unshare(CLONE_NEWNS) needs a single-threaded process, and
// the limits must not leak into the test process); the child reports through a pipe and its exit
// code.
#include <gtest/gtest.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>

#include "runtime/check.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace lockstep::testing {
namespace {

constexpr int kSkip = 77;
constexpr int64_t kElems = 393216;  // 1.5 MiB of float32 per large tensor

struct ChildResult {
  int code;             // the child's exit code; -1 when killed or timed out
  std::string message;  // what it wrote to the pipe
};

// Runs body() in a forked child within timeout_s; body returns an exit code and appends to msg.
ChildResult run_in_child(const std::function<int(std::string& msg)>& body, int timeout_s) {
  int fds[2];
  if (::pipe(fds) != 0) return {-1, "pipe failed"};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string msg;
    int code = 1;
    try {
      code = body(msg);
    } catch (const std::exception& e) {
      msg += std::string("unexpected exception: ") + e.what();
    }
    for (size_t done = 0; done < msg.size();) {
      const ssize_t n = ::write(fds[1], msg.data() + done, msg.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildResult r{-1, ""};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) == 0) {
      ::kill(pid, SIGKILL);
      r.message += " [timed out after " + std::to_string(timeout_s) + " s]";
      break;
    }
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // EOF: the child is done
    r.message.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && r.message.find("[timed out") == std::string::npos) r.code = WEXITSTATUS(status);
  return r;
}

// The Error message of write_checkpoint, or "" when it succeeded.
std::string write_error(const std::string& run_dir, const Checkpoint& c) {
  try {
    write_checkpoint(run_dir, c, 0);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// After a failed write of `step`: `kept` is the only entry of checkpoints/ and is byte-identical.
int check_untouched(const std::string& run_dir, const std::string& kept,
                    const std::map<std::string, std::string>& bytes, uint64_t step, std::string& msg) {
  const auto entries = dir_contents(run_dir + "/checkpoints");
  if (entries.size() != 1 || !entries.count(std::filesystem::path(kept).filename().string())) {
    msg += "checkpoints/ after the failed write of step " + std::to_string(step) + " holds:";
    for (const auto& [name, b] : entries) msg += " " + name;
    return 1;
  }
  if (dir_contents(kept) != bytes) {
    msg += kept + " changed";
    return 1;
  }
  return 0;
}

// One checkpoint (two 1.5 MiB files) fits in a 4 MiB tmpfs; a second does not.
int full_disk(const std::string& mnt, std::string& msg) {
  if (::unshare(CLONE_NEWNS) != 0) {
    msg = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
    return kSkip;
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") != 0) {
    msg = std::string("mounting a tmpfs: ") + std::strerror(errno);
    return kSkip;
  }
  const std::string run = mnt + "/run";
  const std::string a = write_checkpoint(run, random_checkpoint(1, 1, kElems), 0);
  const auto a_bytes = dir_contents(a);
  const std::string b = ckpt_dir(run, 2);
  const std::string err = write_error(run, random_checkpoint(2, 2, kElems));
  if (err != "checkpoint " + b + ": writing model.pb: No space left on device") {
    msg = "writing a second checkpoint on a full disk: got \"" + err + "\"";
    return 1;
  }
  if (check_untouched(run, a, a_bytes, 2, msg)) return 1;
  // Rewriting the same step on a full disk must not lose the one already there.
  const std::string err_same = write_error(run, random_checkpoint(1, 3, kElems));
  if (err_same.find("No space left on device") == std::string::npos) {
    msg = "replacing checkpoint 1 on a full disk: got \"" + err_same + "\"";
    return 1;
  }
  if (check_untouched(run, a, a_bytes, 1, msg)) return 1;
  Checkpoint back = read_checkpoint(a);
  return back.model[0].tensor.numel() == kElems ? 0 : 1;
}

TEST(FullDisk, FailedWriteLeavesExistingCheckpointIntact) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs (run as root to test ENOSPC)";
  ScratchDir mnt;
  const ChildResult r = run_in_child([&](std::string& msg) { return full_disk(mnt.path(), msg); }, 20);
  if (r.code == kSkip) GTEST_SKIP() << "cannot mount a private tmpfs here: " << r.message;
  EXPECT_EQ(r.code, 0) << r.message;
}

// RLIMIT_FSIZE makes write() fail with EFBIG partway through model.pb.
int file_too_large(const std::string& run, const std::string& kept, std::string& msg) {
  const auto kept_bytes = dir_contents(kept);
  ::signal(SIGXFSZ, SIG_IGN);
  const rlimit lim{1 << 20, 1 << 20};
  if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) {
    msg = std::string("setrlimit: ") + std::strerror(errno);
    return kSkip;
  }
  const std::string err = write_error(run, random_checkpoint(4, 2, kElems));
  if (err != "checkpoint " + ckpt_dir(run, 4) + ": writing model.pb: File too large") {
    msg = "writing past RLIMIT_FSIZE: got \"" + err + "\"";
    return 1;
  }
  if (check_untouched(run, kept, kept_bytes, 4, msg)) return 1;
  if (write_error(run, random_checkpoint(3, 3, kElems)).empty()) {
    msg = "replacing checkpoint 3 past RLIMIT_FSIZE succeeded";
    return 1;
  }
  return check_untouched(run, kept, kept_bytes, 3, msg);
}

TEST(FailedWrite, LeavesNoNewDirectoryAndTheOldOneIntact) {
  ScratchDir run;
  const std::string kept = write_checkpoint(run.path(), random_checkpoint(3, 1), 0);
  const ChildResult r = run_in_child([&](std::string& msg) { return file_too_large(run.path(), kept, msg); }, 20);
  if (r.code == kSkip) GTEST_SKIP() << r.message;
  EXPECT_EQ(r.code, 0) << r.message;
  expect_same(read_checkpoint(kept), random_checkpoint(3, 1));
}

}  // namespace
}  // namespace lockstep::testing
