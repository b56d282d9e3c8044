// JSON-lines metrics writer.
#include "launcher/metrics_log.h"

#include <cmath>
#include <cstdio>
#include <string>

#include "runtime/check.h"

namespace lockstep {

// ',"grad_norm":x' when computed (>= 0); JSON has no NaN, so a non-finite norm is null.
static std::string grad_norm_field(double g) {
  if (std::isnan(g)) return ",\"grad_norm\":null";
  if (g < 0) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, ",\"grad_norm\":%.9g", g);
  return buf;
}

MetricsLog::MetricsLog(const std::string& path, Open mode)
    : path_(path), out_(path, mode == Open::kAppend ? std::ios::app : std::ios::trunc) {
  LOCKSTEP_FAIL_IF(!out_) << "cannot write metrics file " << path;
}

void MetricsLog::write(const EpochMetrics& m) {
  char line[320];
  std::snprintf(line, sizeof line,
                "{\"kind\":\"epoch\",\"epoch\":%lld,\"train_loss\":%.6f,\"test_loss\":%.6f,\"test_accuracy\":%.6f,"
                "\"train_samples_per_sec\":%.1f,\"lr\":%.6g%s,\"step\":%lld",
                static_cast<long long>(m.epoch), m.train_loss, m.test_loss, m.test_accuracy,
                m.train_samples_per_sec, m.lr, grad_norm_field(m.grad_norm).c_str(), static_cast<long long>(m.step));
  put((line + eval_json(m.test_classes) + "}\n").c_str());
}

void MetricsLog::write(const StepRecord& s) {
  char line[320];
  std::snprintf(line, sizeof line,
                "{\"kind\":\"step\",\"epoch\":%lld,\"step\":%lld,\"loss\":%.17g,\"samples_per_sec\":%.1f,\"lr\":%.9g%s}\n",
                static_cast<long long>(s.epoch), static_cast<long long>(s.step), s.loss, s.samples_per_sec, s.lr,
                grad_norm_field(s.grad_norm).c_str());
  put(line);
}

void MetricsLog::write(const RankTimesRecord& r) {
  char line[256];
  std::snprintf(line, sizeof line,
                "{\"kind\":\"rank\",\"epoch\":%lld,\"rank\":%d,\"steps\":%lld,\"step_time_s\":%.6g,"
                "\"comm_exposed_s\":%.6g,\"compute_s\":%.6g,\"step\":%lld}\n",
                static_cast<long long>(r.epoch), r.rank, static_cast<long long>(r.steps), r.step_time_s,
                r.comm_exposed_s, r.compute_s, static_cast<long long>(r.step));
  put(line);
}

void MetricsLog::add_sink(std::unique_ptr<MetricsSink> sink) { sinks_.push_back(std::move(sink)); }

void MetricsLog::put(const char* line) {
  out_ << line;
  out_.flush();
  LOCKSTEP_FAIL_IF(!out_) << "cannot write metrics file " << path_;
  if (sinks_.empty()) return;
  const std::string text = line;
  for (const auto& s : sinks_) s->write(text);
}

}  // namespace lockstep
