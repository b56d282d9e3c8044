// SGD with momentum, dampening, weight decay and Nesterov: PyTorch 1.13's exact update
// (torch.optim.SGD, single-tensor path), so trajectories match PyTorch to float rounding.
#pragma once

#include <vector>

#include "runtime/optim/optimizer.h"

namespace lockstep {

struct SgdOptions {
  float lr;
  float momentum = 0;
  float dampening = 0;
  float weight_decay = 0;
  bool nesterov = false;
};

// Per element, with g the grad and p the value:
//   d = g + weight_decay * p
//   if momentum: buf = d on the first step, else buf = momentum * buf + (1 - dampening) * d
//                d = nesterov ? d + momentum * buf : buf
//   p -= lr * d
class Sgd : public Optimizer {
 public:
  Sgd(std::vector<Parameter*> params, const SgdOptions& options);
  void step() override;
  // "{i}.momentum_buffer" per parameter when momentum != 0; empty otherwise.
  std::vector<std::pair<std::string, Tensor*>> state_tensors() override;
  const SgdOptions& options() const { return options_; }  // options().lr is the initial lr

 private:
  SgdOptions options_;
  std::vector<Tensor> momentum_buffer_;  // one per parameter when momentum != 0
};

}  // namespace lockstep
