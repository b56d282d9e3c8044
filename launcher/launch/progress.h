// What `lockstep launch` shows: a live progress line (epoch, step, samples/s, loss, ETA) from the
// coordinator's status, redrawn in place on a terminal and printed every few seconds otherwise;
// and the summary table at the end, from the run's metrics.jsonl and the final status.
#pragma once

#include <chrono>
#include <string>

#include "proto/coordinator.pb.h"

namespace lockstep {

class ProgressLine {
 public:
  explicit ProgressLine(bool terminal);
  void update(const proto::JobStatus& st);
  void finish();  // ends an in-place line

 private:
  bool terminal_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_print_{};
  int64_t last_epoch_ = -1;
};

// The line for a status, e.g.
// "epoch 2/3  step 700/1404  2345 samples/s  loss 0.4123  ETA 0:41", then the slowest straggler if
// any ("  straggler: rank 1 (host h): compute 52.0 ms/step over 20 steps, 10.4x the median rank's
// 5.0 ms (+2 more)"); empty before any rank reports.
// samples/s and the ETA are the coordinator's, over a 30 s window of rank 0's step counter
// (RankStatus.samples_per_sec, status_format::eta_seconds); the loss is rank 0's StepMetrics.loss.
std::string progress_text(const proto::JobStatus& st);

// The end-of-job table: one row per epoch (train loss, test loss, test accuracy, samples/s) read
// from metrics_path (the newest line of each epoch, so a resumed run shows each epoch once), then
// one row per rank, the final accuracy, the newest eval's top-k and per-class accuracies and
// confusion matrix (launcher/train/eval_metrics.h), and the newest checkpoint.
std::string summary_table(const std::string& metrics_path, const proto::JobStatus& st);

}  // namespace lockstep
