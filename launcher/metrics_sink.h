// A second reader of the metrics file (launcher/metrics_log.h): MetricsLog hands every sink each
// line exactly as it wrote it, after the file has it, so a sink (the TensorBoard events file,
// launcher/tensorboard/metrics_events.h) can never disagree with metrics.jsonl.
#pragma once

#include <string>

namespace lockstep {

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;
  // One JSON object and its newline, as in the metrics file. Throws (lockstep::Error) when the sink
  // cannot keep it; the metrics file has the line by then.
  virtual void write(const std::string& line) = 0;
};

}  // namespace lockstep
