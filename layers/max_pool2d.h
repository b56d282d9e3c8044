// MaxPool2d without padding, as torch.nn.MaxPool2d(kernel, stride); stride defaults to kernel.
// x: (N, C, H, W) -> y: (N, C, OH, OW), OH = (H - K) / stride + 1.
// Ties pick the first maximum in scan order (PyTorch's rule). For 2x2 windows at stride 2 forward
// keeps a one-byte position per output; otherwise backward finds, per window, the first element
// equal to its maximum in the saved input (which the previous layer holds anyway).
#pragma once

#include <vector>

#include "layers/module.h"

namespace lockstep {

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0);
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;

 private:
  int64_t k_, stride_;
  Tensor x_, y_;  // saved input and output (shared storage, no copies)
  std::vector<uint8_t> pos_;  // 2x2 windows: position 0..3 of each output's maximum
};

}  // namespace lockstep
