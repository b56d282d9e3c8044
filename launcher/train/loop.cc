// The one epoch/step loop and its default boundary reduction.
#include "launcher/train/loop.h"

#include <chrono>
#include <span>
#include <string>

#include "runtime/check.h"

namespace lockstep {

using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

StepSums LoopHooks::reduce(Trainer& trainer, const StepSums& mine) {
  std::vector<double> sums{mine.loss_sum, mine.count};
  Communicator& comm = *trainer.communicator();
  if (comm.size() > 1) comm.all_reduce(std::span<double>(sums), ReduceOp::kSum).wait();
  return {sums[0], sums[1]};
}

LoopResult train_loop(Trainer& trainer, DistributedSampler& sampler, const Dataset& data, LoopHooks& hooks,
                      TrainPosition start) {
  LOCKSTEP_CHECK(trainer.communicator()) << "the training loop needs a communicator (\"self\" for one process)";
  LoopResult out;
  TrainPosition& pos = out.pos;
  pos = start;
  const int64_t steps = sampler.num_steps();
  const int64_t world = trainer.communicator()->size();
  Tensor x, y;
  // A boundary: the global sums of the step just taken join the epoch's, then the driver acts.
  // Returns true when the driver stops the loop.
  auto boundary = [&](const StepSums& mine, bool epoch_end) {
    const StepSums step = hooks.reduce(trainer, mine);
    pos.epoch_loss_sum += step.loss_sum;
    pos.epoch_samples += step.count;
    if (epoch_end) {
      ++pos.epoch;  // where a checkpoint taken now resumes from
      pos.epoch_step = 0;
    }
    const uint32_t phase = trainer.phase_id();
    if (hooks.at_boundary(pos, step, epoch_end)) return true;
    if (!epoch_end && trainer.phase_id() != phase) trainer.begin_phase(CommMode::kTrain);
    return false;
  };
  for (; pos.epoch < trainer.options().epochs;) {
    trainer.begin_epoch(pos.epoch);
    sampler.set_epoch(pos.epoch);
    trainer.begin_phase(CommMode::kTrain);
    // Resumed mid-epoch, the sums hold its steps so far; at an epoch's start, the previous epoch's.
    if (pos.epoch_step == 0) pos.epoch_loss_sum = pos.epoch_samples = 0;
    const auto epoch_start = Clock::now();
    const int64_t first = pos.epoch_step;
    BatchPrefetcher batches(data, sampler, first, trainer.options().input);  // joins on every exit
    StepSums pending;  // this rank's sums of the step just taken
    for (; pos.epoch_step < steps; ++pos.epoch_step) {
      if (boundary(pending, false)) {
        out.stopped = true;
        return out;
      }
      const auto t0 = Clock::now();
      batches.next(pos.epoch_step, x, y);
      StepReport r;
      try {
        r.loss = trainer.train_step(x, y, sampler.first_global_row());
      } catch (const NonFiniteStep& e) {
        throw NonFiniteStep("step " + std::to_string(pos.step + 1) + " (epoch " + std::to_string(pos.epoch + 1) +
                            "): " + e.what());
      }
      r.skipped = trainer.last_step_skipped();
      if (!r.skipped) r.sums = {r.loss * static_cast<double>(y.numel()), static_cast<double>(y.numel())};
      r.seconds = seconds_since(t0);
      pending = r.sums;
      ++pos.step;
      hooks.after_step(pos, r);
    }
    // The epoch's last step closes with a boundary of its own; a directive that came during it runs now.
    const bool stop = boundary(pending, true);
    const double secs = seconds_since(epoch_start);
    if (stop) {
      out.stopped = true;
      return out;
    }
    EpochMetrics m;
    m.epoch = pos.epoch;  // 1-based: the epoch just finished
    m.lr = trainer.lr();
    m.train_loss = pos.epoch_samples > 0 ? pos.epoch_loss_sum / pos.epoch_samples : 0.0;  // the epoch just ended
    // Global throughput: every rank trained shard_size samples per step in the same wall time.
    m.train_samples_per_sec =
        secs > 0 ? static_cast<double>((steps - first) * sampler.shard_size() * world) / secs : 0.0;
    out.epochs.push_back(m);
    if (hooks.at_epoch_end(out.epochs.back())) {
      out.stopped = true;
      return out;
    }
  }
  return out;
}

}  // namespace lockstep
