// PhaseMachine: the plan's phases per epoch against the formula, directive queue and
// acknowledgement order, pause/resume, impossible reports, restarts.
#include "launcher/coordinator/phase_machine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "runtime/check.h"

namespace lockstep {
namespace {

proto::PhasePlan plan(int64_t eval_every, int64_t checkpoint_every) {
  proto::PhasePlan p;
  p.set_eval_every(eval_every);
  p.set_checkpoint_every(checkpoint_every);
  return p;
}

proto::PhaseReport report(uint64_t phase_id, proto::PhaseKind kind, uint64_t directive_id = 0, int64_t epoch = 0) {
  proto::PhaseReport r;
  r.set_phase_id(phase_id);
  r.set_kind(kind);
  r.set_directive_id(directive_id);
  r.set_epoch(epoch);
  return r;
}

TEST(PhaseMachine, PlanMatchesFormula) {
  for (auto [ev, ck] : {std::pair<int64_t, int64_t>{2, 3}, {1, 1}, {3, 0}, {1, 4}}) {
    const int64_t epochs = 6;
    PhaseMachine m(plan(ev, ck), epochs);
    for (int64_t e = 1; e <= epochs; ++e) {
      std::vector<proto::PhaseKind> want;
      if (e == epochs || e % ev == 0) want.push_back(proto::EVAL);
      if (e == epochs || (ck > 0 && e % ck == 0)) want.push_back(proto::CHECKPOINT);
      EXPECT_EQ(m.next_phases(e), want) << "epoch " << e << " eval_every " << ev << " checkpoint_every " << ck;
    }
  }
}

TEST(PhaseMachine, DefaultsEvalAndCheckpointEveryEpoch) {
  PhaseMachine m(proto::PhasePlan(), 3);
  for (int64_t e = 1; e <= 3; ++e)
    EXPECT_EQ(m.next_phases(e), (std::vector<proto::PhaseKind>{proto::EVAL, proto::CHECKPOINT})) << e;
}

TEST(PhaseMachine, LastEpochAlwaysEvalAndCheckpoint) {
  PhaseMachine m(plan(4, 0), 5);  // 5 is neither a multiple of 4 nor a checkpoint epoch
  EXPECT_EQ(m.next_phases(5), (std::vector<proto::PhaseKind>{proto::EVAL, proto::CHECKPOINT}));
  EXPECT_TRUE(m.next_phases(3).empty());
}

TEST(PhaseMachine, StateFollowsPlannedPhases) {
  PhaseMachine m(plan(1, 1), 3);
  EXPECT_EQ(m.state(), proto::TRAIN);
  m.begin_epoch_end(1);
  EXPECT_EQ(m.state(), proto::EVAL);
  m.report(report(1, proto::EVAL));
  EXPECT_EQ(m.state(), proto::CHECKPOINT);
  m.report(report(2, proto::CHECKPOINT));
  EXPECT_EQ(m.state(), proto::TRAIN);
  EXPECT_EQ(m.phase_id(), 2u);
}

TEST(PhaseMachine, DirectivesQueueAndAckInOrder) {
  PhaseMachine m(plan(1, 1), 3);
  const uint64_t a = m.enqueue(proto::EVAL), b = m.enqueue(proto::CHECKPOINT), c = m.enqueue(proto::EVAL);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  auto p = m.pending();
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].id(), a);
  EXPECT_EQ(p[0].kind(), proto::EVAL);
  EXPECT_EQ(p[1].id(), b);
  EXPECT_EQ(p[1].kind(), proto::CHECKPOINT);
  EXPECT_EQ(p[2].id(), c);

  m.report(report(10, proto::CHECKPOINT, b));  // acknowledged out of order: the others stay, in order
  p = m.pending();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].id(), a);
  EXPECT_EQ(p[1].id(), c);
  m.report(report(11, proto::EVAL, a));
  m.report(report(12, proto::EVAL, c));
  EXPECT_TRUE(m.pending().empty());
  EXPECT_EQ(m.history().size(), 3u);
  EXPECT_EQ(m.history()[0].directive_id(), b);
}

TEST(PhaseMachine, PauseHoldsUntilResume) {
  PhaseMachine m(plan(1, 1), 3);
  EXPECT_FALSE(m.paused());
  const uint64_t id = m.enqueue(proto::PAUSE);
  EXPECT_TRUE(m.paused());
  EXPECT_EQ(m.state(), proto::PAUSE);
  m.report(report(1, proto::PAUSE, id));
  EXPECT_TRUE(m.pending().empty());
  EXPECT_TRUE(m.paused()) << "an acknowledged PAUSE holds until RESUME";
  m.resume();
  EXPECT_FALSE(m.paused());
  EXPECT_EQ(m.state(), proto::TRAIN);
}

TEST(PhaseMachine, ResumeCancelsUnacknowledgedPause) {
  PhaseMachine m(plan(1, 1), 3);
  const uint64_t id = m.enqueue(proto::PAUSE);
  m.resume();
  EXPECT_TRUE(m.pending().empty());
  EXPECT_FALSE(m.paused());
  m.report(report(1, proto::PAUSE, id));  // rank 0 saw it before the RESUME: still a valid report
  EXPECT_FALSE(m.paused());
}

TEST(PhaseMachine, ImpossibleReportsThrow) {
  PhaseMachine m(plan(1, 1), 3);
  m.begin_epoch_end(1);
  m.report(report(5, proto::EVAL, 0, 1));
  EXPECT_THROW(m.report(report(5, proto::EVAL)), Error);      // phase id not increasing
  EXPECT_THROW(m.report(report(4, proto::EVAL)), Error);
  EXPECT_THROW(m.report(report(6, proto::EVAL, 99)), Error);  // never issued
  const uint64_t id = m.enqueue(proto::CHECKPOINT);
  EXPECT_THROW(m.report(report(6, proto::EVAL, id)), Error);  // wrong kind
  EXPECT_THROW(m.report(report(6, proto::PHASE_NONE)), Error);
  EXPECT_EQ(m.history().size(), 1u) << "a refused report changes nothing";
  EXPECT_EQ(m.pending().size(), 1u);
  EXPECT_THROW(m.enqueue(proto::TRAIN), Error);
}

TEST(PhaseMachine, StopFinishesAndRefusesDirectives) {
  PhaseMachine m(plan(1, 1), 2);
  const uint64_t id = m.enqueue(proto::STOP);
  m.report(report(1, proto::STOP, id));
  EXPECT_TRUE(m.finished());
  EXPECT_FALSE(m.complete());
  EXPECT_EQ(m.state(), proto::STOP);
  EXPECT_THROW(m.enqueue(proto::EVAL), Error);

  PhaseMachine done(plan(1, 1), 2);
  done.begin_epoch_end(2);
  done.report(report(1, proto::EVAL, 0, 2));
  done.report(report(2, proto::CHECKPOINT, 0, 2));
  proto::PhaseReport last = report(3, proto::STOP, 0, 2);
  last.set_finished(true);
  done.report(last);
  EXPECT_TRUE(done.finished());
  EXPECT_TRUE(done.complete());
}

TEST(PhaseMachine, RestartKeepsHistoryAndDirectivesDropsPause) {
  PhaseMachine m(plan(1, 1), 3);
  m.begin_epoch_end(1);
  m.report(report(7, proto::EVAL, 0, 1));
  const uint64_t ev = m.enqueue(proto::EVAL);
  m.enqueue(proto::PAUSE);
  m.reset_for_restart();
  EXPECT_FALSE(m.paused());
  ASSERT_EQ(m.pending().size(), 1u);
  EXPECT_EQ(m.pending()[0].id(), ev);
  EXPECT_EQ(m.history().size(), 1u);
  m.report(report(3, proto::EVAL, ev));  // the new attempt counts phase ids from its checkpoint
  EXPECT_TRUE(m.pending().empty());
  EXPECT_EQ(m.history().size(), 2u);
}

// Reports are held to the phases the machine issued; each refusal names the field and its value
// and changes nothing.
void expect_refused(PhaseMachine& m, const proto::PhaseReport& r, const std::string& names, bool resumed = false) {
  const size_t history = m.history().size();
  const uint64_t phase_id = m.phase_id();
  try {
    m.report(r, resumed);
    ADD_FAILURE() << "accepted: " << r.ShortDebugString();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(names), std::string::npos) << e.what();
  }
  EXPECT_EQ(m.history().size(), history) << "a refused report changed the history";
  EXPECT_EQ(m.phase_id(), phase_id);
}

TEST(PhaseMachine, KindMustBePlannedOrDirected) {
  PhaseMachine m(plan(2, 3), 4);
  expect_refused(m, report(1, proto::EVAL), "kind EVAL with directive_id 0 was not planned");  // a fake eval
  expect_refused(m, report(1, proto::TRAIN), "kind TRAIN");
  expect_refused(m, report(1, static_cast<proto::PhaseKind>(77)), "kind 77");
  expect_refused(m, report(1, proto::PAUSE), "kind PAUSE with directive_id 0 was not planned");
  m.begin_epoch_end(1);  // epoch 1: nothing planned
  expect_refused(m, report(1, proto::CHECKPOINT, 0, 1), "not planned");
  m.begin_epoch_end(2);  // EVAL
  m.report(report(1, proto::EVAL, 0, 2));
  expect_refused(m, report(2, proto::EVAL, 0, 2), "not planned") ;  // each planned phase once
  const uint64_t id = m.enqueue(proto::CHECKPOINT);
  m.report(report(2, proto::CHECKPOINT, id, 2));
  expect_refused(m, report(3, proto::CHECKPOINT, id, 2), "directive_id " + std::to_string(id) + " was already acknowledged");
  m.report(report(3, proto::STOP, 0, 2));  // a signal's STOP needs no directive
  EXPECT_TRUE(m.finished());
  expect_refused(m, report(4, proto::STOP, 0, 2), "already stopped");
}

TEST(PhaseMachine, PhaseIdEpochAndStepStayInBounds) {
  PhaseMachine m(plan(1, 1), 3);
  m.begin_epoch_end(1);
  // 2^62, as a hostile client sent: refused, and the genuine next report still goes through.
  expect_refused(m, report(uint64_t{1} << 62, proto::EVAL, 0, 1), "phase_id 4611686018427387904");
  expect_refused(m, report(2 * PhaseMachine::kMaxPhasesPerEpoch + 1, proto::EVAL, 0, 1),
                 "phase_id " + std::to_string(2 * PhaseMachine::kMaxPhasesPerEpoch + 1));
  expect_refused(m, report(2, proto::EVAL, 0, 4), "epoch 4 is outside [0, 3]");
  expect_refused(m, report(2, proto::EVAL, 0, -1), "epoch -1");
  proto::PhaseReport negative_step = report(2, proto::EVAL, 0, 1);
  negative_step.set_step(-5);
  expect_refused(m, negative_step, "step -5");
  proto::PhaseReport eval = report(2, proto::EVAL, 0, 1);
  eval.set_step(100);
  m.report(eval);
  proto::PhaseReport back = report(3, proto::CHECKPOINT, 0, 1);
  back.set_step(99);
  expect_refused(m, back, "step 99 is below the previous report's step 100");
  m.begin_epoch_end(2);
  expect_refused(m, report(4, proto::EVAL, 0, 0), "epoch 0 is below the previous report's epoch 1");
  // The bound grows with the epochs advanced: phase 2 at epoch 1, so epoch 3 allows 2 + 16 * 3.
  m.begin_epoch_end(3);
  proto::PhaseReport far = report(2 + 3 * PhaseMachine::kMaxPhasesPerEpoch, proto::EVAL, 0, 3);
  far.set_step(300);
  m.report(far);
  EXPECT_EQ(m.phase_id(), 2 + 3 * PhaseMachine::kMaxPhasesPerEpoch);
}

TEST(PhaseMachine, EvalFiguresMustBeAProbabilityAndAFiniteLoss) {
  PhaseMachine m(plan(1, 1), 3);
  m.begin_epoch_end(1);
  for (double acc : {1.5, -0.1, std::nan("")}) {
    proto::PhaseReport r = report(1, proto::EVAL, 0, 1);
    r.set_test_accuracy(acc);
    expect_refused(m, r, "test_accuracy");
  }
  for (double loss : {std::nan(""), std::numeric_limits<double>::infinity(), -1.0}) {
    proto::PhaseReport r = report(1, proto::EVAL, 0, 1);
    r.set_test_loss(loss);
    expect_refused(m, r, "test_loss");
  }
  proto::PhaseReport ok = report(1, proto::EVAL, 0, 1);
  ok.set_test_accuracy(1.0);
  ok.set_test_loss(0.0);
  m.report(ok);
}

TEST(PhaseMachine, FinishedOnlyAfterTheLastEpochsPlan) {
  PhaseMachine m(plan(1, 1), 2);
  proto::PhaseReport fin = report(1, proto::STOP, 0, 2);
  fin.set_finished(true);
  expect_refused(m, fin, "finished is true, but the last epoch's phases (epoch 2) were never planned");
  proto::PhaseReport early = report(1, proto::STOP, 0, 1);
  early.set_finished(true);
  expect_refused(m, early, "finished is true at epoch 1");
  proto::PhaseReport eval_fin = report(1, proto::EVAL, 0, 2);
  eval_fin.set_finished(true);
  m.begin_epoch_end(2);
  expect_refused(m, eval_fin, "finished is true, but only rank 0's STOP");
  expect_refused(m, fin, "finished is true while the last epoch's EVAL is not reported");
  EXPECT_FALSE(m.finished()) << "ctl commands are still taken";
  EXPECT_NO_THROW(m.enqueue(proto::EVAL));
  m.report(report(1, proto::EVAL, 0, 2));
  m.report(report(2, proto::CHECKPOINT, 0, 2));
  fin.set_phase_id(3);
  m.report(fin);
  EXPECT_TRUE(m.complete());

  // A job resumed from a checkpoint taken after its last epoch finishes without a new plan.
  PhaseMachine resumed(plan(1, 1), 2);
  fin.set_phase_id(1);
  expect_refused(resumed, fin, "never planned");
  resumed.report(fin, /*from_checkpoint=*/true);
  EXPECT_TRUE(resumed.complete());
}

}  // namespace
}  // namespace lockstep
