// Run directory ownership: name check, flock, refusal of another job's leftovers (see run_dir.h).
#include "launcher/launch/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <google/protobuf/text_format.h>

#include "launcher/quoted.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/user_file.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxNameBytes = 128;

bool safe_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-' || c == '+';
}

std::string holder_line(const std::string& job_name) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::time_t now = std::time(nullptr);
  char when[64] = {};
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));
  std::ostringstream os;
  os << "job " << job_name << ", pid " << ::getpid() << " on " << host << ", since " << when;
  return os.str();
}

size_t line_count(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

}  // namespace

std::string checked_job_name(const proto::JobSpec& job, const std::string& job_path) {
  const std::string name = !job.name().empty() ? job.name() : fs::path(job_path).stem().string();
  const char* field = !job.name().empty() ? "name" : "name (unset; taken from the file name)";
  auto fail = [&](const std::string& why) {
    throw Error(job_path + ": " + field + ": " + quoted(name) + " " + why +
                "; a job name becomes its run directory, so it must be one path component of letters, digits, "
                "'.', '_', '-' or '+', not starting with '.'");
  };
  if (name.empty()) fail("is empty");
  if (name.size() > kMaxNameBytes) fail("is " + std::to_string(name.size()) + " bytes long (at most 128)");
  if (name[0] == '.') fail("starts with '.'");
  for (unsigned char c : name)
    if (!safe_char(c)) fail("holds the character " + quoted(std::string(1, static_cast<char>(c))));
  return name;
}

std::string checked_metrics_file(const proto::JobSpec& job, const std::string& job_path) {
  const std::string& m = job.metrics_file();
  if (m.empty()) return "metrics.jsonl";
  auto fail = [&](const std::string& why) {
    throw Error(job_path + ": metrics_file: " + quoted(m) + " " + why +
                "; a launched job's metrics file is a file name inside its run directory");
  };
  if (m.size() > kMaxNameBytes) fail("is longer than 128 bytes");
  if (m[0] == '.') fail("starts with '.'");
  for (unsigned char c : m)
    if (!safe_char(c)) fail("holds the character " + quoted(std::string(1, static_cast<char>(c))));
  // What the launcher, the coordinator (launcher/coordinator/run_files.h), the timeline and
  // `lockstep report` keep there.
  for (const char* own : {"token", "worker_secret", "checkpoints", "mpirun.log", "job.textproto", "report.html",
                          "coordinator.json", "result.json", "trace", "trace.json"})
    if (m == own) fail("is the run directory's own " + std::string(own));
  return m;
}

RunDirectory::RunDirectory(const std::string& path, const std::string& job_name, const RunDirOptions& o)
    : path_(fs::absolute(path).lexically_normal().string()) {
  while (path_.size() > 1 && path_.back() == '/') path_.pop_back();
  LOCKSTEP_FAIL_IF(o.resume && o.overwrite) << "--resume and --overwrite contradict each other: choose one";
  std::error_code ec;
  if (fs::exists(path_, ec) && !fs::is_directory(path_, ec))
    throw Error("run directory " + path_ + ": exists and is not a directory");
  // Create the missing tail of the path; remember its top, to remove it if the launch fails.
  fs::path top;
  for (fs::path p = path_; !p.empty() && !fs::exists(p, ec); p = p.parent_path()) top = p;
  fs::create_directories(path_, ec);
  if (ec) throw Error("run directory " + path_ + ": cannot create it: " + ec.message());
  created_ = !top.empty();
  const std::string created_top = top.string();
  try {
    const std::string lock = path_ + "/.lock";
    lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    LOCKSTEP_FAIL_IF(lock_fd_ < 0) << "run directory " << path_ << ": cannot open " << lock << ": "
                                   << std::strerror(errno);
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      std::string holder;
      std::ifstream in(lock);
      std::getline(in, holder);
      ::close(lock_fd_);
      lock_fd_ = -1;
      if (err == EWOULDBLOCK)
        throw Error("run directory " + path_ + " is in use by " + (holder.empty() ? "another job" : holder) +
                    "; stop that job first, or give this one another --run-dir");
      throw Error("run directory " + path_ + ": cannot lock " + lock + ": " + std::strerror(err));
    }
    const std::string line = holder_line(job_name) + "\n";
    if (::ftruncate(lock_fd_, 0) != 0 || ::pwrite(lock_fd_, line.data(), line.size(), 0) < 0)
      throw Error("run directory " + path_ + ": cannot write " + lock + ": " + std::strerror(errno));

    const std::vector<std::string> ckpts = list_checkpoints(path_);
    const std::string metrics = o.metrics_file.empty()    ? path_ + "/metrics.jsonl"
                                : o.metrics_file[0] == '/' ? o.metrics_file
                                                           : path_ + "/" + o.metrics_file;
    const bool has_metrics = fs::exists(metrics, ec) && fs::file_size(metrics, ec) > 0;
    if (!o.resume && !o.overwrite && (!ckpts.empty() || has_metrics)) {
      std::string what;
      if (!ckpts.empty())
        what = std::to_string(ckpts.size()) + " checkpoint" + (ckpts.size() > 1 ? "s" : "") + " (newest " +
               fs::path(ckpts.front()).filename().string() + ")";
      if (has_metrics)
        what += (what.empty() ? "" : " and ") + fs::path(metrics).filename().string() + " (" +
                std::to_string(line_count(metrics)) + " lines)";
      throw Error("run directory " + path_ + " already holds a run: " + what +
                  "; continue it with --resume, or start over with --overwrite (deletes them)");
    }
    if (o.overwrite) {
      fs::remove_all(path_ + "/checkpoints", ec);
      if (!ec) fs::remove(metrics, ec);
      for (const char* output : {"trace", "trace.json", "result.json", "report.html", "mpirun.log"})  // the old run's outputs
        if (!ec) fs::remove_all(path_ + "/" + output, ec);
      if (!ec)  // and its TensorBoard events files and earlier timelines (trace.N.json)
        for (const auto& f : fs::directory_iterator(path_, ec)) {
          const std::string n = f.path().filename().string();
          if (!ec && (n.starts_with("events.out.tfevents.") || checkpoint_io::is_kept_trace(n))) fs::remove(f.path(), ec);
        }
      if (ec) throw Error("run directory " + path_ + ": --overwrite: cannot remove the old run: " + ec.message());
    }
    if (o.resume && !ckpts.empty()) {
      std::string newest_error;
      bool any_valid = false;
      for (const std::string& c : ckpts) {
        try {
          read_checkpoint(c);
          any_valid = true;
          break;
        } catch (const Error& e) {
          if (newest_error.empty()) newest_error = e.what();
        }
      }
      if (!any_valid)
        throw Error("--resume: none of the " + std::to_string(ckpts.size()) + " checkpoints in " + path_ +
                    "/checkpoints is valid (the newest: " + newest_error +
                    "); nothing was started. Move them away, or start over with --overwrite");
    }
  } catch (...) {
    release();
    if (created_) fs::remove_all(created_top, ec);
    throw;
  }
  created_top_ = created_top;
}

void RunDirectory::write_token(const std::string& token, const std::string& file) const {
  const std::string target = file.empty() ? path_ + "/token" : file;
  const std::string tmp = target + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  LOCKSTEP_FAIL_IF(fd < 0) << "cannot write the job token to " << tmp << ": " << std::strerror(errno);
  const std::string body = token + "\n";
  const bool ok = ::fchmod(fd, 0600) == 0 && ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size());
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), target.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw Error("cannot write the job token to " + target + ": " + std::strerror(ok ? errno : err));
  }
}

void RunDirectory::write_job(const proto::JobSpec& job) const {
  std::string text;
  LOCKSTEP_CHECK(google::protobuf::TextFormat::PrintToString(job, &text)) << "printing the job spec";
  const std::string target = path_ + "/job.textproto";
  const std::string tmp = target + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "# The job as lockstep launch runs it (job file and overrides); lockstep report shows it.\n" << text;
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error("cannot write the job spec to " + tmp);
    }
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error("cannot write the job spec to " + target + ": " + ec.message());
  }
}

void RunDirectory::release() noexcept {
  if (lock_fd_ >= 0) ::close(lock_fd_);
  lock_fd_ = -1;
}

RunDirectory::~RunDirectory() {
  if (!committed_ && created_) {
    std::error_code ec;
    fs::remove_all(created_top_, ec);
  }
  release();
}

}  // namespace lockstep
