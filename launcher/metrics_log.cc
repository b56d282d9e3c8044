// JSON-lines metrics writer.
#include "launcher/metrics_log.h"

#include <cstdio>

#include "runtime/check.h"

namespace lockstep {

MetricsLog::MetricsLog(const std::string& path, Open mode)
    : path_(path), out_(path, mode == Open::kAppend ? std::ios::app : std::ios::trunc) {
  LOCKSTEP_FAIL_IF(!out_) << "cannot write metrics file " << path;
}

void MetricsLog::write(const EpochMetrics& m) {
  char line[256];
  std::snprintf(line, sizeof line,
                "{\"kind\":\"epoch\",\"epoch\":%lld,\"train_loss\":%.6f,\"test_loss\":%.6f,\"test_accuracy\":%.6f,"
                "\"train_samples_per_sec\":%.1f,\"lr\":%.6g}\n",
                static_cast<long long>(m.epoch), m.train_loss, m.test_loss, m.test_accuracy,
                m.train_samples_per_sec, m.lr);
  put(line);
}

void MetricsLog::write(const StepRecord& s) {
  char line[192];
  std::snprintf(line, sizeof line, "{\"kind\":\"step\",\"epoch\":%lld,\"step\":%lld,\"loss\":%.17g,\"samples_per_sec\":%.1f}\n",
                static_cast<long long>(s.epoch), static_cast<long long>(s.step), s.loss, s.samples_per_sec);
  put(line);
}

void MetricsLog::write(const RankTimesRecord& r) {
  char line[256];
  std::snprintf(line, sizeof line,
                "{\"kind\":\"rank\",\"epoch\":%lld,\"rank\":%d,\"steps\":%lld,\"step_time_s\":%.6g,"
                "\"comm_exposed_s\":%.6g,\"compute_s\":%.6g}\n",
                static_cast<long long>(r.epoch), r.rank, static_cast<long long>(r.steps), r.step_time_s,
                r.comm_exposed_s, r.compute_s);
  put(line);
}

void MetricsLog::put(const char* line) {
  out_ << line;
  out_.flush();
  LOCKSTEP_FAIL_IF(!out_) << "cannot write metrics file " << path_;
}

}  // namespace lockstep
