// Trainer: train epochs in train mode, evaluate in eval mode under no-grad, and report per-epoch
// loss, accuracy and throughput. The step reads top to bottom: zero_grad, then per micro-batch
// forward, loss, backward (the last one's gradients all-reduced), then clipping and the optimizer step.
//
// Without a communicator it steps and evaluates one process's model (train_step, evaluate); the
// epochs of fit and the training loop (loop.h) need one, "self" for one process. With one
// (DistributedOptions::comm) it is one data-parallel replica: parameters and buffers are broadcast
// from rank 0 at construction; each epoch trains on this rank's shard of every global batch (DistributedSampler); gradients are
// averaged by the bucketing Reducer while backward runs and finalized before the optimizer step;
// an eval phase first broadcasts (or averages) the BN buffers, then evaluates this rank's slice of
// the test set and all-reduces the sums once, so the metrics are exact and global. Phase and mode
// are declared on the communicator at every boundary, so ranks that disagree fail fast.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "comm/model_sync.h"
#include "comm/reducer.h"
#include "launcher/train/eval_metrics.h"
#include "layers/loss.h"
#include "layers/sequential.h"
#include "runtime/data/dataset.h"
#include "runtime/data/distributed_sampler.h"
#include "runtime/data/prefetcher.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/optim/optimizer.h"
#include "runtime/check.h"
#include "runtime/precision.h"
#include "runtime/trace_recorder.h"

namespace lockstep {

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double train_loss = 0;     // mean over the epoch's training samples
  double test_loss = 0;      // mean over the test set
  double test_accuracy = 0;  // fraction correct
  double train_samples_per_sec = 0;
  double lr = 0;          // the lr the epoch's last optimizer step used
  double grad_norm = -1;  // mean pre-clip total gradient norm of the epoch's steps; < 0: not computed
  ClassCounts test_classes;  // top-k, per-class, confusion matrix; num_classes 0 when no eval ran
  int64_t step = 0;          // optimizer steps since the job started, at the epoch's end
};

struct EvalResult {
  double loss_sum = 0;  // summed per-sample loss
  int64_t correct = 0;
  int64_t count = 0;
  ClassCounts classes;  // top-k hits and the confusion matrix (TrainerOptions::num_classes, top_k)
  double loss() const { return count ? loss_sum / count : 0.0; }
  double accuracy() const { return count ? static_cast<double>(correct) / count : 0.0; }
};

// Throws Error "eval at epoch N: test loss is nan: the model diverged ..." when an eval's loss is
// NaN or Inf. Every rank holds the same all-reduced loss, so every rank stops with the same line;
// no later phase (a checkpoint of the diverged weights, a NaN in the metrics or the coordinator's
// status) runs. `epoch` is 1-based: the epoch just trained (or in progress).
void check_eval_finite(const EvalResult& e, int64_t epoch);

// What a step with a non-finite loss or gradient does (job field on_nonfinite).
enum class NonFiniteAction {
  kStop,      // train_step throws NonFiniteStep
  kSkipStep,  // no optimizer step; weights, optimizer state and BatchNorm buffers stay as they were
};

// A step's loss or gradients were not finite (NaN or infinity) under NonFiniteAction::kStop. The
// same on every rank (the decision comes from the all-reduced gradients); the message names the
// ranks whose loss was not finite.
class NonFiniteStep : public Error {
 public:
  using Error::Error;
};

// What t counts in LrSchedule::lr_at(t): epochs (torch's epoch schedulers, stepped after each
// epoch) or optimizer steps (stepped after each optimizer.step(), as OneCycleLR is meant to be).
// Either way t is the number taken before the step, so a step uses lr_at(t) and no micro-batch
// (gradient accumulation) or extra rank advances it.
enum class ScheduleInterval { kEpoch, kStep };

// Gradient clipping of the averaged gradients before the optimizer step: by total norm
// (torch.nn.utils.clip_grad_norm_(max_norm, norm_type)) when max_norm > 0, by value
// (clip_grad_value_(clip_value)) when clip_value > 0, both when both are set (value first). Off
// when neither is. Reported: the total norm clip_grad_norm_ returns (before norm clipping, after
// value clipping when both are set), or the pre-clip 2-norm when only clip_value is set.
struct GradClip {
  double max_norm = 0;
  double norm_type = 2;  // >= 1, or infinity (max |g|)
  double clip_value = 0;
  bool enabled() const { return max_norm > 0 || clip_value > 0; }
};

// One micro-batch of a step: x (n, sample...), y (n) class indices; first_global_row is its first
// sample's row in the global micro-batch (per-sample dropout keying).
struct MicroBatch {
  Tensor x, y;
  int64_t first_global_row = 0;
};

struct TrainerOptions {
  int64_t epochs = 1;
  int64_t eval_batch_size = 1000;
  Shape sample_shape;  // one model input sample, e.g. (784) or (1, 28, 28)
  NonFiniteAction on_nonfinite = NonFiniteAction::kStop;
  // Storage of 4-D input batches (N, C, H, W): each is converted with to_channels_last() before
  // forward (torch: x.to(memory_format=torch.channels_last)), so the convolutions and the layers
  // after them run in NHWC. For a 1-channel image that only relabels. Other ranks: unused.
  MemoryFormat memory_format = MemoryFormat::kChannelsLast;
  // Autocast precision of every train_step (forward and backward) and evaluation, as
  // torch.autocast("cpu", dtype=torch.bfloat16) around the step and the eval loop: kBF16 runs
  // convolutions and Linear layers in bf16 with fp32 outputs (runtime/precision.h); parameters,
  // gradients, optimizer state, BatchNorm and the loss stay fp32.
  Precision precision = Precision::kFP32;
  // Gradient accumulation: one optimizer step every accumulate_steps micro-batches (the training
  // loop takes that many sampler steps per optimizer step; batch_size stays the global
  // micro-batch, so the effective global batch is accumulate_steps * batch_size). The loss is
  // the mean over the effective batch, so k micro-batches of B match one batch of kB up to float
  // reassociation (and BatchNorm, whose batch statistics are per micro-batch, as in PyTorch).
  int64_t accumulate_steps = 1;
  GradClip clip;
  ScheduleInterval schedule_interval = ScheduleInterval::kEpoch;
  // Eval metrics beyond top-1 (launcher/train/eval_metrics.h): the logits' width C (evaluate throws
  // when the model gives another; 0: the width of the first eval batch's logits) and the k of the
  // top-k accuracies, each in [1, C].
  int64_t num_classes = 0;
  std::vector<int64_t> top_k;
  // How the training loop makes each batch: augmentation and prefetching (runtime/data/prefetcher.h).
  InputOptions input{};
};

struct DistributedOptions {
  Communicator* comm = nullptr;  // null: single process; must outlive the trainer
  ReducerOptions reducer{};
  BufferSync eval_buffers = BufferSync::kBroadcast;
  // Per-sample dropout keying: before every forward, each Dropout learns the global row of this
  // rank's first sample (the model must be seeded with DropoutKeying::kPerSample).
  bool per_sample_dropout = false;
  // Start each bucket's all-reduce from the gradient hooks as soon as it is full (true), or all of
  // them in finalize after backward (false: no overlap; for measuring what the overlap buys).
  bool overlap = true;
};

class Trainer {
 public:
  // schedule may be null (constant lr); it is stepped once per epoch or once per optimizer step
  // (TrainerOptions::schedule_interval; begin_epoch, begin_step).
  // With d.comm set this is collective: every rank constructs its trainer (rank 0's parameters and
  // buffers win).
  Trainer(Module& model, Optimizer& opt, Loss& loss, const LrSchedule* schedule, TrainerOptions o,
          DistributedOptions d = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One optimisation step on (x, y); returns the mean loss of the batch (this rank's shard when
  // distributed; first_global_row is the shard's row in the global batch, for per-sample dropout).
  // A non-finite loss or gradient on any rank: throws NonFiniteStep (kStop), or skips the step and
  // sets last_step_skipped() (kSkipStep); every rank decides alike.
  double train_step(const Tensor& x, const Tensor& y, int64_t first_global_row = 0);
  // One optimizer step over micro.size() micro-batches of equal size (gradient accumulation, as
  // torch DDP's `with model.no_sync()` around all but the last): zero_grad once; each micro-batch's
  // forward and backward with its loss gradient scaled by 1 / (micro.size() * world size), so the
  // accumulated gradient is the mean over the effective batch; only the last backward all-reduces
  // (the Reducer's no_sync before it); then clipping and the optimizer step. Returns the mean loss
  // over all micro-batches (this rank's). Non-finite handling as above, over the whole step.
  double train_step(std::span<const MicroBatch> micro);
  bool last_step_skipped() const { return skipped_; }
  // The lr the last train_step used, and its pre-clip total gradient norm (< 0 without clipping,
  // NaN for a skipped step).
  double last_lr() const { return last_lr_; }
  double last_grad_norm() const { return last_grad_norm_; }
  const std::string& last_skip_reason() const { return skip_reason_; }
  // epochs x (one epoch of train_loop, evaluate) over the sampler (launcher/train/loop.h); every
  // rank gets the same global metrics (only rank 0 needs to print them). Needs a communicator
  // ("self" for one process).
  std::vector<EpochMetrics> fit(DistributedSampler& train, const Dataset& train_data, const Dataset& test,
                                const std::function<void(const EpochMetrics&)>& on_epoch = {});
  // Eval mode and no-grad over the whole data set; the model's mode is restored afterwards.
  // Distributed (collective): BN buffers synced from rank 0 first, this rank evaluates its
  // eval_slice, and the sums (loss, correct, count, top-k hits, confusion matrix) are all-reduced
  // in one call; every rank returns the exact global result.
  EvalResult evaluate(const Dataset& data);
  // The reducer (distributed only, else null): its stats give the exposed communication time.
  Reducer* reducer() { return reducer_.get(); }
  bool distributed() const { return d_.comm != nullptr; }
  // Starts the next phase (a new id, the same on every rank) and declares it and the mode on the
  // communicator, so every following collective's fingerprint carries them. evaluate() and the
  // training loop start their own; a driver's phases at a step boundary (lockstep worker) call it.
  void begin_phase(CommMode mode);
  uint32_t phase_id() const { return phase_; }
  // The timeline (runtime/trace_recorder.h): the model's layers, the reducer's buckets, the
  // optimizer step, the wait for the buckets and evaluate() record into rec; the training loop
  // adds the steps and the step agreement. Null: off. rec must outlive the trainer's use of it.
  void set_trace(TraceRecorder* rec);
  TraceRecorder* trace() const { return trace_; }

  // The training loop's view (launcher/train/loop.h).
  Communicator* communicator() const { return d_.comm; }
  const TrainerOptions& options() const { return o_; }
  // Sets the learning rate of 0-based `epoch` from an epoch schedule (none, or a per-step one: no-op).
  void begin_epoch(int64_t epoch);
  // Sets the learning rate of the optimizer step about to be taken from a per-step schedule; step
  // counts the optimizer steps taken since the job started (none, or an epoch schedule: no-op).
  void begin_step(uint64_t step);
  double lr() const { return opt_.lr(); }

 private:
  Tensor as_input(const Tensor& x) const;
  EvalResult evaluate_range(const Dataset& data, int64_t begin, int64_t end, int64_t num_classes);

  Module& model_;
  Optimizer& opt_;
  Loss& loss_;
  const LrSchedule* schedule_;
  TrainerOptions o_;
  DistributedOptions d_;
  std::unique_ptr<Reducer> reducer_;
  uint32_t phase_ = 0;  // incremented at every train/eval boundary, the same on every rank
  bool skipped_ = false;
  std::string skip_reason_;
  double last_lr_ = 0;
  double last_grad_norm_ = -1;
  std::vector<float> saved_buffers_;  // kSkipStep: the BatchNorm buffers before the step's forward
  TraceRecorder* trace_ = nullptr;
  uint32_t trace_optimizer_ = 0, trace_finalize_ = 0, trace_eval_ = 0;  // span names
};

}  // namespace lockstep
