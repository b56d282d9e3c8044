// LAMB, layer-wise adaptive moments (You et al. 2019, "Large Batch Optimization for Deep
// Learning: Training BERT in 76 minutes", Algorithm 2, with phi the identity): Adam's
// bias-corrected moments, L2 weight decay added to the Adam direction, and each parameter's
// (layer's) step scaled by the trust ratio ||w|| / ||r + weight_decay * w||. PyTorch has no LAMB;
// the golden reference is tests/golden/gen_optim.py, written from the paper.
#pragma once

#include <vector>

#include "runtime/optim/optimizer.h"

namespace lockstep {

struct LambOptions {
  float lr = 1e-3f;
  float beta1 = 0.9f, beta2 = 0.999f;
  float eps = 1e-6f;  // as NVIDIA apex's FusedLAMB and TensorFlow Addons' LAMB
  float weight_decay = 0.f;  // lambda
  std::vector<bool> exclude = {};  // per parameter; empty: the 1-D ones (layer_adaptation.h)
};

// Per parameter w with grad g at step t (1-based), elementwise except the norms:
//   m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g^2
//   r = (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
//   u = r + weight_decay * w
//   w -= lr * (||w|| / ||u||) * u
// An excluded parameter (biases, BatchNorm/LayerNorm parameters) takes trust ratio 1 and no weight
// decay (the plain Adam step); a parameter with ||w|| = 0 or ||u|| = 0 takes trust ratio 1 for
// that step (Note [layer adaptation exclusions]). Norms are accumulated in double. Throws Error
// for lr, eps or weight_decay < 0 and betas outside [0, 1).
class Lamb : public Optimizer {
 public:
  Lamb(std::vector<Parameter*> params, const LambOptions& options);
  void step() override;
  // "{i}.exp_avg" (m) and "{i}.exp_avg_sq" (v) per parameter, Adam's names.
  std::vector<std::pair<std::string, Tensor*>> state_tensors() override;
  const LambOptions& options() const { return options_; }  // options().lr is the initial lr
  const std::vector<bool>& excluded() const { return exclude_; }

 private:
  LambOptions options_;
  std::vector<bool> exclude_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;  // one each per parameter
  std::vector<float> update_;                 // u of the parameter being stepped (scratch)
};

}  // namespace lockstep
