// Windowed step rate of one rank (see step_rate.h).
#include "launcher/coordinator/step_rate.h"

namespace lockstep {

void StepRate::add(Clock::time_point t, int64_t step) {
  if (!seen_.empty() && step < seen_.back().step) seen_.clear();
  seen_.push_back({t, step});
  const auto window = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(kWindowS));
  // Keep one observation at or beyond the window's edge, so the span stays close to kWindowS.
  while (seen_.size() > 2 && t - seen_[1].t >= window) seen_.pop_front();
}

double StepRate::steps_per_sec() const {
  if (seen_.size() < 2) return 0;
  const double span = std::chrono::duration<double>(seen_.back().t - seen_.front().t).count();
  if (span < kMinSpanS) return 0;
  return static_cast<double>(seen_.back().step - seen_.front().step) / span;
}

}  // namespace lockstep
