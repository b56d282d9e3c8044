// AvgPool2d, as torch.nn.AvgPool2d(kernel, stride, padding, ceil_mode, count_include_pad)
// (divisor_override unset); stride defaults to kernel.
// x: (N, C, H, W) -> y: (N, C, OH, OW), OH = (H + 2*pad - K) / stride + 1, rounded up with
// ceil_mode (a last window must then start inside the input or its left padding).
// Each output is the sum of its window's in-bounds inputs over a divisor: the window's size
// clipped to the padded input (count_include_pad) or its in-bounds count. Backward spreads dy over
// the same window with the same divisor, so it needs only shapes: nothing is saved.
#pragma once

#include <tuple>
#include <utility>

#include "layers/layer.h"

namespace lockstep {

struct AvgPool2dOptions {
  int64_t kernel;
  int64_t stride = 0;  // 0: kernel
  int64_t padding = 0;
  bool ceil_mode = false;
  bool count_include_pad = true;
};

class AvgPool2d : public Layer {
 public:
  explicit AvgPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0)
      : AvgPool2d(AvgPool2dOptions{kernel, stride, padding}) {}
  explicit AvgPool2d(AvgPool2dOptions o);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(in_shape_, Shape())); }
  void restore_saved(std::any s) override { std::tie(in_shape_) = std::any_cast<std::tuple<Shape>>(std::move(s)); }

 private:
  int64_t out_size(int64_t size, const Shape& in) const;
  // Output (i, j) of an (h, w) plane: its in-bounds rows [y0, y1), columns [x0, x1) and divisor.
  struct Window {
    int64_t y0, y1, x0, x1;
    float divisor;
  };
  Window window(int64_t h, int64_t w, int64_t i, int64_t j) const;

  AvgPool2dOptions o_;
  Shape in_shape_;  // of the last recorded forward; empty when none is pending
};

}  // namespace lockstep
