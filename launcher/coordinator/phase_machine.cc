// The job's phase state machine: plan, directives, reports (see phase_machine.h).
#include "launcher/coordinator/phase_machine.h"

#include <algorithm>

#include "runtime/check.h"

namespace lockstep {

PhaseMachine::PhaseMachine(const proto::PhasePlan& plan, int64_t epochs)
    : eval_every_(plan.has_eval_every() ? plan.eval_every() : 1),
      checkpoint_every_(plan.has_checkpoint_every() ? plan.checkpoint_every() : 1),
      epochs_(epochs) {}

uint64_t PhaseMachine::enqueue(proto::PhaseKind kind) {
  LOCKSTEP_FAIL_IF(kind != proto::EVAL && kind != proto::CHECKPOINT && kind != proto::PAUSE &&
                   kind != proto::STOP)
      << "cannot queue a " << proto::PhaseKind_Name(kind) << " directive (EVAL, CHECKPOINT, PAUSE, STOP)";
  LOCKSTEP_FAIL_IF(finished_) << "the job has " << (complete_ ? "finished" : "stopped") << "; no "
                              << proto::PhaseKind_Name(kind) << " can run";
  const uint64_t id = next_directive_++;
  directives_[id] = Issued{kind, Ack::kPending};
  if (kind == proto::PAUSE) paused_ = true;
  return id;
}

void PhaseMachine::resume() {
  paused_ = false;
  for (auto& [id, d] : directives_)
    if (d.kind == proto::PAUSE && d.ack == Ack::kPending) d.ack = Ack::kCancelled;
}

std::vector<proto::Directive> PhaseMachine::pending() const {
  std::vector<proto::Directive> out;
  for (const auto& [id, d] : directives_) {  // std::map: ascending ids, i.e. oldest first
    if (d.ack != Ack::kPending) continue;
    proto::Directive& x = out.emplace_back();
    x.set_id(id);
    x.set_kind(d.kind);
  }
  return out;
}

std::vector<proto::PhaseKind> PhaseMachine::next_phases(int64_t epoch) const {
  if (epoch >= epochs_) return {proto::EVAL, proto::CHECKPOINT};
  std::vector<proto::PhaseKind> out;
  if (eval_every_ > 0 && epoch % eval_every_ == 0) out.push_back(proto::EVAL);
  if (checkpoint_every_ > 0 && epoch % checkpoint_every_ == 0) out.push_back(proto::CHECKPOINT);
  return out;
}

std::vector<proto::PhaseKind> PhaseMachine::begin_epoch_end(int64_t epoch) {
  std::vector<proto::PhaseKind> out = next_phases(epoch);
  upcoming_.assign(out.begin(), out.end());
  return out;
}

void PhaseMachine::report(const proto::PhaseReport& r) {
  LOCKSTEP_FAIL_IF(r.kind() == proto::PHASE_NONE) << "phase report " << r.phase_id() << " has no kind";
  LOCKSTEP_FAIL_IF(reported_this_attempt_ && r.phase_id() <= last_phase_id_)
      << "phase report " << proto::PhaseKind_Name(r.kind()) << " with phase_id " << r.phase_id()
      << " after phase_id " << last_phase_id_ << " (phase ids must increase)";
  if (r.directive_id() != 0) {
    auto it = directives_.find(r.directive_id());
    LOCKSTEP_FAIL_IF(it == directives_.end())
        << "phase report " << r.phase_id() << " acknowledges directive " << r.directive_id()
        << ", which was never issued (newest is " << next_directive_ - 1 << ")";
    LOCKSTEP_FAIL_IF(it->second.kind != r.kind())
        << "phase report " << r.phase_id() << " is a " << proto::PhaseKind_Name(r.kind()) << " but directive "
        << r.directive_id() << " asked for " << proto::PhaseKind_Name(it->second.kind);
    // A cancelled PAUSE may still be acknowledged: rank 0 saw it before the RESUME.
    if (it->second.ack == Ack::kPending) it->second.ack = Ack::kAcked;
  } else if (auto it = std::find(upcoming_.begin(), upcoming_.end(), r.kind()); it != upcoming_.end()) {
    upcoming_.erase(it);
  }
  if (r.kind() == proto::STOP || r.finished()) {
    finished_ = true;
    complete_ = complete_ || r.finished();
    upcoming_.clear();
  }
  reported_this_attempt_ = true;
  last_phase_id_ = r.phase_id();
  history_.push_back(r);
}

proto::PhaseKind PhaseMachine::state() const {
  if (finished_) return proto::STOP;
  if (paused_) return proto::PAUSE;
  if (!upcoming_.empty()) return upcoming_.front();
  return proto::TRAIN;
}

void PhaseMachine::reset_for_restart() {
  resume();
  upcoming_.clear();
  reported_this_attempt_ = false;
}

}  // namespace lockstep
