// MaxPool2d without padding, as torch.nn.MaxPool2d(kernel, stride); stride defaults to kernel.
// x: (N, C, H, W) -> y: (N, C, OH, OW), OH = (H - K) / stride + 1.
// Each window picks PyTorch's element: the first maximum in scan order, but a NaN wins (the last
// NaN of the window), so NaN propagates forward and its gradient goes to that NaN. For 2x2 windows
// at stride 2 forward keeps a one-byte position per output; otherwise backward finds each
// window's element again in the saved input (which the previous layer holds anyway).
#pragma once

#include <vector>

#include "layers/layer.h"

namespace lockstep {

class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 private:
  int64_t window_argmax(const float* top_left, int64_t w) const;

  int64_t k_, stride_;
  Tensor x_, y_;  // saved input and output (shared storage, no copies)
  std::vector<uint8_t> pos_;  // 2x2 windows: position 0..3 of each output's maximum
};

}  // namespace lockstep
