// The one place a job's samples become steps: every command (lockstep train on one or many ranks,
// lockstep launch's workers) builds its DistributedSampler from here, so one job file means the same
// steps whatever runs it.
#pragma once

#include <string>

#include "proto/job.pb.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/data/prefetcher.h"

namespace lockstep {

// data.drop_last and distributed.remainder resolved to one policy (see job.proto). Throws Error
// "PATH: data.drop_last: ..." when both are set and disagree.
RemainderPolicy remainder_policy(const proto::JobSpec& job, const std::string& path = "job");

// The sampler options of rank `rank` of `world`.
DistributedSamplerOptions sampler_options(const proto::JobSpec& job, int rank, int world);

// data.augment (seeded with the job's seed) and data.prefetch_batches (default 2).
InputOptions input_options(const proto::JobSpec& job);

}  // namespace lockstep
