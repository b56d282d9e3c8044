// MaxPool2d forward (records argmax when grad is on) and backward (scatter to the argmax).
#include "layers/max_pool2d.h"

#include <sstream>

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

Tensor MaxPool2d::forward(const Tensor& x) {
  LOCKSTEP_FAIL_IF(x.ndim() != 4 || x.dim(2) < k_ || x.dim(3) < k_)
      << describe() << ": expected input (N, C, H>=" << k_ << ", W>=" << k_ << "), got "
      << shape_str(x.shape());
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t oh = (h - k_) / stride_ + 1, ow = (w - k_) / stride_ + 1;
  Tensor y = Tensor::empty({x.dim(0), x.dim(1), oh, ow});
  saved_ = grad_enabled();
  if (saved_) {
    argmax_.resize(static_cast<size_t>(y.numel()));
    in_shape_ = x.shape();
  } else {
    argmax_.clear();
  }
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x.data() + p * h * w;
    float* dst = y.data() + p * oh * ow;
    int32_t* arg = saved_ ? argmax_.data() + p * oh * ow : nullptr;
    for (int64_t i = 0; i < oh; ++i) {
      for (int64_t j = 0; j < ow; ++j) {
        int64_t best = i * stride_ * w + j * stride_;
        float m = src[best];
        for (int64_t a = 0; a < k_; ++a) {
          for (int64_t b = 0; b < k_; ++b) {
            int64_t idx = (i * stride_ + a) * w + j * stride_ + b;
            if (src[idx] > m) {
              m = src[idx];
              best = idx;
            }
          }
        }
        dst[i * ow + j] = m;
        if (arg) arg[i * ow + j] = static_cast<int32_t>(best);
      }
    }
  }
  return y;
}

Tensor MaxPool2d::backward(const Tensor& dy) {
  require_saved(saved_);
  LOCKSTEP_CHECK(dy.numel() == static_cast<int64_t>(argmax_.size())) << describe() << ": grad size";
  Tensor dx = Tensor::zeros(in_shape_);
  const int64_t planes = in_shape_[0] * in_shape_[1], hw = in_shape_[2] * in_shape_[3];
  const int64_t ohw = dy.numel() / planes;
  for (int64_t p = 0; p < planes; ++p) {
    float* d = dx.data() + p * hw;
    for (int64_t o = 0; o < ohw; ++o) d[argmax_[p * ohw + o]] += dy[p * ohw + o];
  }
  saved_ = false;
  return dx;
}

}  // namespace lockstep
