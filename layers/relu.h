// ReLU: y = max(x, 0), elementwise, any shape; NaN stays NaN (torch.relu). Backward passes dy
// except where y <= 0 (torch's threshold_backward), so a NaN output passes its gradient on.
// Elementwise over the storage: y and dx keep x's memory format.
#pragma once

#include <tuple>
#include <utility>

#include "layers/layer.h"

namespace lockstep {

class ReLU : public Layer {
 public:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;  // dy in either format
  bool accepts_channels_last() const override { return true; }
  std::string describe() const override { return "ReLU"; }
  Shape output_shape(const Shape& in) const override { return in; }

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(y_, Tensor())); }
  void restore_saved(std::any s) override { std::tie(y_) = std::any_cast<std::tuple<Tensor>>(std::move(s)); }

 private:
  Tensor y_;  // saved output
};

}  // namespace lockstep
