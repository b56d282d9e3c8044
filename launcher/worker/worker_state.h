// What a checkpoint holds of a running data-parallel job, and how it is put back. Only rank 0
// touches the file system: saving gathers every rank's RNG state to it over the communicator;
// resuming reads on rank 0 and broadcasts weights, optimizer state, position and each rank's RNG
// state, so the ranks need no shared file system.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "comm/communicator.h"
#include "launcher/resume_check.h"  // job_hash
#include "launcher/train/loop.h"
#include "layers/sequential.h"
#include "proto/job.pb.h"
#include "runtime/optim/optimizer.h"

namespace lockstep {

// Where the job is (the training loop's position): what a checkpoint holds besides the tensors.
using JobPosition = TrainPosition;

// Collective. Rank 0 writes run_dir/checkpoints/ckpt-<step>/ atomically (keeping the plan's
// keep_checkpoints newest) and returns its path on every rank. If rank 0's write fails, every rank
// throws its message (the previous checkpoints are untouched).
std::string save_checkpoint(Communicator& comm, Module& model, Optimizer& opt, const proto::JobSpec& job,
                            const std::string& run_dir, const JobPosition& pos, uint32_t phase_id);

// Collective. Rank 0 finds the newest valid checkpoint (damaged ones are reported on stderr and
// skipped), checks that the job is the one it was written by (naming the changed fields), and every
// field of its state against this run (validate_state: epoch, epoch_step against steps_per_epoch
// when >= 0, step counts, rng consumers and ranks, a world size the global batch does not divide
// by; tensor names and shapes), then every rank restores weights, buffers, optimizer state and its
// own RNG state. A checkpoint of another world size is resumed as Note [elastic resume] in
// worker_state.cc says. nullopt (on every rank) when run_dir holds no valid checkpoint.
std::optional<JobPosition> restore_latest(Communicator& comm, Module& model, Optimizer& opt,
                                          const proto::JobSpec& job, const std::string& run_dir,
                                          std::string* from = nullptr, int64_t steps_per_epoch = -1);

}  // namespace lockstep
