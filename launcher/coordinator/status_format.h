// Human-readable text for `lockstep ctl`: a job's status as a small report, one phase report as a
// line.
#pragma once

#include <string>

#include "proto/coordinator.pb.h"

namespace lockstep::status_format {

// Job line, per-rank table (step, loss, the coordinator's windowed samples/s, seconds since the
// last heartbeat), a line per straggler (stragglers.h), pending directives, last eval and
// checkpoint, then the phase history, oldest first.
std::string status(const proto::JobStatus& s);
// "phase 7 EVAL (directive 3) at epoch 2 step 938: accuracy 0.8812, loss 0.3311"
std::string report(const proto::PhaseReport& r);
// Seconds until rank 0 has taken every step of the job (epochs x steps_per_epoch), at the
// coordinator's windowed step rate (RankStatus.steps_per_sec); -1 while unknown.
double eta_seconds(const proto::JobStatus& s);

}  // namespace lockstep::status_format
