// The agreement at a step boundary. One small all-reduce tells every rank the same thing: the
// phases to run now (rank 0's word, from the coordinator), whether any rank was asked to
// terminate (SIGTERM/SIGINT), and the global loss of the step just taken. Every rank acts on the
// result at the same step, so all ranks see the same phase sequence.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/communicator.h"
#include "launcher/worker/step_times.h"
#include "proto/coordinator.pb.h"

namespace lockstep {

struct Boundary {
  uint64_t directive_id = 0;             // the ctl directive being acted on (rank 0's), 0: none
  std::vector<proto::PhaseKind> phases;  // to run now, in order (at most kMaxPhases)
  bool terminate = false;                // some rank got SIGTERM/SIGINT: checkpoint and stop
  double loss_sum = 0;                   // summed sample loss of the step just taken
  double count = 0;                      // its samples
  static constexpr int kMaxPhases = 4;
};

// Collective. Only rank 0's directive_id and phases count; terminate is any rank's; the sums are
// over ranks.
Boundary agree(Communicator& comm, const Boundary& mine);

// Collective, at an epoch end: every rank's epoch step-time medians (index = rank), for rank 0's
// metrics file. One all-reduce of 4 x world doubles.
std::vector<StepTimes::Medians> gather_step_times(Communicator& comm, const StepTimes::Medians& mine);

}  // namespace lockstep
