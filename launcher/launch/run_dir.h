// A run directory belongs to one job. Opening one for a launch (or a cluster job's coordinator):
// - the job's name, which becomes a path component, is one safe component (letters, digits,
//   '.', '_', '-', '+'; not starting with '.'; at most 128 bytes), so it is valid UTF-8 too;
// - an exclusive flock(2) on RUN_DIR/.lock is held for the whole job; a second launch on the same
//   directory is refused, naming the job, pid, host and start time that hold it;
// - a directory holding checkpoints or metrics is refused without --resume (or --overwrite, which
//   removes them first); with --resume, checkpoints that are all damaged are refused rather than
//   trained over;
// - nothing is written there before every check has passed, and a launch that fails before its
//   workers start leaves no directory it created behind (commit() marks the point of no return).
#pragma once

#include <string>

#include "proto/job.pb.h"

namespace lockstep {

// The job's name, checked: the name field, else the job file's stem. Throws Error
// "PATH: name: ..." naming the value (escaped) when it is not one safe path component.
std::string checked_job_name(const proto::JobSpec& job, const std::string& job_path);

// The job's metrics file, checked for a launch: a file name inside the run directory (default
// metrics.jsonl), one safe path component that is none of the directory's own files (token,
// worker_secret, .lock, checkpoints, mpirun.log, job.textproto, report.html). Throws Error
// "PATH: metrics_file: ...".
std::string checked_metrics_file(const proto::JobSpec& job, const std::string& job_path);

struct RunDirOptions {
  bool resume = false;     // continue from the newest valid checkpoint
  bool overwrite = false;  // start over: remove the directory's checkpoints and metrics first
  std::string metrics_file = "metrics.jsonl";  // relative to the directory, or absolute
};

class RunDirectory {
 public:
  // Creates (if needed) and locks `path`, then applies the rules above. Throws Error naming the
  // directory and why; on a throw nothing this call created is left.
  RunDirectory(const std::string& path, const std::string& job_name, const RunDirOptions& o);
  ~RunDirectory();  // releases the lock; before commit(), removes what this object created
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  const std::string& path() const { return path_; }
  // Writes RUN_DIR/token (mode 0600, atomically) for `lockstep ctl`.
  void write_token(const std::string& token, const std::string& file = "") const;
  // Writes RUN_DIR/job.textproto (atomically): the job as it runs, overrides applied, in protobuf
  // text format, for `lockstep report` and for a person reading the directory.
  void write_job(const proto::JobSpec& job) const;
  // The job is started: from now on the directory stays.
  void commit() { committed_ = true; }

 private:
  void release() noexcept;

  std::string path_;
  int lock_fd_ = -1;
  bool created_ = false;
  std::string created_top_;  // the topmost directory this object created
  bool committed_ = false;
};

}  // namespace lockstep
