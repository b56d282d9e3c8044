// The job's phase state machine, as the coordinator keeps it: which phases the PhasePlan wants at
// each epoch end, which directives `lockstep ctl` queued and rank 0 has not yet acknowledged, and
// the history of the phases rank 0 reported. Pure C++ (no gRPC); the server guards it with a mutex.
//
// States: TRAIN between phases; EVAL / CHECKPOINT while the phases planned at an epoch end
// (begin_epoch_end) are not all reported; PAUSE while a PAUSE is in force (queued, or acknowledged
// and not yet resumed); STOP once rank 0 reported a STOP (by directive or at the job's end).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "proto/coordinator.pb.h"
#include "proto/job.pb.h"

namespace lockstep {

class PhaseMachine {
 public:
  PhaseMachine(const proto::PhasePlan& plan, int64_t epochs);

  // A ctl EVAL / CHECKPOINT / PAUSE / STOP -> its directive id (1, 2, ...). RESUME is resume().
  // Throws Error for any other kind, or once the job finished.
  uint64_t enqueue(proto::PhaseKind kind);
  // Ends a PAUSE; a PAUSE directive not yet acknowledged is cancelled with it.
  void resume();
  std::vector<proto::Directive> pending() const;  // not yet acknowledged, oldest first
  bool paused() const { return paused_; }

  // Phases after epoch e (1-based): EVAL if e % eval_every == 0, CHECKPOINT if
  // checkpoint_every > 0 && e % checkpoint_every == 0; the last epoch always gets [EVAL, CHECKPOINT].
  std::vector<proto::PhaseKind> next_phases(int64_t epoch) const;
  // next_phases(epoch), remembered as the phases rank 0 is about to run (state() shows them).
  std::vector<proto::PhaseKind> begin_epoch_end(int64_t epoch);

  // Records a phase rank 0 ran; a directive_id != 0 acknowledges that directive (a PAUSE ack keeps
  // paused() until resume()). Throws Error naming the field and its value, and changes nothing, on
  // a report that does not fit what this machine issued (the rules are in coordinator.proto, at
  // PhaseReport): a kind neither planned nor directed, a directive never issued, of another kind or
  // already acknowledged, a phase_id not above the last one of this attempt or beyond
  // kMaxPhasesPerEpoch per epoch, an epoch or step out of range or going back, finished before the
  // last epoch's plan, an accuracy outside [0, 1] or a loss not finite. `from_checkpoint`: the job
  // was resumed, so its last epoch's plan may have been handed out by an earlier coordinator.
  void report(const proto::PhaseReport& r, bool from_checkpoint = false);
  // The most a phase id may grow per epoch advanced, and per report: a report's phase id is at most
  // last + kMaxPhasesPerEpoch * (epoch - last epoch + 1). A worker starts a few phases per epoch
  // (train, eval, checkpoint, pause, train again); this leaves room and keeps ids far from 2^32.
  static constexpr uint64_t kMaxPhasesPerEpoch = 16;

  proto::PhaseKind state() const;
  uint64_t phase_id() const { return last_phase_id_; }  // of the newest report (0: none yet)
  const std::vector<proto::PhaseReport>& history() const { return history_; }
  // Rank 0 reported STOP: the job completed (report.finished) or was stopped by a directive.
  // No phase runs after this.
  bool finished() const { return finished_; }
  // The job ran its last epoch (a report with finished = true), as opposed to a ctl STOP.
  bool complete() const { return complete_; }

  // A new attempt (restart after a failure): the PAUSE in force and any unacknowledged PAUSE are
  // dropped (the restarted ranks train), phase ids, epochs and steps may start lower again (from the
  // checkpoint);
  // EVAL / CHECKPOINT / STOP directives stay pending; history stays.
  void reset_for_restart();

 private:
  enum class Ack { kPending, kAcked, kCancelled };
  struct Issued {
    proto::PhaseKind kind;
    Ack ack;
  };

  int64_t eval_every_, checkpoint_every_, epochs_;
  uint64_t next_directive_ = 1;
  std::map<uint64_t, Issued> directives_;     // every directive issued, by id
  std::deque<proto::PhaseKind> upcoming_;     // planned phases of the current epoch end not yet reported
  bool paused_ = false;
  bool finished_ = false, complete_ = false;
  bool planned_last_epoch_ = false;  // the last epoch's plan was handed out (in any attempt)
  bool reported_this_attempt_ = false;
  uint64_t last_phase_id_ = 0;
  int64_t last_epoch_ = 0, last_step_ = 0;  // of this attempt's newest report (0: none yet)
  std::vector<proto::PhaseReport> history_;
};

}  // namespace lockstep
