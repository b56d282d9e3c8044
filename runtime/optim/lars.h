// LARS, layer-wise adaptive rate scaling (You, Gitman & Ginsburg 2017, "Large Batch Training of
// Convolutional Networks", Algorithm 1): momentum SGD whose step for each parameter (layer) is
// scaled by a local lr eta * ||w|| / (||g|| + weight_decay * ||w||). PyTorch has no LARS; the
// golden reference is tests/golden/gen_optim.py, written from the paper.
#pragma once

#include <vector>

#include "runtime/optim/optimizer.h"

namespace lockstep {

struct LarsOptions {
  float lr;                             // the global lr gamma_t
  float momentum = 0;                   // m
  float weight_decay = 0;               // beta
  float trust_coefficient = 1e-3f;      // eta (the paper's default)
  std::vector<bool> exclude = {};            // per parameter; empty: the 1-D ones (layer_adaptation.h)
};

// Per parameter w with grad g (paper eq. 6 and Algorithm 1):
//   local_lr = eta * ||w|| / (||g|| + weight_decay * ||w||)
//   v = m * v + lr * local_lr * (g + weight_decay * w)      (v starts at 0; lr inside v, as the paper)
//   w -= v
// An excluded parameter (biases, BatchNorm/LayerNorm parameters) takes local_lr = 1 and no weight
// decay; a parameter with ||w|| = 0 or a zero denominator takes local_lr = 1 for that step
// (Note [layer adaptation exclusions]). Norms are accumulated in double. Throws Error for a
// negative lr, momentum or weight_decay, or a trust_coefficient <= 0.
class Lars : public Optimizer {
 public:
  Lars(std::vector<Parameter*> params, const LarsOptions& options);
  void step() override;
  // "{i}.momentum_buffer" (v) per parameter when momentum != 0; empty otherwise.
  std::vector<std::pair<std::string, Tensor*>> state_tensors() override;
  const LarsOptions& options() const { return options_; }  // options().lr is the initial lr
  const std::vector<bool>& excluded() const { return exclude_; }

 private:
  LarsOptions options_;
  std::vector<bool> exclude_;
  std::vector<Tensor> momentum_buffer_;  // one per parameter when momentum != 0
};

}  // namespace lockstep
