// ReLU forward/backward.
#include "layers/relu.h"

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

Tensor ReLU::forward_impl(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.memory_format());
  const float* a = x.data();
  float* b = y.data();
  // As torch.relu (clamp_min): NaN stays NaN; `a > 0 ? a : 0` would map it to 0.
  for (int64_t i = 0; i < x.numel(); ++i) b[i] = a[i] < 0.f ? 0.f : a[i];
  y_ = grad_enabled() ? y : Tensor();
  return y;
}

Tensor ReLU::backward(const Tensor& dy_in) {
  require_saved(y_.defined());
  LOCKSTEP_CHECK(dy_in.numel() == y_.numel()) << "ReLU: grad size";
  const Tensor dy = dy_in.to_format(y_.memory_format());
  Tensor dx = Tensor::empty(y_.shape(), y_.memory_format());
  const float* y = y_.data();
  const float* g = dy.data();
  float* d = dx.data();
  // As threshold_backward: dy passes unless y <= 0, so a NaN output passes its gradient on.
  for (int64_t i = 0; i < dx.numel(); ++i) d[i] = y[i] <= 0.f ? 0.f : g[i];
  y_ = Tensor();
  return dx;
}

}  // namespace lockstep
