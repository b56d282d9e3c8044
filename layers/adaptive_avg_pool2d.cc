// AdaptiveAvgPool2d forward/backward over PyTorch's adaptive windows.
#include "layers/adaptive_avg_pool2d.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {
namespace {

// torch's start_index / end_index: floor(a*c/b) and ceil((a+1)*c/b), without overflow of a*c.
int64_t start_index(int64_t a, int64_t b, int64_t c) { return (a / b) * c + ((a % b) * c) / b; }
int64_t end_index(int64_t a, int64_t b, int64_t c) { return 1 + ((a + 1) * c - 1) / b; }

}  // namespace

AdaptiveAvgPool2d::AdaptiveAvgPool2d(int64_t output_height, int64_t output_width)
    : oh_(output_height), ow_(output_width) {
  LOCKSTEP_FAIL_IF(oh_ <= 0 || ow_ <= 0)
      << describe() << ": output_size must be positive, got (" << oh_ << ", " << ow_ << ")";
}

std::string AdaptiveAvgPool2d::describe() const {
  std::ostringstream os;
  os << "AdaptiveAvgPool2d(" << oh_ << "x" << ow_ << ")";
  return os.str();
}

Shape AdaptiveAvgPool2d::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(in.size() != 4 || in[2] <= 0 || in[3] <= 0)
      << describe() << ": expected input (N, C, H>0, W>0), got " << shape_str(in);
  return {in[0], in[1], oh_, ow_};
}

Tensor AdaptiveAvgPool2d::forward_impl(const Tensor& x) {
  Tensor y = Tensor::empty(output_shape(x.shape()));
  if (x.is_channels_last() && !x.is_contiguous()) {
    if (oh_ != 1 || ow_ != 1) return forward_impl(x.contiguous());
    // Global pooling of NHWC storage: channel c of image i sums x[i, :, :, c] in NCHW's order.
    const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
    std::vector<float> acc(static_cast<size_t>(c));
    for (int64_t i = 0; i < n; ++i) {
      std::fill(acc.begin(), acc.end(), 0.f);
      const float* src = x.data() + i * hw * c;
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t ch = 0; ch < c; ++ch) acc[ch] += src[p * c + ch];
      for (int64_t ch = 0; ch < c; ++ch) y[i * c + ch] = acc[ch] / static_cast<float>(hw);
    }
    in_shape_ = grad_enabled() ? x.shape() : Shape{};
    in_format_ = MemoryFormat::kChannelsLast;
    return y;
  }
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x.data() + p * h * w;
    float* dst = y.data() + p * oh_ * ow_;
    for (int64_t i = 0; i < oh_; ++i) {
      const int64_t y0 = start_index(i, oh_, h), y1 = end_index(i, oh_, h);
      for (int64_t j = 0; j < ow_; ++j) {
        const int64_t x0 = start_index(j, ow_, w), x1 = end_index(j, ow_, w);
        float s = 0.f;
        for (int64_t a = y0; a < y1; ++a)
          for (int64_t b = x0; b < x1; ++b) s += src[a * w + b];
        dst[i * ow_ + j] = s / static_cast<float>((y1 - y0) * (x1 - x0));
      }
    }
  }
  in_shape_ = grad_enabled() ? x.shape() : Shape{};
  in_format_ = MemoryFormat::kContiguous;
  return y;
}

Tensor AdaptiveAvgPool2d::backward(const Tensor& dy) {
  require_saved(!in_shape_.empty());
  const int64_t planes = in_shape_[0] * in_shape_[1], h = in_shape_[2], w = in_shape_[3];
  LOCKSTEP_CHECK(dy.numel() == planes * oh_ * ow_) << describe() << ": grad " << shape_str(dy.shape());
  if (in_format_ == MemoryFormat::kChannelsLast) {  // global pooling: dx[i, :, :, c] = dy[i, c] / (H*W)
    const int64_t c = in_shape_[1], hw = h * w;
    Tensor dx = Tensor::empty(in_shape_, MemoryFormat::kChannelsLast);
    const Tensor g = dy.contiguous();  // (N, C, 1, 1): the same storage in both formats
    for (int64_t i = 0; i < in_shape_[0]; ++i)
      for (int64_t p = 0; p < hw; ++p)
        for (int64_t ch = 0; ch < c; ++ch) dx[(i * hw + p) * c + ch] = g[i * c + ch] / static_cast<float>(hw);
    in_shape_.clear();
    return dx;
  }
  Tensor dx = Tensor::zeros(in_shape_);
  for (int64_t p = 0; p < planes; ++p) {
    const float* g = dy.data() + p * oh_ * ow_;
    float* d = dx.data() + p * h * w;
    for (int64_t i = 0; i < oh_; ++i) {
      const int64_t y0 = start_index(i, oh_, h), y1 = end_index(i, oh_, h);
      for (int64_t j = 0; j < ow_; ++j) {
        const int64_t x0 = start_index(j, ow_, w), x1 = end_index(j, ow_, w);
        const float v = g[i * ow_ + j] / static_cast<float>((y1 - y0) * (x1 - x0));
        for (int64_t a = y0; a < y1; ++a)
          for (int64_t b = x0; b < x1; ++b) d[a * w + b] += v;
      }
    }
  }
  in_shape_.clear();
  return dx;
}

}  // namespace lockstep
