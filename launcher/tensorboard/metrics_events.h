// The TensorBoard view of the metrics file: a MetricsSink (launcher/metrics_sink.h) that turns each
// line MetricsLog writes into one Event of scalars, read back from the line itself, so the events
// file and metrics.jsonl cannot disagree (each value is the line's number rounded to float32).
//
// Step axis: the line's "step", optimizer steps since the job started; an epoch's lines sit at the
// epoch's last step. Tags:
//   step line  ("kind":"step"):  train/loss, train/lr, train/samples_per_sec, train/grad_norm (with clip_grad)
//   epoch line ("kind":"epoch"): epoch/train_loss, epoch/lr, epoch/samples_per_sec, epoch/grad_norm
//                                (the epoch's mean, with clip_grad); after an eval also test/loss,
//                                test/accuracy and test/top{k}_accuracy for each k of eval.top_k
//   rank line  ("kind":"rank"):  rank{r}/step_time_s, rank{r}/comm_exposed_s, rank{r}/compute_s (the
//                                epoch's medians on rank r; per epoch, see launcher/worker/step_times.h)
// A grad_norm of null (not finite) becomes NaN; lines of other kinds are ignored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "launcher/metrics_sink.h"
#include "launcher/tensorboard/event_file.h"

namespace lockstep::tensorboard {

struct StepScalars {
  int64_t step = 0;
  std::vector<Scalar> values;  // in the line's order
};

// The scalars of one metrics line; nullopt for a line of another kind. Throws naming the line when
// it is not JSON or lacks its "step".
std::optional<StepScalars> scalars_of_metrics_line(const std::string& line);

class MetricsEvents : public MetricsSink {
 public:
  // A new events file in dir (event_file.h) that opens with a SessionLog START at first_step, the
  // first optimizer step this run trains (1, or the checkpoint's step + 1 on a resume): TensorBoard's
  // loader then drops what earlier files of the directory logged at that step or later, as a
  // resume's metrics file continues from its checkpoint and `lockstep train` truncates its own.
  MetricsEvents(const std::string& dir, int64_t first_step);
  void write(const std::string& line) override;
  const std::string& path() const { return events_.path(); }

 private:
  EventFileWriter events_;
};

}  // namespace lockstep::tensorboard
