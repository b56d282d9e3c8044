// The worker's step loop and its phases.
#include "launcher/worker/run.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <thread>

#include "launcher/launch/exit_status.h"
#include "launcher/job_file.h"
#include "launcher/metrics_log.h"
#include "launcher/replica.h"
#include "launcher/tensorboard/metrics_events.h"
#include "launcher/trace_setup.h"
#include "launcher/train/loop.h"
#include "launcher/worker/step_control.h"
#include "launcher/worker/step_times.h"
#include "launcher/worker/worker_state.h"
#include "runtime/check.h"

namespace lockstep {

void TraceHandle::snapshot() {
  std::lock_guard lk(mu_);
  if (rec_) rec_->snapshot();
}

namespace {

using proto::PhaseKind;

// Everything one rank needs while it trains; its phase control plugs into the training loop's
// step boundaries (launcher/train/loop.h): the loop's loss reduction is this rank's agreement.
class Worker : public LoopHooks {
 public:
  explicit Worker(const WorkerSetup& w);
  ~Worker() override {
    if (w_.trace) w_.trace->set(nullptr);
  }
  int run();
  int train();  // run() but for the timeline on an error

  StepSums reduce(Trainer& trainer, const StepSums& mine) override;
  bool at_boundary(const TrainPosition& pos, const StepSums& step, bool epoch_end) override;
  void after_step(const TrainPosition& pos, const StepReport& r) override;
  bool at_epoch_end(EpochMetrics& m) override;

 private:
  Boundary my_boundary(double loss_sum, double count);
  // Runs the agreed phases; returns true when the job must stop now.
  bool run_phases(const Boundary& b);
  void eval_phase(uint64_t directive_id);
  std::string checkpoint_phase(uint64_t directive_id, PhaseKind kind);
  void pause_phase(uint64_t directive_id);
  void report(PhaseKind kind, uint64_t directive_id, bool finished = false);
  void publish(double step_time);
  void time_step();  // after each step: its wall time and exposed communication into times_
  void warn_trace_range();  // rank 0: a --trace range this run never reaches is said at its start
  void finish_trace();  // this rank's timeline file, if tracing; a failure is a warning
  int stopped();  // after a STOP phase: the final figures to the coordinator, for the summary; kExitStopped
  // Note [stop at an epoch end]: a stop (signal or STOP directive) agreed at an epoch's closing
  // boundary is owed until the epoch's end phases have run; takes it out of b and remembers it.
  void defer_stop(Boundary& b);
  // The owed stop, after the epoch end: its checkpoint (unless the plan's was taken at this step)
  // and STOP report. Returns false, stopping nothing, when the job has no epoch left: it finishes.
  bool stop_after_epoch_end();

  const WorkerSetup& w_;
  const proto::JobSpec& job_;
  Communicator& comm_;
  const bool lead_;
  std::string run_dir_;
  std::unique_ptr<Replica> r_;
  Trainer* trainer_ = nullptr;  // r_'s
  std::unique_ptr<MetricsLog> log_;
  JobPosition pos_;  // the loop's, as of its last hook
  Boundary agreed_;  // the newest step agreement
  uint64_t done_directive_ = 0;  // rank 0: newest directive acted upon
  EvalResult last_eval_;
  bool evaluated_ = false;
  std::string last_checkpoint_;
  StepMetricsBoard& board_;  // what the heartbeats send (see Note [heartbeat lifetime])
  double samples_per_sec_ = 0;
  int64_t accumulate_ = 1;  // micro-batches per optimizer step (job accumulate_steps)
  // Straggler figures (step_times.h): wall time from the end of the previous step, and the
  // communication waited for inside it (step agreement + the reducer's finalize wait).
  StepTimes times_;
  const double step_delay_s_;  // LOCKSTEP_TEST_STEP_DELAY's sleep for this rank
  const uint64_t terminate_at_;  // LOCKSTEP_TEST_TERMINATE_AT's step (0: none)
  std::chrono::steady_clock::time_point prev_end_{};
  bool have_prev_ = false;
  double agree_s_ = 0, reducer_wait_s_ = 0;
  std::unique_ptr<TraceRecorder> trace_;  // null: no timeline (job.trace off)
  uint32_t trace_checkpoint_ = 0;
  bool stop_owed_ = false;        // Note [stop at an epoch end]
  bool stop_on_signal_ = false;   // the owed stop is a signal's (rank 0 says so in its stop line)
  uint64_t stop_directive_ = 0;   // the owed STOP directive's id (0: a signal's)
  uint64_t checkpoint_step_ = UINT64_MAX;  // the step of last_checkpoint_
};

Worker::Worker(const WorkerSetup& w)
    : w_(w), job_(w.reg.job()), comm_(*w.comm), lead_(w.comm->rank() == 0), run_dir_(w.reg.run_dir()),
      board_(*w.board), times_(heartbeat_of(w.reg.job()).straggler_window_steps),
      step_delay_s_(test_step_delay_s(w.comm->rank())), terminate_at_(test_terminate_at_step()) {
  r_ = build_replica(job_, comm_);
  trainer_ = r_->trainer.get();
  accumulate_ = trainer_->options().accumulate_steps;
  trace_ = make_trace_recorder(job_, comm_.rank(), run_dir_, comm_.size());
  trainer_->set_trace(trace_.get());
  if (trace_) trace_checkpoint_ = trace_->intern("checkpoint");
  if (trace_ && w.trace) w.trace->set(trace_.get());
  std::string from;
  if (w.reg.resume()) {
    if (auto p = restore_latest(comm_, *r_->built.model, *r_->opt, job_, run_dir_, &from, r_->sampler->num_steps()))
      pos_ = *p;
    if (lead_)
      std::fprintf(stderr, "lockstep worker: %s\n",
                   from.empty() ? "no valid checkpoint to resume from; starting afresh"
                                : ("resuming from " + from + " (step " + std::to_string(pos_.step) + ")").c_str());
  }
  if (trace_ && lead_) warn_trace_range();  // after the restore: a resume traces from its checkpoint's step
  if (lead_) {
    std::string path = job_.metrics_file().empty() ? "metrics.jsonl" : job_.metrics_file();
    if (path[0] != '/') path = run_dir_ + "/" + path;
    log_ = std::make_unique<MetricsLog>(path, pos_.step > 0 ? MetricsLog::Open::kAppend : MetricsLog::Open::kTruncate);
    // Every attempt writes an events file of its own, from its first step (a resume: the steps after
    // its checkpoint).
    if (!job_.has_tensorboard() || job_.tensorboard())
      log_->add_sink(std::make_unique<tensorboard::MetricsEvents>(run_dir_, static_cast<int64_t>(pos_.step) + 1));
  }
  // Heartbeats count optimizer steps, as `step` does: with accumulate_steps k, an epoch of n
  // micro-batches is floor(n / k) steps.
  board_.update([&](proto::StepMetrics& m) {
    m.set_steps_per_epoch(r_->sampler->num_steps() / accumulate_);
    m.set_step(static_cast<int64_t>(pos_.step));
    m.set_epoch(pos_.epoch + 1);
    m.set_epoch_step(pos_.epoch_step / accumulate_);
  });
}

void Worker::publish(double step_time) {
  // An optimizer step trains accumulate_steps global micro-batches.
  samples_per_sec_ = step_time > 0 ? static_cast<double>(job_.batch_size() * accumulate_) / step_time : 0.0;
  board_.update([&](proto::StepMetrics& m) {
    m.set_step(static_cast<int64_t>(pos_.step));
    m.set_epoch(pos_.epoch + 1);
    m.set_epoch_step(pos_.epoch_step / accumulate_);
    m.set_step_time_s(step_time);
    m.set_samples_per_sec(samples_per_sec_);
    times_.publish(m);
  });
}

void Worker::time_step() {
  if (step_delay_s_ > 0) std::this_thread::sleep_for(std::chrono::duration<double>(step_delay_s_));
  const auto now = std::chrono::steady_clock::now();
  const double wait = trainer_->reducer() ? trainer_->reducer()->stats().finalize_wait_seconds : 0.0;
  const double comm = agree_s_ + (wait >= reducer_wait_s_ ? wait - reducer_wait_s_ : wait);
  if (have_prev_) times_.add(std::chrono::duration<double>(now - prev_end_).count(), comm);
  prev_end_ = now;
  have_prev_ = true;
  agree_s_ = 0;
  reducer_wait_s_ = wait;
}

// Rank 0's proposal: the oldest directive not yet acted on; a PAUSE in force.
Boundary Worker::my_boundary(double loss_sum, double count) {
  Boundary b;
  b.loss_sum = loss_sum;
  b.count = count;
  b.terminate = (w_.terminate && w_.terminate->load()) || (terminate_at_ > 0 && pos_.step == terminate_at_);
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
    for (size_t i = 0; i < last_eval_.classes.top_k.size(); ++i) {
      proto::TopKAccuracy& t = *r.add_top_k_accuracy();
      t.set_k(static_cast<int32_t>(last_eval_.classes.top_k[i]));
      t.set_accuracy(last_eval_.classes.top_k_accuracy(i));
    }
  }
  r.set_checkpoint(last_checkpoint_);
  r.set_finished(finished);
  w_.client->report_phase(r);
}

void Worker::eval_phase(uint64_t directive_id) {
  const EvalResult e = trainer_->evaluate(r_->test_set);  // starts its own (eval) phase
  check_eval_finite(e, pos_.epoch_step > 0 ? pos_.epoch + 1 : pos_.epoch);
  last_eval_ = e;
  evaluated_ = true;
  report(proto::EVAL, directive_id);
}

std::string Worker::checkpoint_phase(uint64_t directive_id, PhaseKind kind) {
  TraceSpan span(trace_.get(), trace_checkpoint_, TraceCat::kCheckpoint);
  trainer_->begin_phase(CommMode::kNone);
  JobPosition at = pos_;
  if (at.epoch_step == 0) at.epoch_loss_sum = at.epoch_samples = 0;  // mid-epoch only: the epoch's loss so far
  last_checkpoint_ = save_checkpoint(comm_, *r_->built.model, *r_->opt, job_, run_dir_, at, trainer_->phase_id());
  checkpoint_step_ = pos_.step;
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

void Worker::warn_trace_range() {
  const uint64_t per_epoch = static_cast<uint64_t>(r_->sampler->num_steps() / accumulate_);
  const std::string w = trace_range_warning(trace_->options().first_step, trace_->options().last_step,
                                            pos_.step + 1,  // a resume's first step: the one after its checkpoint
                                            per_epoch * static_cast<uint64_t>(job_.epochs()));
  if (!w.empty()) std::fprintf(stderr, "lockstep worker: warning: %s\n", w.c_str());
}

void Worker::finish_trace() {
  if (!trace_) return;
  trace_->finish();
  if (!trace_->error().empty()) std::fprintf(stderr, "lockstep worker: warning: %s\n", trace_->error().c_str());
}

int Worker::stopped() {
  finish_trace();
  try {
    w_.client->heartbeat_now(comm_.rank(), board_.get());
  } catch (const std::exception&) {  // the coordinator may already be gone; the checkpoint is written
  }
  return kExitStopped;  // "requeue me": the checkpoint continues the job
}

// Note [stop at an epoch end]: the closing boundary after an epoch's last step comes before the
// epoch's end (its epoch line and the plan's EVAL/CHECKPOINT, LoopHooks::at_epoch_end). A stop
// acted on there would checkpoint the next epoch's start, and the resume would never run the
// finished epoch's end: its eval and epoch line were lost for good, and a job stopped at its last
// step resumed to a "complete" result with no test figures. So a stop agreed at the closing
// boundary, or at the epoch end's own agreement, runs after the epoch end: epoch line and eval
// first, then the checkpoint and the stop. If no epoch is left the job simply finishes.
void Worker::defer_stop(Boundary& b) {
  if (b.terminate) {
    stop_owed_ = stop_on_signal_ = true;
    b.terminate = false;
  }
  auto it = std::find(b.phases.begin(), b.phases.end(), proto::STOP);
  if (it != b.phases.end()) {
    if (!stop_owed_) stop_directive_ = b.directive_id;  // rank 0's id; the directive is acted upon
    stop_owed_ = true;
    b.phases.erase(it, b.phases.end());  // nothing runs after a STOP
  }
}

bool Worker::stop_after_epoch_end() {
  stop_owed_ = false;
  if (pos_.epoch >= job_.epochs()) {
    if (lead_) std::fprintf(stderr, "lockstep worker: a stop came at the last step; the job is complete\n");
    return false;  // run() reports the finished job, with the last epoch's figures
  }
  if (last_checkpoint_.empty() || checkpoint_step_ != pos_.step) {
    checkpoint_phase(stop_directive_, proto::STOP);
  } else {
    trainer_->begin_phase(CommMode::kNone);
    report(proto::STOP, stop_directive_);  // the plan's checkpoint of this step is the one to resume from
  }
  if (lead_ && stop_on_signal_)
    std::fprintf(stderr, "lockstep worker: stopped on a signal at step %llu, after epoch %lld's end; checkpoint %s\n",
                 static_cast<unsigned long long>(pos_.step), static_cast<long long>(pos_.epoch),
                 last_checkpoint_.c_str());
  return true;
}

StepSums Worker::reduce(Trainer& /*trainer*/, const StepSums& mine) {
  const auto t0 = std::chrono::steady_clock::now();
  agreed_ = agree(comm_, my_boundary(mine.loss_sum, mine.count));
  agree_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {agreed_.loss_sum, agreed_.count};
}

bool Worker::at_boundary(const TrainPosition& pos, const StepSums& step, bool epoch_end) {
  pos_ = pos;
  if (step.count > 0) {  // the step just agreed (none before an epoch's first step, or skipped)
    const double loss = step.loss_sum / step.count;  // its global mean
    board_.update([&](proto::StepMetrics& m) { m.set_loss(loss); });
    const int64_t epoch = epoch_end ? pos.epoch : pos.epoch + 1;  // 1-based: the step's epoch
    if (log_)
      log_->write(StepRecord{epoch, static_cast<int64_t>(pos.step), loss, samples_per_sec_, trainer_->last_lr(),
                             trainer_->last_grad_norm()});
  }
  if (!agreed_.phases.empty()) have_prev_ = false;  // a phase (eval, checkpoint, pause) is no step time
  if (epoch_end) {
    defer_stop(agreed_);  // Note [stop at an epoch end]
    if (agreed_.directive_id) done_directive_ = std::max(done_directive_, agreed_.directive_id);
    return !agreed_.phases.empty() && run_phases(agreed_);  // no STOP left: never true
  }
  return (!agreed_.phases.empty() || agreed_.terminate) && run_phases(agreed_);
}

void Worker::after_step(const TrainPosition& pos, const StepReport& r) {
  pos_ = pos;
  if (r.skipped && lead_)
    std::fprintf(stderr, "lockstep worker: step %llu (epoch %lld) skipped: %s\n",
                 static_cast<unsigned long long>(pos.step), static_cast<long long>(pos.epoch + 1),
                 trainer_->last_skip_reason().c_str());
  time_step();
  publish(r.seconds);
}

bool Worker::at_epoch_end(EpochMetrics& m) {
  // Every rank's step-time medians of the epoch, for the metrics file; the next epoch's first step
  // does not count the phases run now.
  const std::vector<StepTimes::Medians> ranks = gather_step_times(comm_, times_.epoch());
  if (log_)
    for (size_t r = 0; r < ranks.size(); ++r)
      log_->write(RankTimesRecord{m.epoch, static_cast<int>(r), ranks[r].steps, ranks[r].step_s, ranks[r].comm_s,
                                  ranks[r].compute_s, m.step});
  times_.begin_epoch();
  have_prev_ = false;
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
  Boundary agreed = agree(comm_, plan);
  evaluated_ = false;
  defer_stop(agreed);  // Note [stop at an epoch end]: the plan's phases first
  run_phases(agreed);
  m.test_loss = evaluated_ ? last_eval_.loss() : -1.0;
  m.test_accuracy = evaluated_ ? last_eval_.accuracy() : -1.0;
  if (evaluated_) m.test_classes = last_eval_.classes;
  if (log_) log_->write(m);
  return stop_owed_ && stop_after_epoch_end();
}

int Worker::run() {
  try {
    return train();
  } catch (...) {
    // A failed job's timeline shows where it was: this rank's file before the error ends the rank
    // (Communicator::abort in the worker command, which takes the other ranks with it).
    finish_trace();
    throw;
  }
}

int Worker::train() {
  if (train_loop(*trainer_, *r_->sampler, r_->train_set, *this, pos_).stopped) return stopped();
  trainer_->begin_phase(CommMode::kNone);
  finish_trace();  // before the final report: launch merges the files once the workers are gone
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

