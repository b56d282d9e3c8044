// JSON-lines metrics writer.
#include "launcher/metrics_log.h"

#include <cstdio>

#include "runtime/check.h"

namespace lockstep {

MetricsLog::MetricsLog(const std::string& path) : path_(path), out_(path, std::ios::trunc) {
  LOCKSTEP_FAIL_IF(!out_) << "cannot write metrics file " << path;
}

void MetricsLog::write(const EpochMetrics& m) {
  char line[256];
  std::snprintf(line, sizeof line,
                "{\"epoch\":%lld,\"train_loss\":%.6f,\"test_loss\":%.6f,\"test_accuracy\":%.6f,"
                "\"train_samples_per_sec\":%.1f,\"lr\":%.6g}\n",
                static_cast<long long>(m.epoch), m.train_loss, m.test_loss, m.test_accuracy,
                m.train_samples_per_sec, m.lr);
  out_ << line;
  out_.flush();
  LOCKSTEP_FAIL_IF(!out_) << "cannot write metrics file " << path_;
}

}  // namespace lockstep
