// A rank's training speed as the coordinator sees it: steps done over a time window of the step
// counter its heartbeats carry, not the last step's time, so one slow step (an eval, a checkpoint,
// a hiccup) moves the rate by its share of the window instead of swinging it (and the ETA) wildly.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>

namespace lockstep {

class StepRate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr double kWindowS = 30;   // observations older than this (behind the newest) drop out
  static constexpr double kMinSpanS = 1;   // no rate over a shorter span

  // One heartbeat's step counter at time t (t non-decreasing). A counter that went back (a restart
  // resumed from a checkpoint) starts the window afresh.
  void add(Clock::time_point t, int64_t step);
  // (newest step - oldest step) / (newest time - oldest time) over the window, in steps per second;
  // 0 while the window spans less than kMinSpanS.
  double steps_per_sec() const;

 private:
  struct Seen {
    Clock::time_point t;
    int64_t step;
  };
  std::deque<Seen> seen_;  // oldest first
};

}  // namespace lockstep
