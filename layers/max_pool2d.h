// MaxPool2d, as torch.nn.MaxPool2d(kernel, stride, padding, dilation) (ceil_mode=False); stride
// defaults to kernel. x: (N, C, H, W) -> y: (N, C, OH, OW), OH = (H + 2*pad - dil*(K-1) - 1) / stride + 1.
// Padded positions count as -inf and are never chosen (torch requires pad <= K/2, so every window
// holds an input). Each window picks PyTorch's element: the first maximum in scan order, but a NaN
// wins (the last NaN of the window), so NaN propagates forward and its gradient goes to that NaN.
// For 2x2 windows at stride 2 without padding or dilation forward keeps a one-byte position per
// output; otherwise backward finds each window's element again in the saved input (which the
// previous layer holds anyway).
// A channels_last x is pooled in its NHWC storage (every channel of a window at once, the same
// element chosen as in NCHW); y and dx are then channels_last, and forward keeps each output's
// chosen position (an int32) for backward.
#pragma once

#include <tuple>
#include <utility>

#include <vector>

#include "layers/layer.h"

namespace lockstep {

struct MaxPool2dOptions {
  int64_t kernel;
  int64_t stride = 0;  // 0: kernel
  int64_t padding = 0;
  int64_t dilation = 1;
};

class MaxPool2d : public Layer {
 public:
  explicit MaxPool2d(int64_t kernel, int64_t stride = 0) : MaxPool2d(MaxPool2dOptions{kernel, stride}) {}
  explicit MaxPool2d(MaxPool2dOptions o);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;  // dy in either format
  bool accepts_channels_last() const override { return true; }
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 protected:
  std::any take_saved() override { return std::make_tuple(std::exchange(x_, Tensor()), std::exchange(y_, Tensor()), std::exchange(pos_, std::vector<uint8_t>()), std::exchange(at_, std::vector<int32_t>())); }
  void restore_saved(std::any s) override { std::tie(x_, y_, pos_, at_) = std::any_cast<std::tuple<Tensor, Tensor, std::vector<uint8_t>, std::vector<int32_t>>>(std::move(s)); }

 private:
  // Offset (iy * w + ix) in an (h, w) plane of the input chosen for output (i, j).
  int64_t window_argmax(const float* plane, int64_t h, int64_t w, int64_t i, int64_t j) const;
  bool is_k2s2() const { return k_ == 2 && stride_ == 2 && pad_ == 0 && dil_ == 1; }
  // The NHWC kernels: x channels_last (N, C, H, W) -> y channels_last (N, C, OH, OW).
  Tensor forward_nhwc(const Tensor& x);
  // Keeps x and y for backward under grad mode, else releases both.
  void keep_for_backward(bool save, const Tensor& x, const Tensor& y);
  Tensor backward_nhwc(const Tensor& dy);

  int64_t k_, stride_, pad_, dil_;
  Tensor x_, y_;  // saved input and output (shared storage, no copies)
  std::vector<uint8_t> pos_;  // 2x2 windows: position 0..3 of each output's maximum
  std::vector<int32_t> at_;   // NHWC: each output's input position iy * W + ix, in y's storage order
};

}  // namespace lockstep
