// write_checkpoint: files into a temporary directory, each fsynced, MANIFEST last; the directory
// fsynced, renamed into place and the parent fsynced; then retention. A failure at any point
// removes the temporary directory and leaves every existing checkpoint as it was.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/checkpoint_format.h"
#include "runtime/checkpoint/posix_file.h"

namespace lockstep {
namespace {

namespace fmt = checkpoint_format;
namespace io = checkpoint_io;

std::string os_error() { return std::strerror(errno); }

std::string tmp_path(const std::string& dir) { return dir + ".tmp-" + std::to_string(::getpid()); }

// The checkpoints directory, created (and its creation made durable) when missing.
void ensure_root(const std::string& run_dir, const std::string& root) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  LOCKSTEP_FAIL_IF(ec) << "creating the run directory: " << ec.message();
  if (::mkdir(root.c_str(), 0755) == 0) {
    io::sync_dir(run_dir, "the run directory");
  } else {
    LOCKSTEP_FAIL_IF(errno != EEXIST) << "creating the checkpoints directory: " << os_error();
  }
}

// Removes *.tmp-<pid> directories whose writer is gone (killed mid-write), and our own leftovers.
void remove_stale_tmp(const std::string& root) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root, ec)) {
    const std::string name = e.path().filename().string();
    const size_t at = name.rfind(".tmp-");
    if (!name.starts_with("ckpt-") || at == std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::atol(name.c_str() + at + 5));
    const bool alive = pid > 0 && pid != ::getpid() && (::kill(pid, 0) == 0 || errno == EPERM);
    if (!alive) io::remove_tree(e.path().string());
  }
}

void write_files(const std::string& tmp, const Checkpoint& c) {
  proto::Manifest manifest;
  manifest.set_step(c.state.step());
  auto put = [&](const char* file, const std::string& bytes) {
    io::write_file_synced(tmp, file, bytes);
    proto::ManifestEntry* e = manifest.add_files();
    e->set_file(file);
    e->set_size(bytes.size());
    e->set_crc32(fmt::crc32_of(bytes));
  };
  std::string state;
  LOCKSTEP_FAIL_IF(!c.state.SerializeToString(&state)) << fmt::kStateFile << ": cannot serialize";
  put(fmt::kStateFile, state);
  put(fmt::kModelFile, fmt::encode_tensors(c.model, fmt::kModelFile));
  put(fmt::kOptimizerFile, fmt::encode_tensors(c.optimizer, fmt::kOptimizerFile));
  if (!c.rank_buffers.empty()) put(fmt::kRankBuffersFile, fmt::encode_tensors(c.rank_buffers, fmt::kRankBuffersFile));
  io::write_file_synced(tmp, fmt::kManifestFile, fmt::encode_manifest(manifest));
  io::sync_dir(tmp, "the temporary directory");
}

// Moves the complete `tmp` to `dir` durably. An existing checkpoint at `dir` is swapped out
// atomically (RENAME_EXCHANGE; renamed aside first where the filesystem lacks it); the path now
// holding it is returned for removal ("" when there was none). On failure all is put back.
std::string install(const std::string& root, const std::string& tmp, const std::string& dir) {
  std::string old;
  bool exchanged = false;
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    LOCKSTEP_FAIL_IF(errno != EEXIST && errno != ENOTEMPTY) << "renaming into place: " << os_error();
    if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
      exchanged = true;
      old = tmp;
    } else {
      LOCKSTEP_FAIL_IF(errno != EINVAL && errno != ENOSYS)
          << "replacing the existing checkpoint: " << os_error();
      old = dir + ".old" + tmp.substr(dir.size());
      LOCKSTEP_FAIL_IF(::rename(dir.c_str(), old.c_str()) != 0)
          << "moving the existing checkpoint aside: " << os_error();
      if (::rename(tmp.c_str(), dir.c_str()) != 0) {
        const std::string err = os_error();
        ::rename(old.c_str(), dir.c_str());
        LOCKSTEP_FAIL_IF(true) << "renaming into place: " << err;
      }
    }
  }
  try {
    io::sync_dir(root, "the checkpoints directory");
  } catch (const Error&) {
    if (exchanged) {
      ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE);
    } else {
      ::rename(dir.c_str(), tmp.c_str());
      if (!old.empty()) ::rename(old.c_str(), dir.c_str());
    }
    throw;
  }
  return old;
}

// Keeps `written` and the newest keep-1 other checkpoints. Each removed one is renamed to a
// temporary name first, so a crash mid-removal never leaves a half-deleted ckpt-<step>.
void prune(const std::string& run_dir, const std::string& written, int keep) {
  if (keep <= 0) return;
  int kept = 1;
  for (const std::string& dir : list_checkpoints(run_dir)) {
    if (dir == written || kept++ < keep) continue;
    const std::string doomed = tmp_path(dir);
    LOCKSTEP_FAIL_IF(::rename(dir.c_str(), doomed.c_str()) != 0)
        << "checkpoint " << written << " is complete, but removing the old checkpoint " << dir
        << " failed: " << os_error();
    const std::string err = io::remove_tree(doomed);
    LOCKSTEP_FAIL_IF(!err.empty()) << "checkpoint " << written << " is complete, but removing "
                                   << doomed << " failed: " << err;
  }
}

}  // namespace

std::string write_checkpoint(const std::string& run_dir, const Checkpoint& c, int keep) {
  const std::string root = run_dir + "/checkpoints";
  const std::string dir = root + "/" + fmt::dir_name(c.state.step());
  const std::string tmp = tmp_path(dir);
  std::string old;
  try {
    ensure_root(run_dir, root);
    remove_stale_tmp(root);
    LOCKSTEP_FAIL_IF(::mkdir(tmp.c_str(), 0755) != 0)
        << "creating the temporary directory " << tmp << ": " << os_error();
    write_files(tmp, c);
    old = install(root, tmp, dir);
  } catch (const Error& e) {
    io::remove_tree(tmp);
    throw Error("checkpoint " + dir + ": " + e.what());
  }
  if (!old.empty()) {
    const std::string err = io::remove_tree(old);
    LOCKSTEP_FAIL_IF(!err.empty()) << "checkpoint " << dir << " is complete, but removing the one it "
                                   << "replaced (" << old << ") failed: " << err;
  }
  prune(run_dir, dir, keep);
  return dir;
}

}  // namespace lockstep
