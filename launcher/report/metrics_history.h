// The records of a run's metrics file (launcher/metrics_log.h), read back for the report: epoch,
// step and rank lines, the newest line of each epoch / step / (epoch, rank) kept (a resumed run
// logs the steps after its checkpoint again). A file being written, or cut by a crash, may end in a
// partial line: it is left out with a note, as is any line that is not one of the three kinds.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lockstep::report {

struct EpochRow {
  int64_t epoch = 0;                 // 1-based
  double train_loss = 0;
  std::optional<double> test_loss;   // absent: no eval ran after this epoch (logged as -1)
  std::optional<double> test_accuracy;  // fraction in [0, 1]
  double samples_per_sec = 0;        // train samples/s over the epoch
  double lr = 0;
  std::optional<double> grad_norm;   // mean pre-clip norm (clip_grad only)
  std::map<int64_t, double> top_k;   // k -> top-k accuracy (fraction)
};

struct StepRow {
  int64_t epoch = 0;  // 1-based
  int64_t step = 0;   // optimizer steps since the job started, after this one
  double loss = 0;
  double samples_per_sec = 0;
  double lr = 0;
  std::optional<double> grad_norm;
};

struct RankRow {
  int64_t epoch = 0;  // 1-based
  int rank = 0;
  int64_t steps = 0;  // steps the medians are over
  double step_time_s = 0, comm_exposed_s = 0, compute_s = 0;  // medians, seconds
};

struct MetricsHistory {
  std::vector<EpochRow> epochs;  // by epoch
  std::vector<StepRow> steps;    // by step
  std::vector<RankRow> ranks;    // by (epoch, rank)
  std::vector<std::string> notes;  // lines left out and why, one sentence each
  int64_t lines = 0;             // lines read, the left-out ones included

  int world_size() const;  // ranks in the newest epoch's rank records; 0 without any
};

// Parses the text of a metrics file; `name` names it in the notes. Never throws on content.
MetricsHistory parse_metrics(const std::string& text, const std::string& name);

// Reads and parses `path`. std::nullopt when it does not exist; Error (naming the path) when it
// exists but cannot be read.
std::optional<MetricsHistory> read_metrics(const std::string& path);

}  // namespace lockstep::report
