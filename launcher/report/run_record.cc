// Reading a run directory for the report (see run_record.h).
#include "launcher/report/run_record.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <nlohmann/json.hpp>

#include "launcher/json_error.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/checkpoint_validate.h"
#include "runtime/checkpoint/user_file.h"

namespace lockstep::report {
namespace {

namespace fs = std::filesystem;

constexpr const char* kJobFile = "job.textproto";
constexpr size_t kMaxJobBytes = 1 << 20;  // a job file past this is shown cut, with a note

bool read_text(const std::string& path, std::string* out) {
  if (!checkpoint_io::non_regular_kind(path).empty()) return false;  // a FIFO would block the open
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return !in.bad();
}

// Whether a process holds a flock(2) on `path` now, from /proc/locks (the entry names the file's
// device and inode). Looking takes no lock, so it can never make a starting launch fail.
bool locked_now(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return false;
  char want[64];
  std::snprintf(want, sizeof want, "%02x:%02x:%llu", major(st.st_dev), minor(st.st_dev),
                static_cast<unsigned long long>(st.st_ino));
  std::ifstream in("/proc/locks");
  for (std::string line; std::getline(in, line);) {
    if (line.find("FLOCK") == std::string::npos || line.find("->") != std::string::npos) continue;  // held ones only
    std::istringstream words(line);
    for (std::string w; words >> w;)
      if (w == want) return true;
  }
  return false;
}

// The holder line's launcher is alive on this host (for file systems whose /proc/locks entries
// name another device than stat does, as overlayfs may): "job NAME, pid P on HOST, since ...".
bool holder_alive(const std::string& holder) {
  const size_t at = holder.find(", pid ");
  if (at == std::string::npos) return false;
  std::istringstream in(holder.substr(at + 6));
  long pid = 0;
  std::string on, host;
  if (!(in >> pid >> on >> host) || on != "on" || pid <= 0 || pid == ::getpid()) return false;
  if (!host.empty() && host.back() == ',') host.pop_back();
  char mine[256] = {};
  ::gethostname(mine, sizeof mine - 1);
  if (host != mine) return false;
  std::string cmdline;
  if (!read_text("/proc/" + std::to_string(pid) + "/cmdline", &cmdline)) return false;
  return cmdline.find("lockstep") != std::string::npos;  // not a recycled pid
}

// "job NAME, pid ..." -> NAME (RUN_DIR/.lock, launcher/launch/run_dir.cc).
std::string holder_job(const std::string& holder) {
  if (holder.rfind("job ", 0) != 0) return "";
  const size_t comma = holder.find(',');
  return comma == std::string::npos ? "" : holder.substr(4, comma - 4);
}

CheckpointInfo checkpoint_info(const std::string& dir, const std::optional<proto::JobSpec>& job,
                               std::optional<proto::JobSpec>* job_of_newest) {
  CheckpointInfo c;
  c.dir = dir;
  try {
    const Checkpoint ck = read_checkpoint(dir);
    const proto::CheckpointState& s = ck.state;
    ResumeLimits limits;
    if (job) limits.epochs = job->epochs();
    validate_state(s, limits, dir);
    c.valid = true;
    c.step = s.step();
    c.epoch = s.epoch();
    c.epoch_step = s.epoch_step();
    c.world_size = s.world_size();
    if (job_of_newest && !*job_of_newest && s.has_job()) *job_of_newest = s.job();
  } catch (const std::exception& e) {
    c.error = e.what();
  }
  return c;
}

}  // namespace

RunRecord read_run(const std::string& path) {
  std::error_code ec;
  LOCKSTEP_FAIL_IF(!fs::exists(path, ec)) << path << ": no such run directory";
  LOCKSTEP_FAIL_IF(!fs::is_directory(path, ec)) << path << ": not a directory; give a run directory (RUN_DIR of lockstep launch)";
  RunRecord r;
  r.dir = fs::absolute(path).lexically_normal().string();
  while (r.dir.size() > 1 && r.dir.back() == '/') r.dir.pop_back();
  const auto has = [&](const char* name) { return fs::exists(r.dir + "/" + name, ec); };
  LOCKSTEP_FAIL_IF(!has(".lock") && !has(kJobFile) && !has("token") && !has("metrics.jsonl") && !has("checkpoints"))
      << path << ": not a lockstep run directory (it holds none of .lock, job.textproto, token, metrics.jsonl, "
      << "checkpoints/)";

  if (has(".lock")) {
    std::string lock;
    if (read_text(r.dir + "/.lock", &lock)) r.holder = lock.substr(0, lock.find('\n'));
    r.running = locked_now(r.dir + "/.lock") || holder_alive(r.holder);
  }

  // The job: the launcher's copy, else the one the newest valid checkpoint was written for.
  if (has(kJobFile)) {
    std::string text;
    if (!read_text(r.dir + "/" + kJobFile, &text)) {
      const std::string kind = checkpoint_io::non_regular_kind(r.dir + "/" + kJobFile);
      r.notes.push_back(std::string(kJobFile) + (kind.empty() ? ": cannot be read" : ": is " + kind + ", not a regular file; not read"));
    } else {
      if (text.size() > kMaxJobBytes) {
        r.notes.push_back(std::string(kJobFile) + ": " + std::to_string(text.size()) + " bytes; the first " +
                          std::to_string(kMaxJobBytes) + " are shown");
        text.resize(kMaxJobBytes);
      }
      proto::JobSpec job;
      // Silent: protobuf would log "[libprotobuf ERROR ...]" to stderr; the note says it in one line.
      struct Silent : google::protobuf::io::ErrorCollector {
        void AddError(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
      } silent;
      google::protobuf::TextFormat::Parser parser;
      parser.RecordErrorsTo(&silent);
      if (parser.ParseFromString(text, &job)) r.job = job;
      else r.notes.push_back(std::string(kJobFile) + ": does not parse as a job spec; shown as it is");
      r.job_text = text;
      r.job_source = std::string("RUN_DIR/") + kJobFile;
    }
  }
  std::optional<proto::JobSpec> from_checkpoint;
  try {
    for (const std::string& d : list_checkpoints(r.dir)) r.checkpoints.push_back(checkpoint_info(d, r.job, &from_checkpoint));
  } catch (const std::exception& e) {
    r.notes.push_back(std::string("checkpoints/: ") + e.what());
  }
  if (!r.job && from_checkpoint) {
    r.job = from_checkpoint;
    google::protobuf::TextFormat::PrintToString(*r.job, &r.job_text);
    for (const CheckpointInfo& c : r.checkpoints)
      if (c.valid) {
        r.job_source = "checkpoint " + fs::path(c.dir).filename().string();
        break;
      }
  }

  r.job_name = r.job && !r.job->name().empty() ? r.job->name() : holder_job(r.holder);
  if (r.job_name.empty()) r.job_name = fs::path(r.dir).filename().string();

  if (has("result.json")) {
    std::string text;
    const std::string kind = checkpoint_io::non_regular_kind(r.dir + "/result.json");
    if (!kind.empty()) {
      r.notes.push_back("result.json: is " + kind + ", not a regular file; not read");
    } else if (!read_text(r.dir + "/result.json", &text)) {
      r.notes.push_back("result.json: cannot be read");
    } else {
      try {
        const nlohmann::json j = nlohmann::json::parse(text);
        LOCKSTEP_FAIL_IF(!j.is_object()) << "not a JSON object";
        RunResult res;
        res.exit_status = j.value("exit_status", 0);
        res.finished = j.value("finished", false);
        res.complete = j.value("complete", false);
        res.failure = j.value("failure", std::string());
        res.epoch = j.value("epoch", int64_t{0});
        res.epochs = j.value("epochs", int64_t{0});
        r.result = res;
      } catch (const nlohmann::json::exception& e) {
        r.notes.push_back("result.json: " + json_error_text(e, text) + "; not used");
      } catch (const std::exception& e) {
        r.notes.push_back(std::string("result.json: ") + e.what() + "; not used");
      }
    }
  }

  const std::string m = r.job && !r.job->metrics_file().empty() ? r.job->metrics_file() : "metrics.jsonl";
  r.metrics_path = m[0] == '/' ? m : r.dir + "/" + m;
  try {
    r.metrics = read_metrics(r.metrics_path);
  } catch (const std::exception& e) {
    r.notes.push_back(e.what());
  }
  return r;
}

}  // namespace lockstep::report
