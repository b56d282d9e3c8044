// AvgPool2d forward/backward: window sums over PyTorch's divisor.
#include "layers/avg_pool2d.h"

#include <algorithm>
#include <sstream>

#include "layers/shape_math.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

AvgPool2d::AvgPool2d(AvgPool2dOptions o) : o_(o) {
  if (o_.stride == 0) o_.stride = o_.kernel;
  LOCKSTEP_FAIL_IF(o_.kernel <= 0) << describe() << ": kernel must be positive, got " << o_.kernel;
  LOCKSTEP_FAIL_IF(o_.stride <= 0) << describe() << ": stride must be positive, got " << o_.stride;
  LOCKSTEP_FAIL_IF(o_.padding < 0 || o_.padding > o_.kernel / 2)
      << describe() << ": padding must be in [0, kernel/2 = " << o_.kernel / 2 << "], got " << o_.padding;
}

std::string AvgPool2d::describe() const {
  std::ostringstream os;
  os << "AvgPool2d(k=" << o_.kernel << ", stride=" << o_.stride;
  if (o_.padding) os << ", pad=" << o_.padding;
  if (o_.ceil_mode) os << ", ceil_mode";
  if (!o_.count_include_pad) os << ", count_include_pad=false";
  os << ")";
  return os.str();
}

// torch's pooling_output_shape with dilation 1.
int64_t AvgPool2d::out_size(int64_t size, const Shape& in) const {
  const auto padded = checked_add(size, 2 * o_.padding);  // padding <= kernel/2: no overflow
  LOCKSTEP_FAIL_IF(!padded || *padded < o_.kernel)
      << describe() << ": expected input (N, C, H, W) with H and W at least " << o_.kernel - 2 * o_.padding
      << ", got " << shape_str(in);
  const int64_t span = *padded - o_.kernel;
  int64_t out = (o_.ceil_mode ? (span + o_.stride - 1) / o_.stride : span / o_.stride) + 1;
  // With ceil_mode the last window must start inside the input or its left padding.
  if (o_.ceil_mode && (out - 1) * o_.stride >= size + o_.padding) --out;
  return out;
}

Shape AvgPool2d::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(in.size() != 4) << describe() << ": expected input (N, C, H, W), got " << shape_str(in);
  return {in[0], in[1], out_size(in[2], in), out_size(in[3], in)};
}

AvgPool2d::Window AvgPool2d::window(int64_t h, int64_t w, int64_t i, int64_t j) const {
  int64_t y0 = i * o_.stride - o_.padding, x0 = j * o_.stride - o_.padding;
  int64_t y1 = std::min(y0 + o_.kernel, h + o_.padding), x1 = std::min(x0 + o_.kernel, w + o_.padding);
  const int64_t padded_area = (y1 - y0) * (x1 - x0);
  y0 = std::max<int64_t>(y0, 0);
  x0 = std::max<int64_t>(x0, 0);
  y1 = std::min(y1, h);
  x1 = std::min(x1, w);
  const int64_t area = o_.count_include_pad ? padded_area : (y1 - y0) * (x1 - x0);
  return {y0, y1, x0, x1, static_cast<float>(area)};
}

Tensor AvgPool2d::forward_impl(const Tensor& x) {
  Tensor y = Tensor::empty(output_shape(x.shape()));
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3), oh = y.dim(2), ow = y.dim(3);
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x.data() + p * h * w;
    float* dst = y.data() + p * oh * ow;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const Window win = window(h, w, i, j);
        float s = 0.f;
        for (int64_t a = win.y0; a < win.y1; ++a)
          for (int64_t b = win.x0; b < win.x1; ++b) s += src[a * w + b];
        // torch writes 0 for a window wholly in the padding (none exists when padding <= kernel/2)
        dst[i * ow + j] = win.y0 < win.y1 && win.x0 < win.x1 ? s / win.divisor : 0.f;
      }
  }
  in_shape_ = grad_enabled() ? x.shape() : Shape{};
  return y;
}

Tensor AvgPool2d::backward(const Tensor& dy) {
  require_saved(!in_shape_.empty());
  const Shape out = output_shape(in_shape_);
  LOCKSTEP_CHECK(dy.numel() == shape_numel(out)) << describe() << ": grad " << shape_str(dy.shape());
  Tensor dx = Tensor::zeros(in_shape_);
  const int64_t planes = out[0] * out[1], h = in_shape_[2], w = in_shape_[3], oh = out[2], ow = out[3];
  for (int64_t p = 0; p < planes; ++p) {
    const float* g = dy.data() + p * oh * ow;
    float* d = dx.data() + p * h * w;
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j) {
        const Window win = window(h, w, i, j);
        const float v = g[i * ow + j] / win.divisor;
        for (int64_t a = win.y0; a < win.y1; ++a)
          for (int64_t b = win.x0; b < win.x1; ++b) d[a * w + b] += v;
      }
  }
  in_shape_.clear();
  return dx;
}

}  // namespace lockstep
