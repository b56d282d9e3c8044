// AdamW (decoupled weight decay): PyTorch 1.13's exact update (torch.optim.AdamW, non-amsgrad,
// single-tensor path), so trajectories match PyTorch to float rounding.
#pragma once

#include <vector>

#include "runtime/optim/optimizer.h"

namespace lockstep {

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 1e-2f;
};

// Per element at step t (1-based), with g the grad and p the value:
//   p *= 1 - lr * weight_decay
//   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// All parameters share the step count t (PyTorch keeps one per parameter; here every parameter
// steps together because every grad is defined).
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<Parameter*> params, const AdamWOptions& options);
  void step() override;
  // "{i}.exp_avg" (m) and "{i}.exp_avg_sq" (v) per parameter.
  std::vector<std::pair<std::string, Tensor*>> state_tensors() override;
  const AdamWOptions& options() const { return options_; }  // options().lr is the initial lr

 private:
  AdamWOptions options_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // one each per parameter
};

}  // namespace lockstep
