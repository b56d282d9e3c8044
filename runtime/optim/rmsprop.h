// RMSprop (Hinton's lecture 6e; centered variant from Graves 2013) with L2 weight decay and
// momentum: PyTorch 1.13's exact update (torch.optim.RMSprop, single-tensor path), so
// trajectories match PyTorch to float rounding.
#pragma once

#include <vector>

#include "runtime/optim/optimizer.h"

namespace lockstep {

struct RmspropOptions {
  float lr = 1e-2f;
  float alpha = 0.99f, eps = 1e-8f, weight_decay = 0.f, momentum = 0.f;
  bool centered = false;
};

// Per element, with g the grad and p the value:
//   g += weight_decay * p                       (only when weight_decay != 0)
//   s = alpha * s + (1 - alpha) * g^2
//   centered: a = alpha * a + (1 - alpha) * g;  avg = sqrt(s - a^2) + eps
//   else:                                        avg = sqrt(s) + eps
//   momentum > 0: buf = momentum * buf + g / avg;  p -= lr * buf
//   else:         p -= lr * g / avg
// Throws Error for lr, alpha, eps, weight_decay or momentum < 0, as torch.optim.RMSprop raises
// ValueError.
class Rmsprop : public Optimizer {
 public:
  Rmsprop(std::vector<Parameter*> params, const RmspropOptions& options);
  void step() override;
  // Per parameter, in PyTorch's order: "{i}.square_avg" (s); "{i}.momentum_buffer" when
  // momentum > 0; "{i}.grad_avg" (a) when centered.
  std::vector<std::pair<std::string, Tensor*>> state_tensors() override;
  const RmspropOptions& options() const { return options_; }  // options().lr is the initial lr

 private:
  RmspropOptions options_;
  std::vector<Tensor> square_avg_, momentum_buffer_, grad_avg_;  // per parameter, when used
};

}  // namespace lockstep
