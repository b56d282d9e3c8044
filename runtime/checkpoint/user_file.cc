// The rules for user-named input and output files (see user_file.h).
#include "runtime/checkpoint/user_file.h"

#include <sys/stat.h>

#include <filesystem>
#include <system_error>

#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint_format.h"

namespace lockstep::checkpoint_io {
namespace {

namespace fs = std::filesystem;

// The names a run directory (launcher/launch/run_dir.h) keeps for itself, besides events.out.tfevents.*.
constexpr const char* kOwnFiles[] = {"metrics.jsonl", "token", "worker_secret", ".lock", "job.textproto",
                                     "coordinator.json", "result.json", "trace.json", "mpirun.log",
                                     "report.html"};
constexpr const char* kOwnDirs[] = {"checkpoints", "trace"};

std::string kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

fs::path canonical_of(const std::string& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? fs::absolute(p).lexically_normal() : c;
}

bool is_run_dir(const fs::path& d) {
  std::error_code ec;
  for (const char* f : {".lock", "job.textproto", "token", "coordinator.json", "result.json"})
    if (fs::exists(d / f, ec)) return true;
  return fs::is_directory(d / "checkpoints", ec) || fs::exists(d / "metrics.jsonl", ec);
}

}  // namespace

bool is_kept_trace(const std::string& name) {
  if (!name.starts_with("trace.") || !name.ends_with(".json") || name.size() <= 11) return false;
  for (size_t i = 6; i + 5 < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return false;
  return true;
}

std::string non_regular_kind(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return S_ISREG(st.st_mode) ? "" : kind_of(st.st_mode);
}

void check_input_file(const std::string& label, const std::string& path) {
  const std::string kind = non_regular_kind(path);
  LOCKSTEP_FAIL_IF(!kind.empty()) << label << path << ": is " << kind << ", not a regular file";
}

void check_output_file(const std::string& label, const std::string& path, const std::string& allowed_own,
                       const std::vector<std::string>& extra_own) {
  const std::string kind = non_regular_kind(path);
  LOCKSTEP_FAIL_IF(!kind.empty()) << label << path << ": is " << kind << "; give the name of a regular file to write";
  const fs::path target = canonical_of(path);
  std::error_code ec;
  const fs::path parent = target.parent_path();
  LOCKSTEP_FAIL_IF(!fs::is_directory(parent, ec)) << label << path << ": no such directory: " << parent.string();
  for (const std::string& own : extra_own)
    LOCKSTEP_FAIL_IF(!own.empty() && target == canonical_of(own))
        << label << path << ": is the run's own " << fs::path(own).filename().string() << "; give another file";
  // A checkpoint's own files, wherever the checkpoint lies.
  LOCKSTEP_FAIL_IF(fs::exists(parent / checkpoint_format::kManifestFile, ec))
      << label << path << ": is inside the checkpoint " << parent.string() << "; give a file outside it";
  // A run directory's own files and folders, at any depth above the target.
  for (fs::path dir = parent; !dir.empty(); dir = dir.parent_path()) {
    if (is_run_dir(dir)) {
      const fs::path rel = target.lexically_relative(dir);
      const std::string first = rel.begin()->string();
      const bool nested = std::distance(rel.begin(), rel.end()) > 1;
      if (nested) {
        for (const char* d : kOwnDirs)
          LOCKSTEP_FAIL_IF(first == d) << label << path << ": is inside the run directory's " << d << "/ ("
                                       << dir.string() << "); give a file outside it";
      } else if (first != allowed_own) {
        bool own = first.rfind("events.out.tfevents.", 0) == 0 || is_kept_trace(first) ||
                   (first.size() > 6 && first.ends_with(".jsonl") && fs::exists(target, ec));
        for (const char* f : kOwnFiles) own = own || first == f;
        LOCKSTEP_FAIL_IF(own) << label << path << ": is the run's own " << first << " (run directory "
                              << dir.string() << "); give another file";
      }
    }
    if (dir == dir.root_path()) break;
  }
}

}  // namespace lockstep::checkpoint_io
