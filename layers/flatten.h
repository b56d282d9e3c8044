// Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), as torch.nn.Flatten(); a view, no copy.
#pragma once

#include "layers/layer.h"

namespace lockstep {

class Flatten : public Layer {
 public:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override { return "Flatten"; }
  Shape output_shape(const Shape& in) const override;

 private:
  Shape in_shape_;
  bool saved_ = false;
};

}  // namespace lockstep
