// MaxPool2d without padding, as torch.nn.MaxPool2d(kernel, stride); stride defaults to kernel.
// x: (N, C, H, W) -> y: (N, C, OH, OW), OH = (H - K) / stride + 1. Ties pick the first maximum.
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
  Shape in_shape_;
  std::vector<int32_t> argmax_;  // per output element: index within its (H*W) input plane
  bool saved_ = false;
};

}  // namespace lockstep
