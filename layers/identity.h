// Identity, as torch.nn.Identity: y = x, the same tensor (and graph node), nothing recorded.
// Stands in for an optional branch (a residual block's shortcut, a removed classifier head).
#pragma once

#include "layers/module.h"

namespace lockstep {

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }  // x: any shape -> y: the same tensor
  std::string describe() const override { return "Identity"; }
  Shape output_shape(const Shape& in) const override { return in; }
};

}  // namespace lockstep
