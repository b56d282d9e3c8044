// Losses, as torch.nn.CrossEntropyLoss (with label_smoothing) and torch.nn.MSELoss (reduction mean
// or sum).
// CrossEntropyLoss: logits (N, C), target (N) class indices held as floats -> scalar. With label
// smoothing e each row's target distribution is (1 - e) * one_hot(target) + e / C:
//   loss_i = (1 - e) * (lse_i - z_i,t) + e * (lse_i - mean_j z_i,j),  lse_i = log sum_j exp z_i,j
// MSELoss: input and target of one shape -> scalar.
// backward() returns dL/dinput for the last forward (scaled by grad_output, default 1).
// cross_entropy() is the autograd form: a one-element tensor whose node runs that backward.
#pragma once

#include "runtime/tensor.h"

namespace lockstep {

enum class Reduction { kMean, kSum };

class Loss {
 public:
  virtual ~Loss() = default;
  virtual double forward(const Tensor& input, const Tensor& target) = 0;
  virtual Tensor backward(float grad_output = 1.f) = 0;
};

struct CrossEntropyOptions {
  Reduction reduction = Reduction::kMean;
  float label_smoothing = 0.f;  // in [0, 1]
};

class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(Reduction r = Reduction::kMean) : CrossEntropyLoss(CrossEntropyOptions{r}) {}
  explicit CrossEntropyLoss(CrossEntropyOptions o);
  double forward(const Tensor& logits, const Tensor& target) override;
  Tensor backward(float grad_output = 1.f) override;

 private:
  Reduction reduction_;
  float smoothing_;
  Tensor probs_;  // softmax(logits), (N, C)
  Tensor target_;
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(Reduction r = Reduction::kMean) : reduction_(r) {}
  double forward(const Tensor& input, const Tensor& target) override;
  Tensor backward(float grad_output = 1.f) override;

 private:
  Reduction reduction_;
  Tensor diff_;  // input - target
};

// The loss of logits (N, C) against target (N) as a one-element tensor; under grad mode, when
// logits require grad, it records a node whose backward is CrossEntropyLoss::backward, so
// cross_entropy(model(x), y).backward() trains the model.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, CrossEntropyOptions o = {});

// Number of rows of logits (N, C) whose argmax (first maximum) equals target.
int64_t count_correct(const Tensor& logits, const Tensor& target);

}  // namespace lockstep
