// validate_state with gradient accumulation: checkpoints are taken between optimizer steps, so
// epoch_step (micro-batches) is a multiple of accumulate_steps and step counts optimizer steps:
// step == epoch * floor(steps / k) + epoch_step / k.
#include <gtest/gtest.h>

#include <string>

#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint_validate.h"

namespace lockstep {
namespace {

proto::CheckpointState state(int64_t epoch, int64_t epoch_step, uint64_t step) {
  proto::CheckpointState s;
  s.set_world_size(1);
  s.set_epoch(epoch);
  s.set_epoch_step(epoch_step);
  s.set_step(step);
  return s;
}

std::string error_of(const proto::CheckpointState& s, int64_t k) {
  try {
    validate_state(s, {.epochs = 3, .steps_per_epoch = 10, .accumulate_steps = k, .world_size = 1}, "d");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ValidateAccumulation, StepCountsOptimizerSteps) {
  // 10 micro-batches an epoch at k = 3: 3 optimizer steps an epoch (one micro-batch left over).
  EXPECT_EQ(error_of(state(1, 6, 5), 3), "");
  EXPECT_EQ(error_of(state(2, 0, 6), 3), "");
  EXPECT_NE(error_of(state(1, 6, 16), 3).find("step: epoch 1 micro-batch 6 of 10 per epoch at 3 per optimizer step is step 5, got 16"),
            std::string::npos)
      << error_of(state(1, 6, 16), 3);
  EXPECT_EQ(error_of(state(1, 6, 16), 1), "") << "without accumulation, step == epoch * steps + epoch_step";
}

TEST(ValidateAccumulation, EpochStepInsideAnOptimizerStepIsRefused) {
  const std::string e = error_of(state(1, 4, 4), 3);
  EXPECT_NE(e.find("epoch_step: must be a multiple of accumulate_steps 3"), std::string::npos) << e;
}

}  // namespace
}  // namespace lockstep
