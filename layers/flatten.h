// Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), as torch.nn.Flatten(); a view, no copy.
#pragma once

#include <tuple>
#include <utility>

#include "layers/layer.h"

namespace lockstep {

class Flatten : public Layer {
 public:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override { return "Flatten"; }
  Shape output_shape(const Shape& in) const override;

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(in_shape_, Shape()), std::exchange(saved_, bool())); }
  void restore_saved(std::any s) override { std::tie(in_shape_, saved_) = std::any_cast<std::tuple<Shape, bool>>(std::move(s)); }

 private:
  Shape in_shape_;
  bool saved_ = false;
};

}  // namespace lockstep
