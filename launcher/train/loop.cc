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
  const int64_t k = trainer.options().accumulate_steps;
  LOCKSTEP_FAIL_IF(k < 1 || k > steps) << "accumulate_steps: " << k << " must be in [1, " << steps
                                       << "], the micro-batches (sampler steps) of an epoch";
  const int64_t world = trainer.communicator()->size();
  std::vector<MicroBatch> micro(static_cast<size_t>(k));
  // The timeline (runtime/trace_recorder.h): steps and step agreements; null: off.
  TraceRecorder* const trace = trainer.trace();
  const uint32_t trace_agree = trace ? trace->intern("step agreement") : 0;
  const uint32_t trace_step = trace ? trace->intern("step") : 0;
  // A boundary: the global sums of the step just taken join the epoch's, then the driver acts.
  // Returns true when the driver stops the loop.
  auto boundary = [&](const StepSums& mine, bool epoch_end) {
    StepSums step;
    {
      TraceSpan span(trace, trace_agree, TraceCat::kAgreement);
      // Its collective, on the comm lane too (Note [collective tag]).
      TraceTagScope tag({.rec = trace, .name = trace_agree, .cat = TraceCat::kAgreement});
      step = hooks.reduce(trainer, mine);
    }
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
    double norm_sum = 0;
    int64_t norm_steps = 0;
    // One optimizer step per k sampler steps; a trailing steps mod k are not trained on.
    for (; pos.epoch_step + k <= steps; pos.epoch_step += k) {
      if (boundary(pending, false)) {
        out.stopped = true;
        return out;
      }
      if (trace) trace->begin_step(pos.step + 1);  // may write the trace file: before the step's clock
      TraceSpan step_span(trace, trace_step, TraceCat::kStep);
      step_span.arg(trace_step, static_cast<int64_t>(pos.step + 1));
      const auto t0 = Clock::now();
      double count = 0;
      for (int64_t i = 0; i < k; ++i) {
        MicroBatch& mb = micro[static_cast<size_t>(i)];
        batches.next(pos.epoch_step + i, mb.x, mb.y);
        mb.first_global_row = sampler.first_global_row();
        count += static_cast<double>(mb.y.numel());
      }
      trainer.begin_step(pos.step);  // a per-step schedule's lr for optimizer step pos.step + 1
      StepReport r;
      try {
        r.loss = trainer.train_step(micro);
      } catch (const NonFiniteStep& e) {
        throw NonFiniteStep("step " + std::to_string(pos.step + 1) + " (epoch " + std::to_string(pos.epoch + 1) +
                            "): " + e.what());
      }
      r.skipped = trainer.last_step_skipped();
      r.lr = trainer.last_lr();
      r.grad_norm = trainer.last_grad_norm();
      if (!r.skipped) {
        r.sums = {r.loss * count, count};
        if (r.grad_norm >= 0) {
          norm_sum += r.grad_norm;
          ++norm_steps;
        }
      }
      r.seconds = seconds_since(t0);
      pending = r.sums;
      ++pos.step;
      hooks.after_step(pos, r);
    }
    const int64_t pos_end = pos.epoch_step;  // sampler steps trained on by the end of the epoch
    // The epoch's last step closes with a boundary of its own; a directive that came during it runs now.
    const bool stop = boundary(pending, true);
    const double secs = seconds_since(epoch_start);
    if (stop) {
      out.stopped = true;
      return out;
    }
    EpochMetrics m;
    m.epoch = pos.epoch;  // 1-based: the epoch just finished
    m.step = static_cast<int64_t>(pos.step);
    m.lr = trainer.lr();  // the lr the epoch's last step used: a per-step schedule sets it before a step
    if (norm_steps > 0) m.grad_norm = norm_sum / static_cast<double>(norm_steps);
    m.train_loss = pos.epoch_samples > 0 ? pos.epoch_loss_sum / pos.epoch_samples : 0.0;  // the epoch just ended
    // Global throughput: every rank trained shard_size samples per step in the same wall time.
    m.train_samples_per_sec =
        secs > 0 ? static_cast<double>((pos_end - first) * sampler.shard_size() * world) / secs : 0.0;
    out.epochs.push_back(m);
    if (hooks.at_epoch_end(out.epochs.back())) {
      out.stopped = true;
      return out;
    }
  }
  return out;
}

}  // namespace lockstep
