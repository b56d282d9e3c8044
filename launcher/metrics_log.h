// Metrics as JSON lines (one object per line), for plots and scripts. Per epoch:
// {"kind":"epoch","epoch":1,"train_loss":0.51,"test_loss":0.39,"test_accuracy":0.861,"train_samples_per_sec":2400,"lr":0.05}
// and, from `lockstep launch`/`worker`, per step (the loss exact to the last bit, for comparing runs):
// {"kind":"step","epoch":1,"step":17,"loss":0.61234567890123456,"samples_per_sec":2380.5}
// and from `lockstep launch`/`worker`, per epoch and rank (medians over the epoch's steps, seconds;
// compute = step - exposed communication, see launcher/worker/step_times.h):
// {"kind":"rank","epoch":1,"rank":1,"steps":468,"step_time_s":0.0312,"comm_exposed_s":0.0004,"compute_s":0.0307}
#pragma once

#include <fstream>
#include <string>

#include "launcher/train/trainer.h"

namespace lockstep {

struct StepRecord {
  int64_t epoch = 0;  // 1-based
  int64_t step = 0;   // optimizer steps since the job started, after this one
  double loss = 0;    // global mean loss of the step
  double samples_per_sec = 0;
};

struct RankTimesRecord {
  int64_t epoch = 0;  // 1-based
  int rank = 0;
  int64_t steps = 0;  // steps the medians are over
  double step_time_s = 0, comm_exposed_s = 0, compute_s = 0;
};

class MetricsLog {
 public:
  enum class Open { kTruncate, kAppend };  // kAppend: a resumed run continues the file
  explicit MetricsLog(const std::string& path, Open mode = Open::kTruncate);  // throws naming the path
  void write(const EpochMetrics& m);  // flushed at once, so a crash loses no epoch
  void write(const StepRecord& s);
  void write(const RankTimesRecord& r);

 private:
  void put(const char* line);

  std::string path_;
  std::ofstream out_;
};

}  // namespace lockstep
