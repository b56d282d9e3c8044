// Straggler detection on the coordinator (proto::Straggler): from the compute-time medians every
// rank's heartbeats carry (StepMetrics.compute_median_s over its last window_steps steps), the
// ranks whose median stays above factor x the median rank's. Only ranks with a full window count,
// so a rank that just started or resumed is neither judged nor part of the reference.
#pragma once

#include <string>
#include <vector>

#include "proto/coordinator.pb.h"

namespace lockstep {

struct StragglerRule {
  double factor = 1.5;     // ControlSpec.straggler_factor
  int window_steps = 20;   // ControlSpec.straggler_window_steps
  double min_excess_s = 0.001;  // and at least this much above the median rank's
};

// Slowest first. The reference is the median of the full-window ranks' medians (the lower middle
// one for an even count); fewer than two such ranks: none.
std::vector<proto::Straggler> find_stragglers(const std::vector<const proto::RankStatus*>& ranks,
                                              const StragglerRule& rule);

// "straggler: rank 3 (host n12): compute 52.0 ms/step over 20 steps, 10.4x the median rank's 5.0 ms"
std::string straggler_text(const proto::Straggler& s);

}  // namespace lockstep
