// AdaptiveAvgPool2d, as torch.nn.AdaptiveAvgPool2d(output_size): (1, 1) is global average pooling.
// x: (N, C, H, W) -> y: (N, C, OH, OW). Output row i averages input rows
// [floor(i*H/OH), ceil((i+1)*H/OH)) (PyTorch's start/end index), columns likewise; windows may
// overlap when H is not a multiple of OH. Backward spreads dy evenly over the same window.
#pragma once

#include <tuple>
#include <utility>

#include "layers/layer.h"

namespace lockstep {

class AdaptiveAvgPool2d : public Layer {
 public:
  explicit AdaptiveAvgPool2d(int64_t output_size) : AdaptiveAvgPool2d(output_size, output_size) {}
  AdaptiveAvgPool2d(int64_t output_height, int64_t output_width);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(in_shape_, Shape())); }
  void restore_saved(std::any s) override { std::tie(in_shape_) = std::any_cast<std::tuple<Shape>>(std::move(s)); }

 private:
  int64_t oh_, ow_;
  Shape in_shape_;  // of the last recorded forward; empty when none is pending
};

}  // namespace lockstep
