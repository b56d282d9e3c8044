// Conv2d forward/backward: oneDNN's convolution primitives, or im2col + GEMM (kernel library) per
// image and group.
#include "layers/conv2d.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "layers/im2col.h"
#include "layers/init.h"
#include "layers/shape_math.h"
#include "runtime/check.h"
#include "runtime/gemm.h"
#include "runtime/grad_mode.h"
#include "runtime/precision.h"

namespace lockstep {

Conv2d::Conv2d(Conv2dOptions o) : o_(o) {
  auto positive = [&](const char* field, int64_t v) {
    LOCKSTEP_FAIL_IF(v <= 0) << describe() << ": " << field << " must be positive, got " << v;
  };
  positive("in_channels", o.in_channels);
  positive("out_channels", o.out_channels);
  positive("kernel", o.kernel);
  positive("stride", o.stride);
  positive("dilation", o.dilation);
  positive("groups", o.groups);
  LOCKSTEP_FAIL_IF(o.padding < 0) << describe() << ": padding must not be negative, got " << o.padding;
  LOCKSTEP_FAIL_IF(o.in_channels % o.groups != 0)
      << describe() << ": in_channels " << o.in_channels << " is not divisible by groups " << o.groups;
  LOCKSTEP_FAIL_IF(o.out_channels % o.groups != 0)
      << describe() << ": out_channels " << o.out_channels << " is not divisible by groups " << o.groups;
  const auto w = checked_numel({o.out_channels, o.in_channels / o.groups, o.kernel, o.kernel});
  LOCKSTEP_FAIL_IF(!w || *w > kMaxTensorElements)
      << describe() << ": the weight is more than 2^31 elements";
  weight_ = &register_parameter(
      "weight", Tensor::zeros({o.out_channels, o.in_channels / o.groups, o.kernel, o.kernel}));
  if (o.bias) bias_ = &register_parameter("bias", Tensor::zeros({o.out_channels}));
}

std::string Conv2d::describe() const {
  std::ostringstream os;
  os << "Conv2d(" << o_.in_channels << "->" << o_.out_channels << ", k=" << o_.kernel
     << ", stride=" << o_.stride << ", pad=" << o_.padding;
  if (o_.dilation != 1) os << ", dilation=" << o_.dilation;
  if (o_.groups != 1) os << ", groups=" << o_.groups;
  os << ")";
  return os.str();
}

// kaiming_uniform_(a=sqrt(5)) reduces to U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in the weight's
// size(1) * K * K = C_in/groups * K * K; the bias uses the same bound (torch's _ConvNd).
void Conv2d::reset_parameters(Philox& rng, uint32_t& slot) {
  const int64_t fan_in = o_.in_channels / o_.groups * o_.kernel * o_.kernel;
  float bound = 1.f / std::sqrt(static_cast<float>(fan_in));
  fill_uniform(weight_->value, bound, rng, slot++);
  if (bias_) fill_uniform(bias_->value, bound, rng, slot++);
}

// (N, C_in, H, W) -> (N, C_out, OH, OW), OH = (H + 2*pad - dil*(K-1) - 1) / stride + 1, every step
// checked.
Shape Conv2d::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(in.size() != 4 || in[1] != o_.in_channels)
      << describe() << ": expected input (N, " << o_.in_channels << ", H, W), got " << shape_str(in);
  const auto span = checked_mul(o_.dilation, o_.kernel - 1);  // dilated extent - 1
  LOCKSTEP_FAIL_IF(!span) << describe() << ": dilation " << o_.dilation << " overflows 64-bit sizes";
  auto out_size = [&](int64_t size) -> int64_t {
    const auto twice_pad = checked_mul(2, o_.padding);
    const auto padded = twice_pad ? checked_add(size, *twice_pad) : std::nullopt;
    LOCKSTEP_FAIL_IF(!padded) << describe() << ": input " << shape_str(in) << " with padding "
                              << o_.padding << " overflows 64-bit sizes";
    LOCKSTEP_FAIL_IF(*padded <= *span)
        << describe() << ": input " << shape_str(in) << " is smaller than the (dilated) kernel";
    return (*padded - *span - 1) / o_.stride + 1;
  };
  const Shape out{in[0], o_.out_channels, out_size(in[2]), out_size(in[3])};
  const auto hw = checked_mul(out[2], out[3]);
  const auto kk = checked_numel({o_.in_channels, o_.kernel, o_.kernel});
  const auto cols = hw && kk ? checked_mul(*hw, *kk) : std::nullopt;
  LOCKSTEP_FAIL_IF(!cols || *cols > kMaxTensorElements)
      << describe() << ": input " << shape_str(in) << " with padding " << o_.padding << " gives output "
      << shape_str(out) << ", whose im2col matrix (C_in*K*K, OH*OW) is more than 2^31 elements per sample";
  return out;
}

DnnlConv* Conv2d::dnnl_for(const Shape& shape, MemoryFormat format, Precision dtype) {
  const DnnlConvShape s{.n = shape[0], .c_in = shape[1], .h = shape[2], .w = shape[3],
                        .c_out = o_.out_channels, .k = o_.kernel, .stride = o_.stride, .pad = o_.padding,
                        .dil = o_.dilation, .groups = o_.groups, .bias = bias_ != nullptr,
                        .channels_last = format == MemoryFormat::kChannelsLast, .dtype = dtype};
  for (auto& b : convs_)
    if (b.shape == s) return b.conv.get();
  constexpr size_t kMaxShapes = 4;
  if (convs_.size() == kMaxShapes) {
    if (saved_conv_ == convs_.front().conv.get()) saved_conv_ = nullptr;
    convs_.erase(convs_.begin());
  }
  auto conv = DnnlConv::create(s);
  if (!conv && dtype != Precision::kFP32) {  // no bf16 convolution here: oneDNN's fp32 one
    DnnlConvShape f = s;
    f.dtype = Precision::kFP32;
    conv = DnnlConv::create(f);
  }
  convs_.push_back({s, std::move(conv)});
  return convs_.back().conv.get();
}

Tensor Conv2d::forward_dnnl(DnnlConv& conv, const Tensor& x) {
  const bool save = grad_enabled();
  Tensor y = Tensor::empty({x.dim(0), o_.out_channels, conv.oh(), conv.ow()}, x.memory_format());
  conv.forward(x.data(), weight_->value.data(), bias_ ? bias_->value.data() : nullptr, y.data(), save);
  x_ = save ? x : Tensor();
  saved_conv_ = save ? &conv : nullptr;
  return y;
}

Tensor Conv2d::forward_impl(const Tensor& x_in) {
  output_shape(x_in.shape());
  cols_ = Tensor();
  saved_conv_ = nullptr;
  if (DnnlConv* conv = dnnl_for(x_in.shape(), x_in.memory_format(), autocast_precision()))
    return forward_dnnl(*conv, x_in);
  // im2col reads NCHW; a channels_last caller gets a channels_last y back (torch's rule).
  if (x_in.is_channels_last()) return forward_impl(x_in.contiguous()).to_channels_last();
  const Tensor& x = x_in;
  ConvGeometry g{x.dim(1), x.dim(2), x.dim(3), o_.kernel, o_.stride, o_.padding, o_.dilation};
  const int64_t n = x.dim(0), oh = g.oh(), ow = g.ow(), cout = o_.out_channels;
  const int64_t kk = g.c * g.k * g.k, hw = oh * ow, in_hw = g.c * g.h * g.w;
  // Per group: gout output channels, gkk im2col rows (its input channels' taps).
  const int64_t groups = o_.groups, gout = cout / groups, gkk = kk / groups;
  Tensor y = Tensor::empty({n, cout, oh, ow});
  // Training keeps every image's im2col for backward; no-grad reuses one image's scratch.
  const bool save = grad_enabled();
  cols_ = save ? Tensor::empty({n, kk, hw}) : Tensor();
  if (!save) col_.resize(static_cast<size_t>(kk * hw));
  for (int64_t i = 0; i < n; ++i) {
    float* col = save ? cols_.data() + i * kk * hw : col_.data();
    im2col(x.data() + i * in_hw, g, col, hw);
    float* yi = y.data() + i * cout * hw;
    if (bias_)
      for (int64_t c = 0; c < cout; ++c) std::fill_n(yi + c * hw, hw, bias_->value[c]);
    // y_i,g (C_out/G, HW) = W_g (C_out/G, KK/G) col_i,g (KK/G, HW) + bias
    for (int64_t gi = 0; gi < groups; ++gi)
      gemm(false, false, static_cast<int>(gout), static_cast<int>(hw), static_cast<int>(gkk), 1.f,
           weight_->value.data() + gi * gout * gkk, static_cast<int>(gkk), col + gi * gkk * hw,
           static_cast<int>(hw), bias_ ? 1.f : 0.f, yi + gi * gout * hw, static_cast<int>(hw));
  }
  x_ = save ? x : Tensor();
  return y;
}

Tensor Conv2d::backward(const Tensor& dy_in) {
  // y had x's format on the oneDNN path; im2col saved an NCHW x.
  const Tensor dy = x_.defined() ? dy_in.to_format(x_.memory_format()) : dy_in;
  if (saved_conv_) {
    require_saved(x_.defined());
    DnnlConv& conv = *saved_conv_;
    LOCKSTEP_CHECK(dy.numel() == x_.dim(0) * o_.out_channels * conv.oh() * conv.ow())
        << describe() << ": grad " << shape_str(dy.shape());
    Tensor dx;
    if (needs_input_grad()) dx = Tensor::empty(x_.shape(), x_.memory_format());
    conv.backward(x_.data(), dy.data(), weight_->value.data(), dx.defined() ? dx.data() : nullptr,
                  weight_->grad.data(), bias_ ? bias_->grad.data() : nullptr);
    x_ = Tensor();
    saved_conv_ = nullptr;
    return dx;
  }
  require_saved(cols_.defined());
  ConvGeometry g{x_.dim(1), x_.dim(2), x_.dim(3), o_.kernel, o_.stride, o_.padding, o_.dilation};
  const int64_t n = x_.dim(0), cout = o_.out_channels;
  const int64_t kk = g.c * g.k * g.k, hw = g.oh() * g.ow(), in_hw = g.c * g.h * g.w;
  const int64_t groups = o_.groups, gout = cout / groups, gkk = kk / groups;
  LOCKSTEP_CHECK(dy.numel() == n * cout * hw) << describe() << ": grad " << shape_str(dy.shape());
  Tensor dx;
  if (needs_input_grad()) dx = Tensor::zeros(x_.shape());
  for (int64_t i = 0; i < n; ++i) {
    const float* dyi = dy.data() + i * cout * hw;
    float* col = cols_.data() + i * kk * hw;
    if (bias_) {
      for (int64_t c = 0; c < cout; ++c) {
        const float* r = dyi + c * hw;
        float s = 0.f;
#pragma omp simd reduction(+ : s)
        for (int64_t p = 0; p < hw; ++p) s += r[p];
        bias_->grad[c] += s;
      }
    }
    for (int64_t gi = 0; gi < groups; ++gi) {
      const float* dyg = dyi + gi * gout * hw;
      float* colg = col + gi * gkk * hw;
      // dW_g (C_out/G, KK/G) += dy_i,g (C_out/G, HW) col_i,g^T (HW, KK/G)
      gemm(false, true, static_cast<int>(gout), static_cast<int>(gkk), static_cast<int>(hw), 1.f, dyg,
           static_cast<int>(hw), colg, static_cast<int>(hw), 1.f, weight_->grad.data() + gi * gout * gkk,
           static_cast<int>(gkk));
      // dcol_i,g (KK/G, HW) = W_g^T (KK/G, C_out/G) dy_i,g (C_out/G, HW), over the saved im2col
      // (used up)
      if (dx.defined())
        gemm(true, false, static_cast<int>(gkk), static_cast<int>(hw), static_cast<int>(gout), 1.f,
             weight_->value.data() + gi * gout * gkk, static_cast<int>(gkk), dyg, static_cast<int>(hw), 0.f,
             colg, static_cast<int>(hw));
    }
    if (dx.defined()) col2im_add(col, g, hw, dx.data() + i * in_hw);
  }
  x_ = Tensor();
  cols_ = Tensor();
  return dx;
}

}  // namespace lockstep
