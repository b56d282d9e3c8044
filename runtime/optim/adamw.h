// AdamW (decoupled weight decay, Loshchilov & Hutter 2019), with the AMSGrad variant: PyTorch
// 1.13's exact update (torch.optim.AdamW, single-tensor path), so trajectories match PyTorch to
// float rounding.
#pragma once

#include <vector>

#include "runtime/optim/adam_moments.h"
#include "runtime/optim/optimizer.h"

namespace lockstep {

struct AdamWOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 1e-2f;
  bool amsgrad = false;
};

// Per element at step t (1-based), with g the grad and p the value:
//   p *= 1 - lr * weight_decay
//   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
//   amsgrad: v_max = max(v_max, v), and v_max replaces v below
//   p -= (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// All parameters share the step count t (PyTorch keeps one per parameter; here every parameter
// steps together because every grad is defined).
class AdamW : public Optimizer {
 public:
  AdamW(std::vector<Parameter*> params, const AdamWOptions& options);
  void step() override;
  // "{i}.exp_avg" (m), "{i}.exp_avg_sq" (v) and, with amsgrad, "{i}.max_exp_avg_sq" per parameter.
  std::vector<std::pair<std::string, Tensor*>> state_tensors() override;
  const AdamWOptions& options() const { return options_; }  // options().lr is the initial lr

 private:
  AdamWOptions options_;
  AdamMoments moments_;
};

}  // namespace lockstep
