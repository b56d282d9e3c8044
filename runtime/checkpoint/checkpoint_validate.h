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
  // The resuming run's ranks. A checkpoint may be written by another number of ranks N (see
  // check_world_size); its own records are checked against N (rng ranks in [0, N)).
  int32_t world_size = -1;
  int64_t batch_size = -1;       // the global batch: must divide by world_size when N differs
  int64_t rng_consumers = -1;    // dropout layers: rng consumers "dropout.<i>", i in [0, n), each rank once
};

// Throws Error "checkpoint DIR: state.pb: FIELD: why, got VALUE", one line.
// A world-size change is refused only where check_world_size refuses it.
void validate_state(const proto::CheckpointState& s, const ResumeLimits& limits, const std::string& dir);

// Resuming a checkpoint written by `saved` ranks on `now` ranks (Note [elastic resume] in
// launcher/worker/worker_state.cc): allowed when the global batch divides by `now`, since every
// rank holds the full replica and the sampler is a function of (seed, epoch, global batch).
// Throws Error, one line, naming the checkpoint, batch_size and both world sizes otherwise.
void check_world_size(int64_t saved, int64_t now, int64_t batch_size, const std::string& dir);

// The layer index of an rng consumer name "dropout.<i>" (digits only, no sign); -1 when the name
// has another form.
int64_t rng_consumer_index(const std::string& consumer);

}  // namespace lockstep
