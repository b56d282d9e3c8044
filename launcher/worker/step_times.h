// A rank's step times for straggler detection and the metrics file. In lockstep every rank's step
// takes about the same wall time (the fast ranks wait for the slow one in the all-reduce), so the
// slow rank shows in its COMPUTE time: step wall time minus exposed communication (waiting for
// gradient buckets after backward, and for the step agreement). Medians over a sliding window of
// steps go into the heartbeats (StepMetrics); medians over the epoch go into metrics.jsonl.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "proto/coordinator.pb.h"

namespace lockstep {

class StepTimes {
 public:
  struct Medians {
    double step_s = 0;     // wall time per step, seconds
    double comm_s = 0;     // exposed communication per step, seconds
    double compute_s = 0;  // step_s - comm_s per step (the median of the differences), seconds
    int steps = 0;         // steps the medians are over
  };

  explicit StepTimes(int window_steps);  // window_steps >= 1
  // One step: its wall seconds and the exposed communication inside them (clamped to [0, step_s]).
  void add(double step_s, double comm_s);
  void begin_epoch();                           // the epoch's medians start afresh
  Medians window() const;                       // the last window_steps steps
  Medians epoch() const;                        // the steps since begin_epoch()
  void publish(proto::StepMetrics& m) const;    // window() into the heartbeat's fields

 private:
  struct Step {
    double step_s, comm_s;
  };
  static Medians medians(const std::vector<Step>& steps);

  const size_t window_;
  std::deque<Step> recent_;  // newest last, at most window_
  std::vector<Step> epoch_;
};

// The test hook LOCKSTEP_TEST_STEP_DELAY="RANK:SECONDS": seconds of sleep this rank adds to each
// of its steps (0 for other ranks, or when unset), so a test can make one rank a straggler.
// Throws Error naming the variable and its value when it is malformed.
double test_step_delay_s(int rank);

// The test hook LOCKSTEP_TEST_TERMINATE_AT="STEP": every rank acts at the boundary after optimizer
// step STEP as if SIGTERM had come during it, so a test can stop a job at an exact step (an
// epoch's last, say). 0 when unset; throws Error naming the variable and its value when malformed.
uint64_t test_terminate_at_step();

}  // namespace lockstep
