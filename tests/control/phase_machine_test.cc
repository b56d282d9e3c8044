// PhaseMachine: the plan's phases per epoch against the formula, directive queue and
// acknowledgement order, pause/resume, impossible reports, restarts.
#include "launcher/coordinator/phase_machine.h"

#include <gtest/gtest.h>

#include "runtime/check.h"

namespace lockstep {
namespace {

proto::PhasePlan plan(int64_t eval_every, int64_t checkpoint_every) {
  proto::PhasePlan p;
  p.set_eval_every(eval_every);
  p.set_checkpoint_every(checkpoint_every);
  return p;
}

proto::PhaseReport report(uint64_t phase_id, proto::PhaseKind kind, uint64_t directive_id = 0) {
  proto::PhaseReport r;
  r.set_phase_id(phase_id);
  r.set_kind(kind);
  r.set_directive_id(directive_id);
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
  m.report(report(5, proto::EVAL));
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
  proto::PhaseReport last = report(3, proto::STOP);
  last.set_finished(true);
  done.report(last);
  EXPECT_TRUE(done.finished());
  EXPECT_TRUE(done.complete());
}

TEST(PhaseMachine, RestartKeepsHistoryAndDirectivesDropsPause) {
  PhaseMachine m(plan(1, 1), 3);
  m.report(report(7, proto::EVAL));
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

}  // namespace
}  // namespace lockstep
