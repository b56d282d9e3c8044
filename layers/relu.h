// ReLU: y = max(x, 0), elementwise, any shape. Backward passes dy where y > 0.
#pragma once

#include "layers/module.h"

namespace lockstep {

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override { return "ReLU"; }

 private:
  Tensor y_;  // saved output
};

}  // namespace lockstep
