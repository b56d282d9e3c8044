// Conv2d forward/backward: im2col + GEMM (kernel library) per image.
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

namespace lockstep {

Conv2d::Conv2d(Conv2dOptions o) : o_(o) {
  LOCKSTEP_FAIL_IF(o.in_channels <= 0 || o.out_channels <= 0 || o.kernel <= 0 || o.stride <= 0 ||
                   o.padding < 0)
      << describe() << ": channels, kernel and stride must be positive, padding non-negative";
  weight_ = &register_parameter("weight",
                                Tensor::zeros({o.out_channels, o.in_channels, o.kernel, o.kernel}));
  if (o.bias) bias_ = &register_parameter("bias", Tensor::zeros({o.out_channels}));
}

std::string Conv2d::describe() const {
  std::ostringstream os;
  os << "Conv2d(" << o_.in_channels << "->" << o_.out_channels << ", k=" << o_.kernel
     << ", stride=" << o_.stride << ", pad=" << o_.padding << ")";
  return os.str();
}

void Conv2d::reset_parameters(Philox& rng, uint32_t& slot) {
  float bound = 1.f / std::sqrt(static_cast<float>(o_.in_channels * o_.kernel * o_.kernel));
  fill_uniform(weight_->value, bound, rng, slot++);
  if (bias_) fill_uniform(bias_->value, bound, rng, slot++);
}

// (N, C_in, H, W) -> (N, C_out, OH, OW), OH = (H + 2*pad - K) / stride + 1, every step checked.
Shape Conv2d::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(in.size() != 4 || in[1] != o_.in_channels)
      << describe() << ": expected input (N, " << o_.in_channels << ", H, W), got " << shape_str(in);
  auto out_size = [&](int64_t size) -> int64_t {
    const auto twice_pad = checked_mul(2, o_.padding);
    const auto padded = twice_pad ? checked_add(size, *twice_pad) : std::nullopt;
    LOCKSTEP_FAIL_IF(!padded) << describe() << ": input " << shape_str(in) << " with padding "
                              << o_.padding << " overflows 64-bit sizes";
    LOCKSTEP_FAIL_IF(*padded < o_.kernel)
        << describe() << ": input " << shape_str(in) << " is smaller than the kernel";
    return (*padded - o_.kernel) / o_.stride + 1;
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

Tensor Conv2d::forward_impl(const Tensor& x) {
  output_shape(x.shape());
  ConvGeometry g{x.dim(1), x.dim(2), x.dim(3), o_.kernel, o_.stride, o_.padding};
  const int64_t n = x.dim(0), oh = g.oh(), ow = g.ow(), cout = o_.out_channels;
  const int64_t kk = g.c * g.k * g.k, hw = oh * ow, in_hw = g.c * g.h * g.w;
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
    // y_i (C_out, HW) = W (C_out, KK) col_i (KK, HW) + bias
    gemm(false, false, static_cast<int>(cout), static_cast<int>(hw), static_cast<int>(kk), 1.f,
         weight_->value.data(), static_cast<int>(kk), col, static_cast<int>(hw), bias_ ? 1.f : 0.f, yi,
         static_cast<int>(hw));
  }
  x_ = save ? x : Tensor();
  return y;
}

Tensor Conv2d::backward(const Tensor& dy) {
  require_saved(cols_.defined());
  ConvGeometry g{x_.dim(1), x_.dim(2), x_.dim(3), o_.kernel, o_.stride, o_.padding};
  const int64_t n = x_.dim(0), cout = o_.out_channels;
  const int64_t kk = g.c * g.k * g.k, hw = g.oh() * g.ow(), in_hw = g.c * g.h * g.w;
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
    // dW (C_out, KK) += dy_i (C_out, HW) col_i^T (HW, KK)
    gemm(false, true, static_cast<int>(cout), static_cast<int>(kk), static_cast<int>(hw), 1.f, dyi,
         static_cast<int>(hw), col, static_cast<int>(hw), 1.f, weight_->grad.data(), static_cast<int>(kk));
    if (dx.defined()) {
      // dcol_i (KK, HW) = W^T (KK, C_out) dy_i (C_out, HW), over the saved im2col (used up)
      gemm(true, false, static_cast<int>(kk), static_cast<int>(hw), static_cast<int>(cout), 1.f,
           weight_->value.data(), static_cast<int>(kk), dyi, static_cast<int>(hw), 0.f, col,
           static_cast<int>(hw));
      col2im_add(col, g, hw, dx.data() + i * in_hw);
    }
  }
  x_ = Tensor();
  cols_ = Tensor();
  return dx;
}

}  // namespace lockstep
