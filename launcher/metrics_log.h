// Per-epoch metrics as JSON lines (one object per line), for plots and scripts:
// {"epoch":1,"train_loss":0.51,"test_loss":0.39,"test_accuracy":0.861,"train_samples_per_sec":2400,"lr":0.05}
#pragma once

#include <fstream>
#include <string>

#include "runtime/trainer/trainer.h"

namespace lockstep {

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);  // truncates; throws naming the path
  void write(const EpochMetrics& m);             // flushed at once, so a crash loses no epoch

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace lockstep
