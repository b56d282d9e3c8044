// MaxPool2d forward (records argmax when grad is on) and backward (scatter to the argmax).
#include "layers/max_pool2d.h"

#include <algorithm>
#include <sstream>

#include "layers/pool_kernels.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride) : k_(kernel), stride_(stride ? stride : kernel) {
  LOCKSTEP_FAIL_IF(k_ <= 0 || stride_ <= 0) << describe() << ": kernel and stride must be positive";
}

std::string MaxPool2d::describe() const {
  std::ostringstream os;
  os << "MaxPool2d(k=" << k_ << ", stride=" << stride_ << ")";
  return os.str();
}

// Offset (a * w + b) of the k x k window at `top_left` (rows w apart) chosen by PyTorch's rule
// (pool_takes_over: the first maximum, but the last NaN when there is one).
int64_t MaxPool2d::window_argmax(const float* top_left, int64_t w) const {
  float m = -__builtin_inff();
  int64_t at = 0;
  for (int64_t a = 0; a < k_; ++a)
    for (int64_t b = 0; b < k_; ++b) {
      const float v = top_left[a * w + b];
      if (pool_takes_over(v, m)) {
        m = v;
        at = a * w + b;
      }
    }
  return at;
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(in.size() != 4 || in[2] < k_ || in[3] < k_)
      << describe() << ": expected input (N, C, H>=" << k_ << ", W>=" << k_ << "), got " << shape_str(in);
  return {in[0], in[1], (in[2] - k_) / stride_ + 1, (in[3] - k_) / stride_ + 1};
}

Tensor MaxPool2d::forward_impl(const Tensor& x) {
  Tensor y = Tensor::empty(output_shape(x.shape()));
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t oh = y.dim(2), ow = y.dim(3);
  const bool save = grad_enabled();
  const bool k2s2 = k_ == 2 && stride_ == 2;
  pos_.resize(save && k2s2 ? static_cast<size_t>(y.numel()) : 0);
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x.data() + p * h * w;
    float* dst = y.data() + p * oh * ow;
    for (int64_t i = 0; i < oh; ++i) {
      float* out = dst + i * ow;
      const float* r0 = src + i * stride_ * w;
      if (k2s2) {  // the common case: row kernels
        max_pool2x2_row(r0, r0 + w, ow, out, save ? pos_.data() + (p * oh + i) * ow : nullptr);
        continue;
      }
      for (int64_t j = 0; j < ow; ++j) out[j] = r0[j * stride_ + window_argmax(r0 + j * stride_, w)];
    }
  }
  if (save) {
    x_ = x;
    y_ = y;
  } else {
    x_ = y_ = Tensor();
  }
  return y;
}

Tensor MaxPool2d::backward(const Tensor& dy) {
  require_saved(x_.defined());
  LOCKSTEP_CHECK(dy.numel() == y_.numel()) << describe() << ": grad size";
  const int64_t planes = x_.dim(0) * x_.dim(1), h = x_.dim(2), w = x_.dim(3);
  const int64_t oh = y_.dim(2), ow = y_.dim(3);
  if (!pos_.empty()) {  // 2x2 stride 2: every input of a covered window written once
    Tensor dx = (h % 2 || w % 2) ? Tensor::zeros(x_.shape()) : Tensor::empty(x_.shape());
    for (int64_t p = 0; p < planes; ++p)
      for (int64_t i = 0; i < oh; ++i) {
        float* r0 = dx.data() + p * h * w + 2 * i * w;
        max_pool2x2_backward_row(pos_.data() + (p * oh + i) * ow, dy.data() + (p * oh + i) * ow, ow, r0, r0 + w);
      }
    x_ = y_ = Tensor();
    pos_.clear();
    return dx;
  }
  Tensor dx = Tensor::zeros(x_.shape());
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x_.data() + p * h * w;
    float* d = dx.data() + p * h * w;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const int64_t o = (p * oh + i) * ow + j;
        const int64_t base = i * stride_ * w + j * stride_;
        d[base + window_argmax(src + base, w)] += dy[o];
      }
  }
  x_ = y_ = Tensor();
  return dx;
}

}  // namespace lockstep
