// Metrics as JSON lines (one object per line), for plots and scripts. Per epoch:
// {"kind":"epoch","epoch":1,"train_loss":0.51,"test_loss":0.39,"test_accuracy":0.861,"train_samples_per_sec":2400,"lr":0.05,
//  "step":468,"top_k_accuracy":{"5":0.994},"per_class_accuracy":[0.81,...],"confusion_matrix":[[812,3,...],...]}
// ("step": optimizer steps since the job started, at the epoch's end; the eval members only after
// an eval: launcher/train/eval_metrics.h; test_loss and test_accuracy are -1 for an epoch without one)
// and, from `lockstep launch`/`worker`, per step (the loss exact to the last bit, for comparing runs):
// {"kind":"step","epoch":1,"step":17,"loss":0.61234567890123456,"samples_per_sec":2380.5,"lr":0.05}
// With clip_grad, both lines also carry "grad_norm": the step's total gradient norm before clipping
// (the epoch line: the mean over the epoch's steps). "lr" is the lr the step (or the epoch's last
// step) used.
// and from `lockstep launch`/`worker`, per epoch and rank (medians over the epoch's steps, seconds;
// compute = step - exposed communication, see launcher/worker/step_times.h):
// {"kind":"rank","epoch":1,"rank":1,"steps":468,"step_time_s":0.0312,"comm_exposed_s":0.0004,"compute_s":0.0307,"step":468}
// ("step" as in the epoch line). Sinks (add_sink, e.g. the TensorBoard events file) receive every
// line as written.
#pragma once

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "launcher/metrics_sink.h"
#include "launcher/train/trainer.h"

namespace lockstep {

struct StepRecord {
  int64_t epoch = 0;  // 1-based
  int64_t step = 0;   // optimizer steps since the job started, after this one
  double loss = 0;    // global mean loss of the step
  double samples_per_sec = 0;
  double lr = 0;          // the lr this step used
  double grad_norm = -1;  // pre-clip total gradient norm; < 0: not computed (no clip_grad)
};

struct RankTimesRecord {
  int64_t epoch = 0;  // 1-based
  int rank = 0;
  int64_t steps = 0;  // steps the medians are over
  double step_time_s = 0, comm_exposed_s = 0, compute_s = 0;
  int64_t step = 0;  // optimizer steps since the job started, at the epoch's end
};

class MetricsLog {
 public:
  enum class Open { kTruncate, kAppend };  // kAppend: a resumed run continues the file
  explicit MetricsLog(const std::string& path, Open mode = Open::kTruncate);  // throws naming the path
  void write(const EpochMetrics& m);  // flushed at once, so a crash loses no epoch
  void write(const StepRecord& s);
  void write(const RankTimesRecord& r);
  // Every line written from now on also goes to sink, after the file has it.
  void add_sink(std::unique_ptr<MetricsSink> sink);

 private:
  void put(const char* line);

  std::string path_;
  std::ofstream out_;
  std::vector<std::unique_ptr<MetricsSink>> sinks_;
};

}  // namespace lockstep
