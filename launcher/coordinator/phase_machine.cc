// The job's phase state machine: plan, directives, reports (see phase_machine.h).
#include "launcher/coordinator/phase_machine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

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
  if (epoch >= epochs_) planned_last_epoch_ = true;
  return out;
}

void PhaseMachine::report(const proto::PhaseReport& r, bool from_checkpoint) {
  const std::string kind = proto::PhaseKind_IsValid(r.kind()) ? proto::PhaseKind_Name(r.kind())
                                                              : std::to_string(static_cast<int>(r.kind()));
  LOCKSTEP_FAIL_IF(r.kind() != proto::EVAL && r.kind() != proto::CHECKPOINT && r.kind() != proto::PAUSE &&
                   r.kind() != proto::STOP)
      << "phase report: kind " << kind << " is not a phase rank 0 runs (EVAL, CHECKPOINT, PAUSE, STOP)";
  const std::string what = "phase report " + kind + " (phase_id " + std::to_string(r.phase_id()) + ")";
  LOCKSTEP_FAIL_IF(finished_) << what << ": the job has already " << (complete_ ? "finished" : "stopped")
                              << "; no phase runs after that";
  // Fields first: the loss and accuracy the status and the summary show.
  LOCKSTEP_FAIL_IF(!(r.test_accuracy() >= 0 && r.test_accuracy() <= 1))
      << what << ": test_accuracy " << r.test_accuracy() << " is outside [0, 1]";
  LOCKSTEP_FAIL_IF(!std::isfinite(r.test_loss()) || r.test_loss() < 0)
      << what << ": test_loss " << r.test_loss() << " is not a finite, non-negative loss";
  LOCKSTEP_FAIL_IF(r.epoch() < 0 || r.epoch() > epochs_)
      << what << ": epoch " << r.epoch() << " is outside [0, " << epochs_ << "] (the job's epochs)";
  LOCKSTEP_FAIL_IF(r.step() < 0) << what << ": step " << r.step() << " is negative";
  if (reported_this_attempt_) {
    LOCKSTEP_FAIL_IF(r.epoch() < last_epoch_)
        << what << ": epoch " << r.epoch() << " is below the previous report's epoch " << last_epoch_;
    LOCKSTEP_FAIL_IF(r.step() < last_step_)
        << what << ": step " << r.step() << " is below the previous report's step " << last_step_;
  }
  // Phase ids grow with the phases the worker starts: a few per epoch (see kMaxPhasesPerEpoch).
  LOCKSTEP_FAIL_IF(reported_this_attempt_ && r.phase_id() <= last_phase_id_)
      << what << ": phase_id " << r.phase_id() << " is not above the previous report's " << last_phase_id_
      << " (phase ids must increase)";
  const int64_t advanced = r.epoch() - (reported_this_attempt_ ? last_epoch_ : 0);
  const uint64_t bound = std::min<uint64_t>(
      (reported_this_attempt_ ? last_phase_id_ : 0) + kMaxPhasesPerEpoch * static_cast<uint64_t>(advanced + 1),
      std::numeric_limits<uint32_t>::max());
  LOCKSTEP_FAIL_IF(r.phase_id() > bound)
      << what << ": phase_id " << r.phase_id() << " is beyond " << bound << " (at most " << kMaxPhasesPerEpoch
      << " phases per epoch after phase_id " << (reported_this_attempt_ ? last_phase_id_ : 0) << ")";

  Issued* acked = nullptr;
  std::deque<proto::PhaseKind>::iterator planned = upcoming_.end();
  if (r.directive_id() != 0) {
    auto it = directives_.find(r.directive_id());
    LOCKSTEP_FAIL_IF(it == directives_.end())
        << what << ": directive_id " << r.directive_id() << " was never issued (newest is "
        << next_directive_ - 1 << ")";
    LOCKSTEP_FAIL_IF(it->second.kind != r.kind())
        << what << ": directive_id " << r.directive_id() << " asked for " << proto::PhaseKind_Name(it->second.kind)
        << ", not " << kind;
    LOCKSTEP_FAIL_IF(it->second.ack == Ack::kAcked)
        << what << ": directive_id " << r.directive_id() << " was already acknowledged";
    acked = &it->second;
  } else if (r.kind() != proto::STOP) {  // a STOP without a directive: a signal's, or the job's end
    planned = std::find(upcoming_.begin(), upcoming_.end(), r.kind());
    LOCKSTEP_FAIL_IF(planned == upcoming_.end())
        << what << ": kind " << kind << " with directive_id 0 was not planned (the phases planned now: "
        << upcoming_.size() << (upcoming_.empty() ? "" : ", " + proto::PhaseKind_Name(upcoming_.front()) + " next")
        << ")";
  }
  if (r.finished()) {
    LOCKSTEP_FAIL_IF(r.kind() != proto::STOP || r.directive_id() != 0)
        << what << ": finished is true, but only rank 0's STOP after the last epoch (directive_id 0) ends the job";
    LOCKSTEP_FAIL_IF(r.epoch() != epochs_)
        << what << ": finished is true at epoch " << r.epoch() << ", but the job has " << epochs_ << " epochs";
    LOCKSTEP_FAIL_IF(!planned_last_epoch_ && !from_checkpoint)
        << what << ": finished is true, but the last epoch's phases (epoch " << epochs_ << ") were never planned";
    LOCKSTEP_FAIL_IF(!upcoming_.empty())
        << what << ": finished is true while the last epoch's " << proto::PhaseKind_Name(upcoming_.front())
        << " is not reported";
  }

  // Every check passed: now the state moves.
  // A cancelled PAUSE may still be acknowledged: rank 0 saw it before the RESUME.
  if (acked && acked->ack == Ack::kPending) acked->ack = Ack::kAcked;
  if (planned != upcoming_.end()) upcoming_.erase(planned);
  if (r.kind() == proto::STOP || r.finished()) {
    finished_ = true;
    complete_ = complete_ || r.finished();
    upcoming_.clear();
  }
  reported_this_attempt_ = true;
  last_phase_id_ = r.phase_id();
  last_epoch_ = r.epoch();
  last_step_ = r.step();
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
  last_epoch_ = last_step_ = 0;
}

}  // namespace lockstep
