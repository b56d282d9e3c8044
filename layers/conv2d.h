// Conv2d: square kernel, stride, zero padding, dilation and groups, as torch.nn.Conv2d
// (padding_mode="zeros").
// x: (N, C_in, H, W) -> y: (N, C_out, OH, OW); weight: (C_out, C_in/groups, K, K); bias: (C_out)
// OH = (H + 2*pad - dil*(K-1) - 1) / stride + 1. Two kernels:
// - oneDNN's convolution primitives (runtime/dnnl_conv.h), cached per input shape and memory
//   format: the default, faster on every shape of the reference models (the 1-channel first conv
//   included). A channels_last x is read as NHWC with no reorder, and y is channels_last too
//   (torch's rule: the output follows a channels_last input); dx is in x's format.
// - im2col (dilation is in the gather) + one GEMM per image and group, where oneDNN has no
//   implementation for a shape: output channels [g*C_out/G, (g+1)*C_out/G) read input channels
//   [g*C_in/G, (g+1)*C_in/G), whose im2col rows are one contiguous block. An image's im2col matrix
//   stays in cache between its gather and its GEMMs. With grad enabled forward keeps the im2col
//   matrices (N*KK*HW floats) so backward need not rebuild them.
// Mixed precision (runtime/precision.h): under AutocastGuard(kBF16) forward builds the bf16
// convolution (bf16 input and weight, fp32 accumulation and output, the input kept for backward in
// bf16), as torch.autocast("cpu", dtype=torch.bfloat16) runs conv2d; backward runs in the dtype its
// forward ran, whatever the precision then. A shape with no oneDNN bf16 convolution runs oneDNN's
// fp32 one, and the im2col fallback is fp32 only.
#pragma once

#include <memory>
#include <vector>

#include "layers/layer.h"
#include "runtime/dnnl_conv.h"

namespace lockstep {

struct Conv2dOptions {
  int64_t in_channels, out_channels, kernel;
  int64_t stride = 1, padding = 0;
  bool bias = true;
  int64_t dilation = 1;
  int64_t groups = 1;  // in_channels and out_channels must both divide by it; in_channels: depthwise
};

class Conv2d : public Layer {
 public:
  explicit Conv2d(Conv2dOptions o);
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;  // dy in either format
  bool accepts_channels_last() const override { return true; }
  std::string describe() const override;
  // Also refuses an input whose per-sample im2col matrix (C_in*K*K, OH*OW) would exceed
  // kMaxTensorElements (layers/shape_math.h): forward builds it.
  Shape output_shape(const Shape& in) const override;
  void reset_parameters(Philox& rng, uint32_t& slot) override;

 private:
  Conv2dOptions o_;
  Parameter* weight_;
  Parameter* bias_ = nullptr;
  // The oneDNN convolution for input shape `shape` in `format` and `dtype` (fp32 where oneDNN has
  // no bf16 one), built on first use; null where im2col is used.
  DnnlConv* dnnl_for(const Shape& shape, MemoryFormat format, Precision dtype);
  Tensor forward_dnnl(DnnlConv& conv, const Tensor& x);

  Tensor x_;     // saved input (the oneDNN path reads it; im2col's data is in cols_)
  Tensor cols_;  // im2col path: saved im2col matrices, (N, KK, HW), KK = C_in*K*K
  // Convolutions built so far, newest last, for a few (input shape, dtype) keys at most (training
  // batch, last batch, eval batch); a null conv marks a shape oneDNN refused.
  struct Built {
    DnnlConvShape shape;
    std::unique_ptr<DnnlConv> conv;
  };
  std::vector<Built> convs_;
  DnnlConv* saved_conv_ = nullptr;  // the one the last recorded forward ran, for backward
  std::vector<float> col_;  // no-grad scratch: one image's im2col (KK, HW)
};

}  // namespace lockstep
