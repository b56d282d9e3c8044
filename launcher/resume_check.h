// What a resume may change: everything that shapes the training trajectory (model, data, optimizer,
// schedule, seed, batch, distributed settings) must be what the checkpoint was written with; only
// epochs, the phase plan, run_dir, metrics_file, tensorboard, name, eval (the metrics reported) and
// model.init_from (a resume's weights are the checkpoint's) may change, and the number of ranks
// when the global batch divides by the new one (check_world_size). Checked
// before any worker starts, naming each changed field.
#pragma once

#include <string>
#include <vector>

#include "proto/job.pb.h"

namespace lockstep {

// The part of a job a checkpoint binds, with data.dir canonical (a symlink to the same files is
// the same data).
proto::JobSpec trajectory_spec(const proto::JobSpec& job);

// Hash of what determines the training trajectory (trajectory_spec in launcher/resume_check.h:
// data.dir canonical); epochs, the phase plan, run_dir, metrics_file, name and eval may change on resume.
std::string job_hash(const proto::JobSpec& job);

// Field paths that differ between the trajectory specs of two jobs, e.g.
// {"optimizer.lr", "model.layers[2].linear.out_features"}; empty when the resume is allowed.
std::vector<std::string> changed_job_fields(const proto::JobSpec& saved, const proto::JobSpec& now);

// For `launch --resume` (and `coordinator --resume`): reads the newest valid checkpoint of run_dir
// (none: nothing to check) and throws Error, one line, when the job changed since it was written
// ("checkpoint DIR: the job changed since this checkpoint: optimizer.lr, batch_size; ..."), or when
// a field of the checkpoint does not fit this job (epoch, epoch_step against the steps per epoch of
// the data set, step counts, rng consumers and ranks, tensor names and shapes, a world size the
// global batch does not divide by: check_world_size). Call it after
// check_job_for_launch (the data set must be readable).
void check_resume(const proto::JobSpec& job, const std::string& run_dir, int world_size);

// The world-size part of check_resume alone, before the job's own checks (which would refuse the
// batch without naming the checkpoint's ranks): throws Error, one line naming batch_size and both
// world sizes, when the newest valid checkpoint was written by another number of ranks and
// batch_size does not divide by world_size. Nothing to check without a valid checkpoint.
void check_resume_world_size(const proto::JobSpec& job, const std::string& run_dir, int world_size);

}  // namespace lockstep
