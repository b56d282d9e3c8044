// The train/eval loop, single-process or one data-parallel replica.
#include "launcher/train/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>

#include "launcher/train/loop.h"
#include "layers/dropout.h"
#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"
#include "runtime/optim/grad_clip.h"

namespace lockstep {

Trainer::Trainer(Module& model, Optimizer& opt, Loss& loss, const LrSchedule* schedule,
                 TrainerOptions o, DistributedOptions d)
    : model_(model), opt_(opt), loss_(loss), schedule_(schedule), o_(std::move(o)), d_(d) {
  if (!d_.comm) return;
  Communicator& comm = *d_.comm;
  comm.set_phase(phase_, CommMode::kNone);
  // All replicas start identical: rank 0's parameters and buffers, in state_dict order.
  std::vector<Tensor*> state;
  for (auto& [name, t] : model_.state_dict()) state.push_back(t);
  broadcast_tensors(comm, state, 0);
  // The loss gradient is divided by the world size (train_step), so a sum is the average.
  ReducerOptions ro = d_.reducer;
  ro.predivided = true;
  ro.overlap = d_.overlap;
  reducer_ = std::make_unique<Reducer>(comm, model_.named_parameters(), ro);
}

Trainer::~Trainer() = default;

void Trainer::set_trace(TraceRecorder* rec) {
  trace_ = rec;
  model_.set_trace(rec);
  if (reducer_) reducer_->set_trace(rec);
  if (!rec) return;
  trace_optimizer_ = rec->intern("optimizer.step");
  trace_finalize_ = rec->intern("wait for gradient all-reduce");
  trace_eval_ = rec->intern("eval");
}

void Trainer::begin_phase(CommMode mode) {
  if (d_.comm) d_.comm->set_phase(++phase_, mode);
}

Tensor Trainer::as_input(const Tensor& x) const {
  Shape s{x.dim(0)};
  s.insert(s.end(), o_.sample_shape.begin(), o_.sample_shape.end());
  const Tensor batch = x.reshape(s);
  return batch.ndim() == 4 ? batch.to_format(o_.memory_format) : batch;
}

namespace {

// One vectorised pass: x * 0 is 0 for every finite x and NaN for NaN and infinities, so the sum is
// 0 exactly when every gradient is finite.
bool finite_gradients(Module& model) {
  float poison = 0.f;
  for (Parameter* p : model.parameters()) {
    const float* g = p->grad.data();
    const int64_t n = p->grad.numel();
#pragma omp simd reduction(+ : poison)
    for (int64_t i = 0; i < n; ++i) poison += g[i] * 0.f;
  }
  return poison == 0.f;
}

}  // namespace

double Trainer::train_step(const Tensor& x, const Tensor& y, int64_t first_global_row) {
  const MicroBatch one{x, y, first_global_row};
  return train_step(std::span<const MicroBatch>(&one, 1));
}

double Trainer::train_step(std::span<const MicroBatch> micro) {
  LOCKSTEP_CHECK(!micro.empty()) << "train_step: no micro-batch";
  for (const MicroBatch& m : micro)  // equal sizes: the mean of the means is the effective batch's mean
    LOCKSTEP_CHECK(m.y.numel() == micro[0].y.numel())
        << "train_step: micro-batches of " << micro[0].y.numel() << " and " << m.y.numel() << " samples";
  AutocastGuard autocast(o_.precision);  // forward and backward; the optimizer step is fp32 anyway
  model_.train();
  skipped_ = false;
  last_lr_ = opt_.lr();
  last_grad_norm_ = -1;
  const bool skip_policy = o_.on_nonfinite == NonFiniteAction::kSkipStep;
  if (skip_policy) {  // a skipped step leaves the running statistics as they were
    saved_buffers_.clear();
    for (auto& [name, t] : model_.named_buffers()) saved_buffers_.insert(saved_buffers_.end(), t->data(), t->data() + t->numel());
  }
  // Each micro-batch's mean-loss gradient is divided by the micro-batch count, so the accumulated
  // gradient is the mean over the effective batch; and by the world size, so the reducer's
  // pre-divided sum is the average over ranks.
  const int64_t world = reducer_ ? d_.comm->size() : 1;
  const float scale = 1.0f / static_cast<float>(static_cast<int64_t>(micro.size()) * world);
  opt_.zero_grad();
  double loss_sum = 0;
  bool loss_ok = true;
  for (size_t i = 0; i < micro.size(); ++i) {
    // All but the last micro-batch accumulate locally (torch DDP's no_sync); the last backward's
    // hooks all-reduce the accumulated gradients.
    const bool last = i + 1 == micro.size();
    std::optional<Reducer::NoSyncGuard> no_sync;
    if (reducer_ && !last) no_sync.emplace(*reducer_);
    if (d_.per_sample_dropout) set_dropout_first_global_row(model_, micro[i].first_global_row);
    Tensor logits = model_.forward(as_input(micro[i].x));
    const double loss = loss_.forward(logits, micro[i].y);
    loss_sum += loss;
    Tensor dloss = loss_.backward();
    if (scale != 1.0f)
      for (int64_t j = 0; j < dloss.numel(); ++j) dloss[j] *= scale;
    // A non-finite loss poisons this rank's gradient, so the all-reduced gradients (the same on every
    // rank) carry every rank's verdict and no rank decides alone.
    if (!std::isfinite(loss)) {
      loss_ok = false;
      if (dloss.numel() > 0) dloss[0] = std::numeric_limits<float>::quiet_NaN();
    }
    backward(logits, dloss);  // the reducer's buckets start all-reducing from the parameters' hooks
  }
  const double loss = loss_sum / static_cast<double>(micro.size());
  if (reducer_) {
    TraceSpan span(trace_, trace_finalize_, TraceCat::kAllReduce);
    reducer_->finalize();  // averaged gradients back in place
  }
  if (!finite_gradients(model_)) {
    // Rare: one more collective names the ranks whose loss was not finite.
    std::vector<double> bad(static_cast<size_t>(d_.comm ? d_.comm->size() : 1), 0.0);
    bad[static_cast<size_t>(d_.comm ? d_.comm->rank() : 0)] = loss_ok ? 0.0 : 1.0;
    if (d_.comm && d_.comm->size() > 1) d_.comm->all_reduce(std::span<double>(bad), ReduceOp::kSum).wait();
    std::string ranks;
    for (size_t r = 0; r < bad.size(); ++r)
      if (bad[r] > 0) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
    const std::string what = ranks.empty() ? "non-finite gradients (every rank's loss finite)"
                                           : std::string("non-finite loss on rank") +
                                                 (ranks.find(',') != std::string::npos ? "s " : " ") + ranks;
    if (!skip_policy)
      throw NonFiniteStep(what + "; weights unchanged (on_nonfinite: NONFINITE_SKIP_STEP skips such steps)");
    skipped_ = true;
    skip_reason_ = what;
    if (o_.clip.enabled()) last_grad_norm_ = std::numeric_limits<double>::quiet_NaN();
    auto it = saved_buffers_.begin();
    for (auto& [name, t] : model_.named_buffers()) {
      std::copy(it, it + t->numel(), t->data());
      it += t->numel();
    }
    return loss;
  }
  // Clipping sees the averaged gradients, identical on every rank, so every rank clips alike.
  if (o_.clip.enabled()) {
    const auto& params = opt_.params();
    if (o_.clip.max_norm > 0) {
      if (o_.clip.clip_value > 0) clip_grad_value(params, o_.clip.clip_value);
      last_grad_norm_ = clip_grad_norm(params, o_.clip.max_norm, o_.clip.norm_type);
    } else {
      last_grad_norm_ = total_grad_norm(params, o_.clip.norm_type);
      clip_grad_value(params, o_.clip.clip_value);
    }
  }
  {
    TraceSpan span(trace_, trace_optimizer_, TraceCat::kOptimizer);
    opt_.step();
  }
  return loss;
}

void Trainer::begin_epoch(int64_t epoch) {
  if (schedule_ && o_.schedule_interval == ScheduleInterval::kEpoch) opt_.set_lr(schedule_->lr_at(epoch));
}

void Trainer::begin_step(uint64_t step) {
  if (schedule_ && o_.schedule_interval == ScheduleInterval::kStep)
    opt_.set_lr(schedule_->lr_at(static_cast<int64_t>(step)));
}

EvalResult Trainer::evaluate(const Dataset& data) {
  TraceSpan span(trace_, trace_eval_, TraceCat::kEval);
  if (!d_.comm) return evaluate_range(data, 0, data.size(), o_.num_classes);
  Communicator& comm = *d_.comm;
  begin_phase(CommMode::kEval);
  // Every rank evaluates the same model: rank 0's (or the averaged) BN running statistics.
  std::vector<Tensor*> buffers;
  for (auto& [name, t] : model_.named_buffers()) buffers.push_back(t);
  if (!buffers.empty()) sync_buffers(comm, buffers, d_.eval_buffers);
  const EvalSlice slice = eval_slice(data.size(), comm.rank(), comm.size());
  // The sums' layout needs C on every rank: each learns it from its first batch's logits, and when
  // some rank's slice is empty (fewer samples than ranks; every rank knows) the ranks agree on it
  // in one more collective.
  EvalResult local = evaluate_range(data, slice.begin, slice.end, o_.num_classes);
  if (o_.num_classes == 0 && data.size() < comm.size()) {
    std::vector<double> c{static_cast<double>(local.classes.num_classes)};
    comm.all_reduce(std::span<double>(c), ReduceOp::kMax).wait();
    if (local.classes.num_classes == 0) local.classes = ClassCounts::zeros(static_cast<int64_t>(c[0]), o_.top_k);
  }
  // Doubles hold the integer counts exactly (below 2^53), so the global accuracy is exact.
  // sums: (loss_sum, correct, count, top_k_correct[K], confusion[C*C]), the same layout on every rank
  std::vector<double> sums{local.loss_sum, static_cast<double>(local.correct), static_cast<double>(local.count)};
  local.classes.append_sums(sums);
  comm.all_reduce(std::span<double>(sums), ReduceOp::kSum).wait();
  EvalResult r;
  r.loss_sum = sums[0];
  r.correct = static_cast<int64_t>(sums[1]);
  r.count = static_cast<int64_t>(sums[2]);
  r.classes = local.classes;
  r.classes.from_sums(std::span<const double>(sums).subspan(3));
  LOCKSTEP_CHECK(r.count == data.size()) << "distributed eval covered " << r.count << " of " << data.size()
                                         << " samples";
  return r;
}

EvalResult Trainer::evaluate_range(const Dataset& data, int64_t begin, int64_t end, int64_t num_classes) {
  const Mode saved = model_.mode();
  model_.eval();
  NoGradGuard no_grad;
  AutocastGuard autocast(o_.precision);
  CrossEntropyLoss sum_loss(Reduction::kSum);
  EvalResult r;
  if (num_classes > 0) r.classes = ClassCounts::zeros(num_classes, o_.top_k);  // else: the logits' width
  const int64_t n = end;
  for (int64_t start = begin; start < n; start += o_.eval_batch_size) {
    const int64_t b = std::min(o_.eval_batch_size, n - start);
    Tensor x = data.images(start, b);
    Tensor y = Tensor::empty({b});
    for (int64_t i = 0; i < b; ++i) y[i] = static_cast<float>(data.labels[start + i]);
    Tensor logits = model_.forward(as_input(x));
    r.loss_sum += sum_loss.forward(logits, y);
    r.correct += count_correct(logits, y);
    if (r.classes.num_classes == 0) r.classes = ClassCounts::zeros(logits.dim(1), o_.top_k);
    r.classes.add(logits, y);
    r.count += b;
  }
  model_.train(saved == Mode::kTrain);
  return r;
}

namespace {

// fit's driver: evaluate after every epoch, then the caller's callback.
class FitHooks : public LoopHooks {
 public:
  FitHooks(Trainer& t, const Dataset& test, const std::function<void(const EpochMetrics&)>& on_epoch)
      : t_(t), test_(test), on_epoch_(on_epoch) {}
  bool at_epoch_end(EpochMetrics& m) override {
    const EvalResult r = t_.evaluate(test_);
    m.test_loss = r.loss();
    m.test_accuracy = r.accuracy();
    m.test_classes = r.classes;
    if (on_epoch_) on_epoch_(m);
    return false;
  }

 private:
  Trainer& t_;
  const Dataset& test_;
  const std::function<void(const EpochMetrics&)>& on_epoch_;
};

}  // namespace

std::vector<EpochMetrics> Trainer::fit(DistributedSampler& train, const Dataset& train_data,
                                       const Dataset& test,
                                       const std::function<void(const EpochMetrics&)>& on_epoch) {
  LOCKSTEP_CHECK(d_.comm) << "fit needs a communicator (\"self\" for one process)";
  FitHooks hooks(*this, test, on_epoch);
  return train_loop(*this, train, train_data, hooks).epochs;
}

void check_eval_finite(const EvalResult& e, int64_t epoch) {
  const double loss = e.loss();
  LOCKSTEP_FAIL_IF(!std::isfinite(loss))
      << "eval at epoch " << epoch << ": test loss is " << (std::isnan(loss) ? "nan" : "inf")
      << ": the model diverged (its outputs on the test set are not finite); lower the learning rate, "
         "or resume from an earlier checkpoint";
}

}  // namespace lockstep
