// Linear: y = x W^T + b, as torch.nn.Linear.
// x: (N, in) -> y: (N, out); weight: (out, in); bias: (out)
#pragma once

#include "layers/layer.h"

namespace lockstep {

class Linear : public Layer {
 public:
  Linear(int64_t in, int64_t out, bool bias = true);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;
  void reset_parameters(class Philox& rng, uint32_t& slot) override;

 private:
  int64_t in_, out_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
  Tensor x_;  // saved input, (N, in)
};

}  // namespace lockstep
