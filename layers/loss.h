// Losses, as torch.nn.CrossEntropyLoss and torch.nn.MSELoss (reduction mean or sum).
// CrossEntropyLoss: logits (N, C), target (N) class indices held as floats -> scalar.
// MSELoss: input and target of one shape -> scalar.
// backward() returns dL/dinput for the last forward (scaled by grad_output, default 1).
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

class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(Reduction r = Reduction::kMean) : reduction_(r) {}
  double forward(const Tensor& logits, const Tensor& target) override;
  Tensor backward(float grad_output = 1.f) override;

 private:
  Reduction reduction_;
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

// Number of rows of logits (N, C) whose argmax (first maximum) equals target.
int64_t count_correct(const Tensor& logits, const Tensor& target);

}  // namespace lockstep
