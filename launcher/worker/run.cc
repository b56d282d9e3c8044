// The worker's step loop and its phases.
#include "launcher/worker/run.h"

#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "launcher/job_builder.h"
#include "launcher/job_sampler.h"
#include "launcher/metrics_log.h"
#include "launcher/worker/step_control.h"
#include "launcher/worker/worker_state.h"
#include "layers/dropout.h"
#include "layers/loss.h"
#include "layers/sync_batch_norm.h"
#include "runtime/check.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/gemm.h"
#include "launcher/train/trainer.h"

namespace lockstep {
namespace {

using Clock = std::chrono::steady_clock;
using proto::PhaseKind;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Everything one rank needs while it trains.
class Worker {
 public:
  explicit Worker(const WorkerSetup& w);
  int run();

 private:
  Boundary my_boundary(double loss_sum, double count);
  // Runs the agreed phases; returns true when the job must stop now.
  bool run_phases(const Boundary& b);
  void eval_phase(uint64_t directive_id);
  std::string checkpoint_phase(uint64_t directive_id, PhaseKind kind);
  void pause_phase(uint64_t directive_id);
  void report(PhaseKind kind, uint64_t directive_id, bool finished = false);
  void publish(double step_time);
  void log_step(const Boundary& b);
  int stopped();  // after a STOP phase: the final figures to the coordinator, for the summary

  const WorkerSetup& w_;
  const proto::JobSpec& job_;
  Communicator& comm_;
  const bool lead_;
  std::string run_dir_;
  Dataset train_set_, test_set_;
  BuiltModel built_;
  std::unique_ptr<Optimizer> opt_;
  std::unique_ptr<LrSchedule> schedule_;
  CrossEntropyLoss loss_;
  std::unique_ptr<DistributedSampler> sampler_;
  std::unique_ptr<Trainer> trainer_;
  std::unique_ptr<MetricsLog> log_;
  JobPosition pos_;
  uint64_t done_directive_ = 0;  // rank 0: newest directive acted upon
  EvalResult last_eval_;
  bool evaluated_ = false;
  std::string last_checkpoint_;
  double epoch_loss_sum_ = 0, epoch_count_ = 0;
  StepMetricsBoard& board_;  // what the heartbeats send (see Note [heartbeat lifetime])
  double samples_per_sec_ = 0;
};

Worker::Worker(const WorkerSetup& w)
    : w_(w), job_(w.reg.job()), comm_(*w.comm), lead_(w.comm->rank() == 0), run_dir_(w.reg.run_dir()),
      board_(*w.board) {
  const auto& d = job_.data();
  const auto& dist = job_.distributed();
  set_kernel_threads(job_.threads() > 0 ? job_.threads() : 1);
  const float mean = d.has_mean() ? d.mean() : 0.2860f, stdv = d.has_std() ? d.std() : 0.3530f;
  train_set_ = load_fashion_mnist(d.dir(), true, mean, stdv);
  test_set_ = load_fashion_mnist(d.dir(), false, mean, stdv);
  built_ = build_model(job_);
  check_model_input(built_, train_set_);
  if (comm_.size() > 1 && dist.sync_batchnorm()) convert_sync_batchnorm(*built_.model, comm_);
  const bool per_sample = dist.dropout_keying() == proto::DistributedSpec::PER_SAMPLE;
  seed_dropout(*built_.model, job_.seed(), static_cast<uint32_t>(comm_.rank()),
               per_sample ? DropoutKeying::kPerSample : DropoutKeying::kPerRank);
  opt_ = build_optimizer(job_, *built_.model);
  schedule_ = build_schedule(job_);
  sampler_ = std::make_unique<DistributedSampler>(train_set_.size(), sampler_options(job_, comm_.rank(), comm_.size()));
  std::string from;
  if (w.reg.resume()) {
    if (auto p = restore_latest(comm_, *built_.model, *opt_, job_, run_dir_, &from, sampler_->num_steps())) pos_ = *p;
    if (lead_)
      std::fprintf(stderr, "lockstep worker: %s\n",
                   from.empty() ? "no valid checkpoint to resume from; starting afresh"
                                : ("resuming from " + from + " (step " + std::to_string(pos_.step) + ")").c_str());
  }
  DistributedOptions dopt{.comm = &comm_,
                          .eval_buffers = dist.eval_buffers() == proto::DistributedSpec::AVERAGE ? BufferSync::kAverage
                                                                                                 : BufferSync::kBroadcast,
                          .per_sample_dropout = per_sample};
  if (dist.has_bucket_mb()) dopt.reducer.bucket_bytes = static_cast<int64_t>(dist.bucket_mb() * (1 << 20));
  trainer_ = std::make_unique<Trainer>(
      *built_.model, *opt_, loss_, schedule_.get(),
      TrainerOptions{.epochs = job_.epochs(), .eval_batch_size = job_.eval_batch_size() ? job_.eval_batch_size() : 1000,
                     .sample_shape = built_.sample_shape,
                     .on_nonfinite = job_.on_nonfinite() == proto::JobSpec::NONFINITE_SKIP_STEP
                                         ? NonFiniteAction::kSkipStep
                                         : NonFiniteAction::kStop},
      dopt);
  if (lead_) {
    std::string path = job_.metrics_file().empty() ? "metrics.jsonl" : job_.metrics_file();
    if (path[0] != '/') path = run_dir_ + "/" + path;
    log_ = std::make_unique<MetricsLog>(path, pos_.step > 0 ? MetricsLog::Open::kAppend : MetricsLog::Open::kTruncate);
  }
  board_.update([&](proto::StepMetrics& m) {
    m.set_steps_per_epoch(sampler_->num_steps());
    m.set_step(static_cast<int64_t>(pos_.step));
    m.set_epoch(pos_.epoch + 1);
    m.set_epoch_step(pos_.epoch_step);
  });
}

void Worker::publish(double step_time) {
  samples_per_sec_ = step_time > 0 ? static_cast<double>(job_.batch_size()) / step_time : 0.0;
  board_.update([&](proto::StepMetrics& m) {
    m.set_step(static_cast<int64_t>(pos_.step));
    m.set_epoch(pos_.epoch + 1);
    m.set_epoch_step(pos_.epoch_step);
    m.set_step_time_s(step_time);
    m.set_samples_per_sec(samples_per_sec_);
  });
}

// Rank 0's proposal: the oldest directive not yet acted on; a PAUSE in force.
Boundary Worker::my_boundary(double loss_sum, double count) {
  Boundary b;
  b.loss_sum = loss_sum;
  b.count = count;
  b.terminate = w_.terminate && w_.terminate->load();
  if (!lead_) return b;
  const proto::HeartbeatReply hb = w_.client->last_heartbeat();
  for (const proto::Directive& d : hb.pending())
    if (d.id() > done_directive_) {
      b.directive_id = d.id();
      b.phases = {d.kind()};
      break;
    }
  return b;
}

void Worker::report(PhaseKind kind, uint64_t directive_id, bool finished) {
  if (!lead_) return;
  proto::PhaseReport r;
  r.set_rank(0);
  r.set_phase_id(trainer_->phase_id());
  r.set_kind(kind);
  r.set_epoch(pos_.epoch_step > 0 ? pos_.epoch + 1 : pos_.epoch);  // 1-based: in progress, or just finished
  r.set_step(static_cast<int64_t>(pos_.step));
  r.set_directive_id(directive_id);
  if (evaluated_) {
    r.set_test_loss(last_eval_.loss());
    r.set_test_accuracy(last_eval_.accuracy());
  }
  r.set_checkpoint(last_checkpoint_);
  r.set_finished(finished);
  w_.client->report_phase(r);
}

void Worker::eval_phase(uint64_t directive_id) {
  last_eval_ = trainer_->evaluate(test_set_);  // starts its own (eval) phase
  evaluated_ = true;
  report(proto::EVAL, directive_id);
}

std::string Worker::checkpoint_phase(uint64_t directive_id, PhaseKind kind) {
  trainer_->begin_phase(CommMode::kNone);
  JobPosition at = pos_;
  if (at.epoch_step > 0) {  // mid-epoch: the epoch's loss so far travels with it
    at.epoch_loss_sum = epoch_loss_sum_;
    at.epoch_samples = epoch_count_;
  }
  last_checkpoint_ = save_checkpoint(comm_, *built_.model, *opt_, job_, run_dir_, at, trainer_->phase_id());
  report(kind, directive_id);
  return last_checkpoint_;
}

void Worker::pause_phase(uint64_t directive_id) {
  trainer_->begin_phase(CommMode::kNone);
  report(proto::PAUSE, directive_id);
  // Every rank loops on the agreement until rank 0 hears RESUME (or a STOP arrives); rank 0 asks
  // the coordinator at each turn, so no collective waits longer than the poll interval.
  for (;;) {
    bool paused = false;
    if (lead_) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      paused = w_.client->heartbeat_now(0, board_.get()).paused();
    }
    Boundary b = my_boundary(0, 0);
    if (paused && b.phases.empty()) b.phases = {proto::PAUSE};
    const Boundary agreed = agree(comm_, b);
    if (agreed.terminate || agreed.phases.empty() || agreed.phases[0] != proto::PAUSE) {
      // Resumed (or a STOP/other directive is next): the caller's next boundary acts on it.
      break;
    }
  }
}

bool Worker::run_phases(const Boundary& b) {
  if (b.terminate) {
    checkpoint_phase(0, proto::STOP);
    if (lead_) std::fprintf(stderr, "lockstep worker: stopped on a signal at step %llu; checkpoint %s\n",
                            static_cast<unsigned long long>(pos_.step), last_checkpoint_.c_str());
    return true;
  }
  // Acted upon from now: the pause loop must not take its own PAUSE for a new one.
  if (b.directive_id) done_directive_ = std::max(done_directive_, b.directive_id);
  for (PhaseKind k : b.phases) {
    switch (k) {
      case proto::EVAL: eval_phase(b.directive_id); break;
      case proto::CHECKPOINT: checkpoint_phase(b.directive_id, proto::CHECKPOINT); break;
      case proto::PAUSE: pause_phase(b.directive_id); break;
      case proto::STOP: checkpoint_phase(b.directive_id, proto::STOP); return true;
      default: break;
    }
  }
  return false;
}

void Worker::log_step(const Boundary& b) {
  if (b.count <= 0) return;
  epoch_loss_sum_ += b.loss_sum;
  epoch_count_ += b.count;
  const double loss = b.loss_sum / b.count;  // the global mean of the step just agreed
  board_.update([&](proto::StepMetrics& m) { m.set_loss(loss); });
  if (log_) log_->write(StepRecord{pos_.epoch + 1, static_cast<int64_t>(pos_.step), loss, samples_per_sec_});
}

int Worker::stopped() {
  try {
    w_.client->heartbeat_now(comm_.rank(), board_.get());
  } catch (const std::exception&) {  // the coordinator may already be gone; the checkpoint is written
  }
  return 0;
}

int Worker::run() {
  Tensor x, y;
  const int64_t steps = sampler_->num_steps();
  for (; pos_.epoch < job_.epochs(); ++pos_.epoch, pos_.epoch_step = 0) {
    if (schedule_) opt_->set_lr(schedule_->lr_at(pos_.epoch));
    sampler_->set_epoch(pos_.epoch);
    trainer_->begin_phase(CommMode::kTrain);
    epoch_loss_sum_ = pos_.epoch_step > 0 ? pos_.epoch_loss_sum : 0.0;  // resumed mid-epoch: its steps so far
    epoch_count_ = pos_.epoch_step > 0 ? pos_.epoch_samples : 0.0;
    const auto epoch_start = Clock::now();
    const int64_t first = pos_.epoch_step;
    double pending_sum = 0, pending_count = 0;
    for (; pos_.epoch_step < steps; ++pos_.epoch_step) {
      const Boundary agreed = agree(comm_, my_boundary(pending_sum, pending_count));
      log_step(agreed);
      if (!agreed.phases.empty() || agreed.terminate) {
        if (run_phases(agreed)) return stopped();
        trainer_->begin_phase(CommMode::kTrain);
      }
      const auto t0 = Clock::now();
      DistributedSampler::gather(train_set_, sampler_->shard(pos_.epoch_step), x, y);
      double loss = 0;
      try {
        loss = trainer_->train_step(x, y, sampler_->first_global_row());
      } catch (const NonFiniteStep& e) {
        throw Error("step " + std::to_string(pos_.step + 1) + " (epoch " + std::to_string(pos_.epoch + 1) + "): " +
                    e.what());
      }
      const bool skipped = trainer_->last_step_skipped();
      if (skipped && lead_)
        std::fprintf(stderr, "lockstep worker: step %llu (epoch %lld) skipped: %s\n",
                     static_cast<unsigned long long>(pos_.step + 1), static_cast<long long>(pos_.epoch + 1),
                     trainer_->last_skip_reason().c_str());
      pending_sum = skipped ? 0.0 : loss * static_cast<double>(y.numel());  // a skipped step counts in no mean
      pending_count = skipped ? 0.0 : static_cast<double>(y.numel());
      ++pos_.step;
      publish(seconds_since(t0));
    }
    // The epoch's last step is logged here; a directive that came during it runs now.
    Boundary last = agree(comm_, my_boundary(pending_sum, pending_count));
    log_step(last);
    pos_.epoch_step = 0;
    ++pos_.epoch;  // the position a checkpoint taken now resumes from
    if ((!last.phases.empty() || last.terminate) && run_phases(last)) return stopped();
    const double secs = seconds_since(epoch_start);
    EpochMetrics m;
    m.epoch = pos_.epoch;
    m.lr = opt_->lr();
    m.train_loss = epoch_count_ > 0 ? epoch_loss_sum_ / epoch_count_ : 0.0;
    m.train_samples_per_sec = secs > 0 ? static_cast<double>((steps - first) * job_.batch_size()) / secs : 0.0;
    // The plan's phases for this epoch, from the coordinator (rank 0), agreed by all.
    Boundary plan;
    if (lead_) {
      proto::NextPhasesRequest req;
      req.set_rank(0);
      req.set_epoch(pos_.epoch);
      req.set_train_loss(m.train_loss);
      const proto::NextPhasesReply reply = w_.client->next_phases(req);
      for (int k : reply.phases()) plan.phases.push_back(static_cast<PhaseKind>(k));
    }
    plan.terminate = w_.terminate && w_.terminate->load();
    const Boundary agreed = agree(comm_, plan);
    evaluated_ = false;
    const bool stop = run_phases(agreed);
    m.test_loss = evaluated_ ? last_eval_.loss() : -1.0;
    m.test_accuracy = evaluated_ ? last_eval_.accuracy() : -1.0;
    if (log_) log_->write(m);
    if (stop) return stopped();
    --pos_.epoch;  // the for loop's increment
  }
  trainer_->begin_phase(CommMode::kNone);
  w_.client->heartbeat_now(comm_.rank(), board_.get());  // the final figures, for the summary
  report(proto::STOP, 0, /*finished=*/true);
  comm_.barrier().wait();
  return 0;
}

}  // namespace

int run_worker(const WorkerSetup& w) {
  Worker worker(w);
  return worker.run();
}

}  // namespace lockstep

