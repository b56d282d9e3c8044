// The train/eval loop.
#include "runtime/trainer/trainer.h"

#include <algorithm>
#include <chrono>

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

Trainer::Trainer(Sequential& model, Optimizer& opt, Loss& loss, const LrSchedule* schedule,
                 TrainerOptions o)
    : model_(model), opt_(opt), loss_(loss), schedule_(schedule), o_(std::move(o)) {}

Tensor Trainer::as_input(const Tensor& x) const {
  Shape s{x.dim(0)};
  s.insert(s.end(), o_.sample_shape.begin(), o_.sample_shape.end());
  return x.reshape(s);
}

double Trainer::train_step(const Tensor& x, const Tensor& y) {
  model_.train();
  Tensor logits = model_.forward(as_input(x));
  const double loss = loss_.forward(logits, y);
  opt_.zero_grad();
  model_.backward(loss_.backward());
  opt_.step();
  return loss;
}

double Trainer::train_epoch(const BatchLoader& loader) {
  Tensor x, y;
  double sum = 0.0;
  int64_t count = 0;
  for (int64_t b = 0; b < loader.num_batches(); ++b) {
    loader.batch(b, x, y);
    sum += train_step(x, y) * static_cast<double>(y.numel());
    count += y.numel();
  }
  return count ? sum / static_cast<double>(count) : 0.0;
}

EvalResult Trainer::evaluate(const Dataset& data) {
  const Mode saved = model_.mode();
  model_.eval();
  NoGradGuard no_grad;
  CrossEntropyLoss sum_loss(Reduction::kSum);
  EvalResult r;
  const int64_t n = data.size();
  for (int64_t start = 0; start < n; start += o_.eval_batch_size) {
    const int64_t b = std::min(o_.eval_batch_size, n - start);
    Tensor x = data.images(start, b);
    Tensor y = Tensor::empty({b});
    for (int64_t i = 0; i < b; ++i) y[i] = static_cast<float>(data.labels[start + i]);
    Tensor logits = model_.forward(as_input(x));
    r.loss_sum += sum_loss.forward(logits, y);
    r.correct += count_correct(logits, y);
    r.count += b;
  }
  model_.train(saved == Mode::kTrain);
  return r;
}

std::vector<EpochMetrics> Trainer::fit(BatchLoader& train, const Dataset& test,
                                       const std::function<void(const EpochMetrics&)>& on_epoch) {
  std::vector<EpochMetrics> out;
  for (int64_t e = 0; e < o_.epochs; ++e) {
    if (schedule_) opt_.set_lr(schedule_->lr_at(e));
    train.set_epoch(e);
    EpochMetrics m;
    m.epoch = e + 1;
    m.lr = opt_.lr();
    const auto t0 = std::chrono::steady_clock::now();
    m.train_loss = train_epoch(train);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t samples = std::min<int64_t>(train.num_batches() * train.batch_size(),
                                              static_cast<int64_t>(train.order().size()));
    m.train_samples_per_sec = secs > 0 ? static_cast<double>(samples) / secs : 0.0;
    EvalResult r = evaluate(test);
    m.test_loss = r.loss();
    m.test_accuracy = r.accuracy();
    out.push_back(m);
    if (on_epoch) on_epoch(m);
  }
  return out;
}

}  // namespace lockstep
