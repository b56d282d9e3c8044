// Conv2d forward/backward: im2col + GEMM (kernel library) per image.
#include "layers/conv2d.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "layers/im2col.h"
#include "layers/init.h"
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

Tensor Conv2d::forward(const Tensor& x) {
  LOCKSTEP_FAIL_IF(x.ndim() != 4 || x.dim(1) != o_.in_channels)
      << describe() << ": expected input (N, " << o_.in_channels << ", H, W), got "
      << shape_str(x.shape());
  ConvGeometry g{x.dim(1), x.dim(2), x.dim(3), o_.kernel, o_.stride, o_.padding};
  LOCKSTEP_FAIL_IF(g.h + 2 * g.pad < g.k || g.w + 2 * g.pad < g.k)
      << describe() << ": input " << shape_str(x.shape()) << " is smaller than the kernel";
  const int64_t n = x.dim(0), oh = g.oh(), ow = g.ow(), cout = o_.out_channels;
  const int kk = static_cast<int>(g.c * g.k * g.k), hw = static_cast<int>(oh * ow);
  Tensor y = Tensor::empty({n, cout, oh, ow});
  std::vector<float> col(static_cast<size_t>(kk) * hw);
  for (int64_t i = 0; i < n; ++i) {
    float* yi = y.data() + i * cout * hw;
    if (bias_) {
      for (int64_t c = 0; c < cout; ++c) std::fill_n(yi + c * hw, hw, bias_->value[c]);
    }
    im2col(x.data() + i * g.c * g.h * g.w, g, col.data());
    // y_i (C_out, OH*OW) = W (C_out, C_in*K*K) col (C_in*K*K, OH*OW)
    gemm(false, false, cout, hw, kk, 1.f, weight_->value.data(), kk, col.data(), hw,
         bias_ ? 1.f : 0.f, yi, hw);
  }
  x_ = grad_enabled() ? x : Tensor();
  return y;
}

Tensor Conv2d::backward(const Tensor& dy) {
  require_saved(x_.defined());
  ConvGeometry g{x_.dim(1), x_.dim(2), x_.dim(3), o_.kernel, o_.stride, o_.padding};
  const int64_t n = x_.dim(0), cout = o_.out_channels;
  const int kk = static_cast<int>(g.c * g.k * g.k), hw = static_cast<int>(g.oh() * g.ow());
  LOCKSTEP_CHECK(dy.numel() == n * cout * hw) << describe() << ": grad " << shape_str(dy.shape());
  std::vector<float> col(static_cast<size_t>(kk) * hw);
  Tensor dx;
  if (needs_input_grad()) dx = Tensor::zeros(x_.shape());
  for (int64_t i = 0; i < n; ++i) {
    const float* dyi = dy.data() + i * cout * hw;
    if (bias_) {
      for (int64_t c = 0; c < cout; ++c) {
        float s = 0.f;
        for (int j = 0; j < hw; ++j) s += dyi[c * hw + j];
        bias_->grad[c] += s;
      }
    }
    im2col(x_.data() + i * g.c * g.h * g.w, g, col.data());
    // dW (C_out, KK) += dy_i (C_out, HW) col^T (HW, KK)
    gemm(false, true, cout, kk, hw, 1.f, dyi, hw, col.data(), hw, 1.f, weight_->grad.data(), kk);
    if (dx.defined()) {
      // dcol (KK, HW) = W^T (KK, C_out) dy_i (C_out, HW)
      gemm(true, false, kk, hw, cout, 1.f, weight_->value.data(), kk, dyi, hw, 0.f, col.data(), hw);
      col2im_add(col.data(), g, dx.data() + i * g.c * g.h * g.w);
    }
  }
  x_ = Tensor();
  return dx;
}

}  // namespace lockstep
