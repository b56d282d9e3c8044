// What `lockstep report` knows about a run directory (launcher/launch/run_dir.h): the job (from
// RUN_DIR/job.textproto, which the launcher writes, else from the newest valid checkpoint, which
// holds the job it was written for), whether a job holds the directory now (RUN_DIR/.lock), the
// metrics file, and every checkpoint with whether it reads back valid.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "launcher/report/metrics_history.h"
#include "proto/job.pb.h"

namespace lockstep::report {

struct CheckpointInfo {
  std::string dir;    // as listed: RUN_DIR/checkpoints/ckpt-<step>
  bool valid = false;
  std::string error;  // why it is not valid (read_checkpoint's or validate_state's one line)
  // From state.pb, when valid:
  uint64_t step = 0;         // optimizer steps since the job started
  int64_t epoch = 0;         // epochs completed
  int64_t epoch_step = 0;    // steps into the next epoch (0: at an epoch's end)
  int32_t world_size = 0;    // ranks that wrote it
};

// RUN_DIR/result.json (launcher/coordinator/run_files.h, proto JobResult): how the job ended.
struct RunResult {
  int exit_status = 0;   // the launcher's (0 done, 1 a rank failed, 3 stopped on request, 4 killed)
  bool finished = false;
  bool complete = false;  // every epoch trained
  std::string failure;    // why it failed, naming the rank; "" when it did not
  int64_t epoch = 0;      // of the newest phase report
  int64_t epochs = 0;
};

struct RunRecord {
  std::string dir;             // absolute
  std::string job_name;        // the job's name, else the .lock holder's, else the directory's name
  std::optional<proto::JobSpec> job;
  std::string job_text;        // the job spec as protobuf text; empty when unknown
  std::string job_source;      // where job_text came from ("RUN_DIR/job.textproto", "checkpoint ...")
  std::string holder;          // RUN_DIR/.lock's line: "job NAME, pid P on HOST, since TIME"
  bool running = false;        // a job holds the directory's lock now
  std::string metrics_path;
  std::optional<MetricsHistory> metrics;  // absent: no metrics file yet
  std::vector<CheckpointInfo> checkpoints;  // highest step first
  std::optional<RunResult> result;          // absent: no result.json (running, or killed before writing it)
  std::vector<std::string> notes;           // what could not be read, one sentence each
};

// Reads the run directory at `path`. Throws Error, one line naming the path, when it is not a
// directory or holds none of a run directory's files (.lock, job.textproto, token, metrics.jsonl,
// checkpoints/). Damaged checkpoints, unreadable job files and bad metrics lines are notes, not
// errors: the report shows what is there.
RunRecord read_run(const std::string& path);

}  // namespace lockstep::report
