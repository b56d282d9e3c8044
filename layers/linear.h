// Linear: y = x W^T + b, as torch.nn.Linear.
// x: (N, in) -> y: (N, out); weight: (out, in); bias: (out)
#pragma once

#include <tuple>
#include <utility>

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

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(x_, Tensor())); }
  void restore_saved(std::any s) override { std::tie(x_) = std::any_cast<std::tuple<Tensor>>(std::move(s)); }

 private:
  int64_t in_, out_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
  Tensor x_;  // saved input, (N, in)
};

}  // namespace lockstep
