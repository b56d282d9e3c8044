// The training loop, the one every command runs (`lockstep train` on one rank or many, the
// launched worker, users' programs through Trainer::fit): epochs of steps over a
// DistributedSampler's shards, one optimizer step every accumulate_steps sampler steps
// (micro-batches), the schedule stepped per epoch or per optimizer step, resumable at any
// optimizer-step boundary. A driver
// plugs in at the step boundaries and epoch ends through LoopHooks: the worker's agreement and
// phases, `lockstep train`'s per-epoch eval and print, a test's callbacks.
//
// Note [step boundary]: a boundary comes before every step of an epoch and once after its last.
// At each, every rank learns the global loss sums of the step just taken (LoopHooks::reduce, one
// collective), so the epoch's train loss is the same figure, to the last bit, whoever drives the
// loop; a single process runs it on the "self" communicator.
#pragma once

#include <cstdint>
#include <vector>

#include "launcher/train/trainer.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"

namespace lockstep {

// Where a run is: optimizer steps since it started, the 0-based epoch the sampler is in and the
// sampler steps (micro-batches) of that epoch already taken, with their global loss sums (what a
// checkpoint resumes from; the sums count only while epoch_step > 0). Boundaries come only between
// optimizer steps, so with accumulate_steps k, epoch_step advances by k from one to the next.
struct TrainPosition {
  uint64_t step = 0;       // optimizer steps; a per-step schedule's t
  int64_t epoch = 0;
  int64_t epoch_step = 0;  // sampler steps (micro-batches) of the epoch
  double epoch_loss_sum = 0;  // the epoch's summed sample loss over its first epoch_step steps
  double epoch_samples = 0;   // and their samples
};

// Summed sample loss and sample count of one step.
struct StepSums {
  double loss_sum = 0;
  double count = 0;
};

// This rank's view of the step just taken.
struct StepReport {
  double loss = 0;     // this rank's mean batch loss (also when skipped)
  StepSums sums;       // this rank's sums; zero for a skipped step (it counts in no mean)
  bool skipped = false;
  double seconds = 0;  // wall time of gather and train_step
  double lr = 0;       // the lr this optimizer step used
  double grad_norm = -1;  // its pre-clip total gradient norm (< 0: no clipping configured)
};

// What a driver plugs into the loop. Every method runs at the same point on every rank.
class LoopHooks {
 public:
  virtual ~LoopHooks() = default;
  // Collective, at every boundary (Note [step boundary]): mine is this rank's sums of the step just
  // taken (zero before an epoch's first step); returns the sums over all ranks. The default is one
  // all-reduce; the worker folds it into its step agreement, so a boundary costs one collective.
  virtual StepSums reduce(Trainer& trainer, const StepSums& mine);
  // After reduce. pos is where the run is now: a checkpoint taken here resumes from it (after an
  // epoch's last step, epoch_end is true and pos is the next epoch's start); step holds the global
  // sums of the step just taken. A hook that starts phases of its own (Trainer::begin_phase) is
  // followed by a new train phase. Returns true to stop the loop now.
  virtual bool at_boundary(const TrainPosition& /*pos*/, const StepSums& /*step*/, bool /*epoch_end*/) {
    return false;
  }
  // After every step; pos counts it.
  virtual void after_step(const TrainPosition& /*pos*/, const StepReport& /*r*/) {}
  // After an epoch's closing boundary, with epoch, lr, train_loss and train_samples_per_sec filled
  // in; the test figures are the driver's (Trainer::evaluate). Returns true to stop the loop.
  virtual bool at_epoch_end(EpochMetrics& /*m*/) { return false; }
};

struct LoopResult {
  std::vector<EpochMetrics> epochs;  // the epochs finished by this call
  TrainPosition pos;                 // where the loop ended
  bool stopped = false;              // a hook stopped it
};

// Trains epochs [start.epoch, trainer's epochs) from step start.epoch_step of the first (with that
// epoch's loss so far), on this rank's shards of `sampler` over `data`. Collective; the trainer
// needs a communicator ("self" for one process). Each optimizer step takes the next
// accumulate_steps sampler steps; an epoch's last sampler_steps mod accumulate_steps are not
// trained on (as drop_last drops a partial batch). A NonFiniteStep is rethrown naming the step and
// epoch; accumulate_steps above the sampler steps of an epoch is an Error naming both.
LoopResult train_loop(Trainer& trainer, DistributedSampler& sampler, const Dataset& data, LoopHooks& hooks,
                      TrainPosition start = {});

}  // namespace lockstep
