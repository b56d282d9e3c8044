// AdaptiveAvgPool2d, as torch.nn.AdaptiveAvgPool2d(output_size): (1, 1) is global average pooling.
// x: (N, C, H, W) -> y: (N, C, OH, OW). Output row i averages input rows
// [floor(i*H/OH), ceil((i+1)*H/OH)) (PyTorch's start/end index), columns likewise; windows may
// overlap when H is not a multiple of OH. Backward spreads dy evenly over the same window.
// Global pooling (1x1) reads a channels_last x as its NHWC storage, summing each channel in the
// same order, so the values are those of the NCHW run; y (N, C, 1, 1) is returned contiguous (the
// same storage in both formats), dx in x's format. Other output sizes read contiguous() of x.
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
  bool accepts_channels_last() const override { return true; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(in_shape_, Shape()), in_format_); }
  void restore_saved(std::any s) override {
    std::tie(in_shape_, in_format_) = std::any_cast<std::tuple<Shape, MemoryFormat>>(std::move(s));
  }

 private:
  int64_t oh_, ow_;
  Shape in_shape_;  // of the last recorded forward; empty when none is pending
  MemoryFormat in_format_ = MemoryFormat::kContiguous;  // of the input its kernel read
};

}  // namespace lockstep
