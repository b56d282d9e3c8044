// The one place a job becomes a replica: a validated JobSpec and this rank's communicator give the
// data sets, the model (seeded, SyncBatchNorm and dropout keying as the job says), its optimizer,
// schedule and loss, the sampler of this rank's shards and the Trainer. `lockstep train` and the
// launched worker both build here, so one job file means one model and one run whatever runs it.
#pragma once

#include <memory>

#include "comm/communicator.h"
#include "launcher/job_builder.h"
#include "launcher/train/trainer.h"
#include "layers/loss.h"
#include "proto/job.pb.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"

namespace lockstep {

// Everything one rank trains with. Not movable: the trainer holds references to its members.
struct Replica {
  Dataset train_set, test_set;
  BuiltModel built;
  std::unique_ptr<Optimizer> opt;
  std::unique_ptr<LrSchedule> schedule;  // null: constant lr
  CrossEntropyLoss loss;
  std::unique_ptr<DistributedSampler> sampler;
  DistributedOptions dopt;
  std::unique_ptr<Trainer> trainer;
};

// Collective (the Trainer broadcasts rank 0's weights and buffers). Loads the job's data with its
// mean/std, builds and checks the model against the data, converts BatchNorm to SyncBatchNorm when
// distributed.sync_batchnorm and comm has several ranks, seeds dropout per rank or per sample,
// and sets the kernel threads and the trainer's precision. Throws Error, one line, for a model that
// does not fit the data or a precision this CPU cannot run ("precision: BF16 needs ...").
std::unique_ptr<Replica> build_replica(const proto::JobSpec& job, Communicator& comm);

}  // namespace lockstep
