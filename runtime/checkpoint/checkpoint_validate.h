// A checkpoint is data from outside: its CRCs prove it is what was written, not that what was
// written fits this job. validate_state checks every field of state.pb against the run it is about
// to resume, so a bad value is one line naming the checkpoint and the field instead of a crash or an
// internal check deep in the training loop.
#pragma once

#include <cstdint>
#include <string>

#include "proto/checkpoint.pb.h"

namespace lockstep {

// What the resuming run has; -1 where the caller does not know it (that check is skipped).
struct ResumeLimits {
  int64_t epochs = -1;           // the job's epochs: state.epoch must be in [0, epochs]
  int64_t steps_per_epoch = -1;  // sampler steps (micro-batches): epoch_step in [0, steps)
  // Micro-batches per optimizer step: epoch_step is a multiple of it and
  // step == epoch * floor(steps / accumulate_steps) + epoch_step / accumulate_steps.
  int64_t accumulate_steps = 1;
  int32_t world_size = -1;       // rng ranks in [0, world_size); world_size must match
  int64_t rng_consumers = -1;    // dropout layers: rng consumers "dropout.<i>", i in [0, n), each rank once
};

// Throws Error "checkpoint DIR: state.pb: FIELD: why, got VALUE", one line.
void validate_state(const proto::CheckpointState& s, const ResumeLimits& limits, const std::string& dir);

// The layer index of an rng consumer name "dropout.<i>" (digits only, no sign); -1 when the name
// has another form.
int64_t rng_consumer_index(const std::string& consumer);

}  // namespace lockstep
