// Per-step learning-rate schedules against torch.optim.lr_scheduler (tests/golden/gen_loop.py):
// each schedule's lr for optimizer steps 1..101 (lr_at(t), t = 0..100) within 1e-6 relative of
// PyTorch's get_last_lr() stepped once per step.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>

#include "runtime/check.h"
#include "runtime/optim/lr_schedule.h"
#include "tests/golden_io.h"

namespace lockstep {
namespace {

constexpr float kBase = 0.1f;

const std::map<std::string, Tensor>& golden() {
  static const auto g = testing::load_golden("loop_golden.safetensors");
  return g;
}

void expect_matches(const std::string& key, const LrSchedule& s) {
  const Tensor& want = testing::at(golden(), "sched." + key);
  ASSERT_EQ(want.numel(), 101) << key;
  for (int64_t t = 0; t < want.numel(); ++t) {
    const double w = want[t], got = s.lr_at(t);
    EXPECT_NEAR(got, w, 1e-6 * std::fabs(w) + 1e-12) << key << " t=" << t;
  }
}

TEST(PerStepSchedule, LinearWarmupMatchesLinearLR) {
  expect_matches("warmup_linear", LinearLr(kBase, 0.1f, 1.f, 20));
}

TEST(PerStepSchedule, WarmupThenCosineMatchesSequentialLR) {
  expect_matches("warmup_cosine", LinearWarmup(std::make_unique<CosineLr>(kBase, 90, 1e-4f), 0.25f, 10));
}

// torch 1.13 raises ZeroDivisionError stepping LinearLR(start_factor=0); the golden is its closed
// form. The lr starts at 0 and is not held there.
TEST(PerStepSchedule, WarmupFromZeroFollowsTheClosedForm) {
  LinearLr s(kBase, 0.f, 1.f, 25);
  expect_matches("warmup_zero", s);
  EXPECT_EQ(s.lr_at(0), 0.f);
  EXPECT_NEAR(s.lr_at(1), kBase / 25, 1e-9);
  LinearWarmup w(std::make_unique<ConstantLr>(kBase), 0.f, 25);
  expect_matches("warmup_zero", w);
}

TEST(PerStepSchedule, CosineMatchesCosineAnnealingLR) { expect_matches("cosine", CosineLr(kBase, 100, 1e-3f)); }

TEST(PerStepSchedule, OneCycleMatchesOneCycleLR) {
  expect_matches("one_cycle", OneCycleLr(kBase, {.total_steps = 100}));
  expect_matches("one_cycle_linear", OneCycleLr(kBase, {.total_steps = 120, .pct_start = 0.25, .div_factor = 10,
                                                        .final_div_factor = 100, .anneal_cos = false}));
}

TEST(PerStepSchedule, OneCycleRefusesToStepPastTotalSteps) {
  OneCycleLr s(kBase, {.total_steps = 10});
  EXPECT_NO_THROW(s.lr_at(10));
  EXPECT_THROW(s.lr_at(11), Error);
}

TEST(PerStepSchedule, LinearDecayMatchesLinearLRAndPolynomialLR) {
  expect_matches("linear_decay", LinearLr(kBase, 1.f, 0.f, 100));
  expect_matches("polynomial1", PolynomialLr(kBase, 100, 1.f));
  expect_matches("polynomial2", PolynomialLr(kBase, 80, 2.f));
}

TEST(PerStepSchedule, RefusesOutOfRangeArguments) {
  EXPECT_THROW(LinearLr(kBase, -0.1f, 1.f, 5), Error);
  EXPECT_THROW(LinearLr(kBase, 0.5f, 1.f, 0), Error);
  EXPECT_THROW(PolynomialLr(kBase, 0, 1.f), Error);
  EXPECT_THROW(OneCycleLr(kBase, {.total_steps = 0}), Error);
  EXPECT_THROW(OneCycleLr(kBase, {.total_steps = 10, .pct_start = 1.0}), Error);
  EXPECT_THROW(LinearWarmup(std::make_unique<ConstantLr>(kBase), 1.5f, 5), Error);
}

}  // namespace
}  // namespace lockstep
