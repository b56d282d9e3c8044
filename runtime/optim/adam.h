// Adam (Kingma & Ba 2015) with L2 weight decay added to the gradient and the AMSGrad variant
// (Reddi et al. 2018): PyTorch 1.13's exact update (torch.optim.Adam, single-tensor path), so
// trajectories match PyTorch to float rounding. For decoupled weight decay use AdamW (adamw.h).
#pragma once

#include <vector>

#include "runtime/optim/adam_moments.h"
#include "runtime/optim/optimizer.h"

namespace lockstep {

struct AdamOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  bool amsgrad = false;
};

// Per element at step t (1-based), with g the grad and p the value:
//   g += weight_decay * p                       (only when weight_decay != 0)
//   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
//   amsgrad: v_max = max(v_max, v), and v_max replaces v below
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// All parameters share the step count t. Throws Error for lr < 0, eps < 0, betas outside [0, 1)
// or weight_decay < 0, as torch.optim.Adam raises ValueError.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Parameter*> params, const AdamOptions& options);
  void step() override;
  // "{i}.exp_avg", "{i}.exp_avg_sq" and, with amsgrad, "{i}.max_exp_avg_sq" per parameter
  // (PyTorch's state names, in PyTorch's order).
  std::vector<std::pair<std::string, Tensor*>> state_tensors() override;
  const AdamOptions& options() const { return options_; }  // options().lr is the initial lr

 private:
  AdamOptions options_;
  AdamMoments moments_;
};

}  // namespace lockstep
