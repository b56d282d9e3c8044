// The coordinator's training speed and ETA: from a window of the step counter, so one slow step
// does not swing them ("samples/s comes from the last step alone, so the ETA swings from 0:55 to
// 32:38:40"). The reference is the formula steps / seconds over the window, computed here.
#include "launcher/coordinator/step_rate.h"

#include <gtest/gtest.h>

#include <thread>

#include "launcher/coordinator/status_format.h"
#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

using Clock = StepRate::Clock;

Clock::time_point at(double s) {
  return Clock::time_point() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

TEST(StepRate, OneSlowStepMovesTheRateByItsShareOnly) {
  StepRate rate;
  // 10 steps/s for 20 s (one heartbeat every 0.5 s), then one step that took 10 s.
  double t = 0;
  int64_t step = 0;
  for (; t <= 20; t += 0.5, step += 5) rate.add(at(t), step);
  const double before = rate.steps_per_sec();
  EXPECT_NEAR(before, 10.0, 1e-9);
  t = 20 + 10;
  step = 200 + 1;  // 10 steps/s for 20 s, then the slow one
  rate.add(at(t), step);
  // The window keeps one observation at or beyond 30 s back: the first one at t = 0.
  const double want = static_cast<double>(step - 0) / (t - 0);
  EXPECT_NEAR(rate.steps_per_sec(), want, 1e-9);
  // The last step alone says 0.1 steps/s; the window stays above a third of the steady rate.
  EXPECT_GT(rate.steps_per_sec(), before / 3);
}

TEST(StepRate, WindowForgetsOldSpeedAndRestartsOnAResume) {
  StepRate rate;
  EXPECT_EQ(rate.steps_per_sec(), 0) << "no rate from nothing";
  rate.add(at(0), 0);
  rate.add(at(0.5), 10);
  EXPECT_EQ(rate.steps_per_sec(), 0) << "no rate over less than kMinSpanS";
  // 1 step/s for 100 s, then 4 steps/s for 60 s (a heartbeat a second): after a whole window only
  // the new speed counts.
  int64_t step = 10;
  double t = 0.5;
  for (int i = 0; i < 100; ++i) rate.add(at(t += 1), step += 1);
  EXPECT_NEAR(rate.steps_per_sec(), 1.0, 1e-9);
  for (int i = 0; i < 60; ++i) rate.add(at(t += 1), step += 4);
  EXPECT_NEAR(rate.steps_per_sec(), 4.0, 1e-9);
  // The counter went back (a restart from a checkpoint): a fresh window.
  rate.add(at(t + 1), 3);
  EXPECT_EQ(rate.steps_per_sec(), 0);
  rate.add(at(t + 3), 7);
  EXPECT_NEAR(rate.steps_per_sec(), 2.0, 1e-9);
}

// In-process: rank 0's heartbeats carry a steady step counter and, at the end, a last step that
// took 100 times as long. The status's rate and the ETA follow the counter, not that step.
TEST(StepRate, StatusRateAndEtaComeFromTheWindow) {
  const std::string token = new_token();
  proto::JobSpec job = testing::small_job(4);
  job.set_batch_size(64);
  CoordinatorServer server(job, 1, testing::server_options(token));
  CoordinatorClient c(testing::client_options(server, testing::worker_secret_for(token)));
  c.register_worker(testing::register_request(0, 1));
  const int64_t steps_per_epoch = 1000;
  proto::StepMetrics m;
  m.set_steps_per_epoch(steps_per_epoch);
  m.set_epoch(1);
  m.set_step_time_s(0.01);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t step = 0;
  for (int i = 0; i < 16; ++i, step += 5) {
    m.set_step(step);
    c.heartbeat_now(0, m);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  m.set_step(step);
  m.set_step_time_s(1.0);  // the slow last step
  c.heartbeat_now(0, m);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double want = static_cast<double>(step) / secs;  // steps over the heartbeats' span (an upper bound on it)
  const proto::JobStatus s = server.status();
  ASSERT_EQ(s.ranks_size(), 1);
  EXPECT_GT(s.ranks(0).steps_per_sec(), want * 0.9);
  EXPECT_LT(s.ranks(0).steps_per_sec(), want * 1.25);
  EXPECT_DOUBLE_EQ(s.ranks(0).samples_per_sec(), s.ranks(0).steps_per_sec() * 64);
  const double eta = status_format::eta_seconds(s);
  const double want_eta = static_cast<double>(4 * steps_per_epoch - step) / s.ranks(0).steps_per_sec();
  EXPECT_NEAR(eta, want_eta, 1e-6);
  // What the last step alone gives: 1 step/s, an ETA over an hour instead of about two minutes.
  EXPECT_LT(eta, (4 * steps_per_epoch - step) / 1.0 / 10);
}

}  // namespace
}  // namespace lockstep
