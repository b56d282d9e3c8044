// Single-process trainer: train epochs in train mode, evaluate in eval mode under no-grad, and
// report per-epoch loss, accuracy and throughput. The step reads top to bottom:
// forward, loss, zero_grad, backward, optimizer step.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "layers/loss.h"
#include "layers/sequential.h"
#include "runtime/data/dataset.h"
#include "runtime/data/loader.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/optim/optimizer.h"

namespace lockstep {

struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double train_loss = 0;     // mean over the epoch's training samples
  double test_loss = 0;      // mean over the test set
  double test_accuracy = 0;  // fraction correct
  double train_samples_per_sec = 0;
  double lr = 0;
};

struct EvalResult {
  double loss_sum = 0;  // summed per-sample loss
  int64_t correct = 0;
  int64_t count = 0;
  double loss() const { return count ? loss_sum / count : 0.0; }
  double accuracy() const { return count ? static_cast<double>(correct) / count : 0.0; }
};

struct TrainerOptions {
  int64_t epochs = 1;
  int64_t eval_batch_size = 1000;
  Shape sample_shape;  // one model input sample, e.g. (784) or (1, 28, 28)
};

class Trainer {
 public:
  // schedule may be null (constant lr); it is stepped once per epoch, as PyTorch's epoch schedulers.
  Trainer(Sequential& model, Optimizer& opt, Loss& loss, const LrSchedule* schedule, TrainerOptions o);

  // One optimisation step on (x, y); returns the mean loss of the batch.
  double train_step(const Tensor& x, const Tensor& y);
  // One pass over the loader's current epoch in train mode; returns the mean sample loss.
  double train_epoch(const BatchLoader& loader);
  // Eval mode and no-grad over the whole data set; the model's mode is restored afterwards.
  EvalResult evaluate(const Dataset& data);
  // epochs x (train_epoch, evaluate); calls on_epoch after each.
  std::vector<EpochMetrics> fit(BatchLoader& train, const Dataset& test,
                                const std::function<void(const EpochMetrics&)>& on_epoch = {});

 private:
  Tensor as_input(const Tensor& x) const;

  Sequential& model_;
  Optimizer& opt_;
  Loss& loss_;
  const LrSchedule* schedule_;
  TrainerOptions o_;
};

}  // namespace lockstep
