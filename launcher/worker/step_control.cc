// Step-boundary agreement: one all-reduce (sum) of a few doubles.
#include "launcher/worker/step_control.h"

#include <span>

namespace lockstep {

Boundary agree(Communicator& comm, const Boundary& mine) {
  // [directive_id, n_phases, phase 0..3, terminate, loss_sum, count]; non-zero ranks send zeros
  // in the first six, so the sum is rank 0's value.
  std::vector<double> v(3 + Boundary::kMaxPhases + 2, 0.0);
  if (comm.rank() == 0) {
    v[0] = static_cast<double>(mine.directive_id);
    const size_t n = std::min<size_t>(mine.phases.size(), Boundary::kMaxPhases);
    v[1] = static_cast<double>(n);
    for (size_t i = 0; i < n; ++i) v[2 + i] = static_cast<double>(mine.phases[i]);
  }
  v[2 + Boundary::kMaxPhases] = mine.terminate ? 1.0 : 0.0;
  v[3 + Boundary::kMaxPhases] = mine.loss_sum;
  v[4 + Boundary::kMaxPhases] = mine.count;
  comm.all_reduce(std::span<double>(v), ReduceOp::kSum).wait();
  Boundary out;
  out.directive_id = static_cast<uint64_t>(v[0]);
  for (int i = 0; i < static_cast<int>(v[1]); ++i) out.phases.push_back(static_cast<proto::PhaseKind>(static_cast<int>(v[2 + i])));
  out.terminate = v[2 + Boundary::kMaxPhases] > 0.0;
  out.loss_sum = v[3 + Boundary::kMaxPhases];
  out.count = v[4 + Boundary::kMaxPhases];
  return out;
}

std::vector<StepTimes::Medians> gather_step_times(Communicator& comm, const StepTimes::Medians& mine) {
  // Each rank fills its own 4 slots, zeros elsewhere: the sum is every rank's figures.
  const size_t n = static_cast<size_t>(comm.size()), me = static_cast<size_t>(comm.rank());
  std::vector<double> v(4 * n, 0.0);
  v[4 * me] = mine.step_s;
  v[4 * me + 1] = mine.comm_s;
  v[4 * me + 2] = mine.compute_s;
  v[4 * me + 3] = mine.steps;
  comm.all_reduce(std::span<double>(v), ReduceOp::kSum).wait();
  std::vector<StepTimes::Medians> out(n);
  for (size_t r = 0; r < n; ++r) out[r] = {v[4 * r], v[4 * r + 1], v[4 * r + 2], static_cast<int>(v[4 * r + 3])};
  return out;
}

}  // namespace lockstep
