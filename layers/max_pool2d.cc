// MaxPool2d forward (records argmax when grad is on) and backward (scatter to the argmax).
#include "layers/max_pool2d.h"

#include <algorithm>
#include <cstdint>
#include <sstream>

#include "layers/pool_kernels.h"
#include "layers/shape_math.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

MaxPool2d::MaxPool2d(MaxPool2dOptions o)
    : k_(o.kernel), stride_(o.stride ? o.stride : o.kernel), pad_(o.padding), dil_(o.dilation) {
  LOCKSTEP_FAIL_IF(k_ <= 0) << describe() << ": kernel must be positive, got " << k_;
  LOCKSTEP_FAIL_IF(stride_ <= 0) << describe() << ": stride must be positive, got " << stride_;
  LOCKSTEP_FAIL_IF(dil_ <= 0) << describe() << ": dilation must be positive, got " << dil_;
  LOCKSTEP_FAIL_IF(pad_ < 0 || pad_ > k_ / 2)
      << describe() << ": padding must be in [0, kernel/2 = " << k_ / 2 << "], got " << pad_;
}

std::string MaxPool2d::describe() const {
  std::ostringstream os;
  os << "MaxPool2d(k=" << k_ << ", stride=" << stride_;
  if (pad_ != 0) os << ", pad=" << pad_;
  if (dil_ != 1) os << ", dilation=" << dil_;
  os << ")";
  return os.str();
}

// PyTorch's rule (pool_takes_over: the first maximum, but the last NaN when there is one) over the
// window's in-bounds taps; with every tap -inf, the first in-bounds tap.
int64_t MaxPool2d::window_argmax(const float* plane, int64_t h, int64_t w, int64_t i, int64_t j) const {
  const int64_t y0 = i * stride_ - pad_, x0 = j * stride_ - pad_;
  float m = -__builtin_inff();
  int64_t at = -1, first = -1;
  for (int64_t a = 0; a < k_; ++a) {
    const int64_t iy = y0 + a * dil_;
    if (iy < 0 || iy >= h) continue;
    for (int64_t b = 0; b < k_; ++b) {
      const int64_t ix = x0 + b * dil_;
      if (ix < 0 || ix >= w) continue;
      const int64_t idx = iy * w + ix;
      if (first < 0) first = idx;
      const float v = plane[idx];
      if (pool_takes_over(v, m)) {
        m = v;
        at = idx;
      }
    }
  }
  return at >= 0 ? at : first;
}

Shape MaxPool2d::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(in.size() != 4) << describe() << ": expected input (N, C, H, W), got " << shape_str(in);
  const auto span = checked_mul(dil_, k_ - 1);
  LOCKSTEP_FAIL_IF(!span) << describe() << ": dilation overflows 64-bit sizes";
  auto out_size = [&](int64_t size) {
    const auto padded = checked_add(size, 2 * pad_);  // pad_ <= k_/2: no overflow
    LOCKSTEP_FAIL_IF(!padded || *padded <= *span)
        << describe() << ": expected input (N, C, H, W) with H and W at least " << *span + 1 - 2 * pad_
        << ", got " << shape_str(in);
    return (*padded - *span - 1) / stride_ + 1;
  };
  return {in[0], in[1], out_size(in[2]), out_size(in[3])};
}

void MaxPool2d::keep_for_backward(bool save, const Tensor& x, const Tensor& y) {
  x_ = save ? x : Tensor();
  y_ = save ? y : Tensor();
}

Tensor MaxPool2d::forward_nhwc(const Tensor& x) {
  Tensor y = Tensor::empty(output_shape(x.shape()), MemoryFormat::kChannelsLast);
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), oh = y.dim(2), ow = y.dim(3);
  LOCKSTEP_FAIL_IF(h * w > INT32_MAX) << describe() << ": input " << shape_str(x.shape()) << " has more than 2^31 positions";
  const bool save = grad_enabled();
  at_.resize(save ? static_cast<size_t>(y.numel()) : 0);
  pos_.clear();
  std::vector<float> m(static_cast<size_t>(c));
  std::vector<int32_t> at(static_cast<size_t>(c));
  if (is_k2s2()) {
    // The common case: four in-bounds taps per window, scanned per channel with selects (the same
    // rule: first maximum, last NaN; starting from tap 0 picks tap 0 when every tap is -inf).
    for (int64_t b = 0; b < n; ++b) {
      const float* src = x.data() + b * h * w * c;
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          const auto i00 = static_cast<int32_t>(2 * i * w + 2 * j);
          const int32_t idx[4] = {i00, i00 + 1, i00 + static_cast<int32_t>(w), i00 + static_cast<int32_t>(w) + 1};
          const float *v0 = src + idx[0] * c, *v1 = src + idx[1] * c, *v2 = src + idx[2] * c,
                      *v3 = src + idx[3] * c;
          const int64_t o = ((b * oh + i) * ow + j) * c;
          float* out = y.data() + o;
          int32_t* chosen = save ? at_.data() + o : nullptr;
#pragma omp simd
          for (int64_t ch = 0; ch < c; ++ch) {
            float m = v0[ch];
            int32_t a = idx[0];
            if (pool_takes_over(v1[ch], m)) m = v1[ch], a = idx[1];
            if (pool_takes_over(v2[ch], m)) m = v2[ch], a = idx[2];
            if (pool_takes_over(v3[ch], m)) m = v3[ch], a = idx[3];
            out[ch] = m;
            if (chosen) chosen[ch] = a;
          }
        }
    }
  } else {
    for (int64_t b = 0; b < n; ++b) {
      const float* src = x.data() + b * h * w * c;
      for (int64_t i = 0; i < oh; ++i)
        for (int64_t j = 0; j < ow; ++j) {
          // window_argmax's scan for every channel at once: first maximum, last NaN, else the first
          // in-bounds tap.
          std::fill(m.begin(), m.end(), -__builtin_inff());
          std::fill(at.begin(), at.end(), -1);
          int32_t first = -1;
          const int64_t y0 = i * stride_ - pad_, x0 = j * stride_ - pad_;
          for (int64_t a = 0; a < k_; ++a) {
            const int64_t iy = y0 + a * dil_;
            if (iy < 0 || iy >= h) continue;
            for (int64_t e = 0; e < k_; ++e) {
              const int64_t ix = x0 + e * dil_;
              if (ix < 0 || ix >= w) continue;
              const auto idx = static_cast<int32_t>(iy * w + ix);
              if (first < 0) first = idx;
              const float* v = src + idx * c;
              for (int64_t ch = 0; ch < c; ++ch)
                if (pool_takes_over(v[ch], m[ch])) {
                  m[ch] = v[ch];
                  at[ch] = idx;
                }
            }
          }
          const int64_t o = ((b * oh + i) * ow + j) * c;
          for (int64_t ch = 0; ch < c; ++ch) {
            const int32_t chosen = at[ch] >= 0 ? at[ch] : first;
            y[o + ch] = src[chosen * c + ch];
            if (save) at_[static_cast<size_t>(o + ch)] = chosen;
          }
        }
    }
  }
  keep_for_backward(save, x, y);
  return y;
}

Tensor MaxPool2d::backward_nhwc(const Tensor& dy_in) {
  const Tensor dy = dy_in.to_channels_last();
  const int64_t n = x_.dim(0), c = x_.dim(1), hw = x_.dim(2) * x_.dim(3), ohw = y_.dim(2) * y_.dim(3);
  // Each input gathers its windows' gradients in output order, as the NCHW scatter does.
  Tensor dx = Tensor::zeros(x_.shape(), MemoryFormat::kChannelsLast);
  for (int64_t b = 0; b < n; ++b) {
    float* d = dx.data() + b * hw * c;
    for (int64_t o = b * ohw * c; o < (b + 1) * ohw * c; o += c)
      for (int64_t ch = 0; ch < c; ++ch) d[at_[static_cast<size_t>(o + ch)] * c + ch] += dy[o + ch];
  }
  x_ = y_ = Tensor();
  at_.clear();
  return dx;
}

Tensor MaxPool2d::forward_impl(const Tensor& x) {
  if (x.is_channels_last() && !x.is_contiguous()) return forward_nhwc(x);
  at_.clear();
  Tensor y = Tensor::empty(output_shape(x.shape()));
  const int64_t planes = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
  const int64_t oh = y.dim(2), ow = y.dim(3);
  const bool save = grad_enabled();
  const bool k2s2 = is_k2s2();
  pos_.resize(save && k2s2 ? static_cast<size_t>(y.numel()) : 0);
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x.data() + p * h * w;
    float* dst = y.data() + p * oh * ow;
    for (int64_t i = 0; i < oh; ++i) {
      float* out = dst + i * ow;
      if (k2s2) {  // the common case: row kernels
        const float* r0 = src + i * 2 * w;
        max_pool2x2_row(r0, r0 + w, ow, out, save ? pos_.data() + (p * oh + i) * ow : nullptr);
        continue;
      }
      for (int64_t j = 0; j < ow; ++j) out[j] = src[window_argmax(src, h, w, i, j)];
    }
  }
  keep_for_backward(save, x, y);
  return y;
}

Tensor MaxPool2d::backward(const Tensor& dy_in) {
  require_saved(x_.defined());
  LOCKSTEP_CHECK(dy_in.numel() == y_.numel()) << describe() << ": grad size";
  if (y_.is_channels_last()) return backward_nhwc(dy_in);
  const Tensor dy = dy_in.contiguous();
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
      for (int64_t j = 0; j < ow; ++j) d[window_argmax(src, h, w, i, j)] += dy[(p * oh + i) * ow + j];
  }
  x_ = y_ = Tensor();
  return dx;
}

}  // namespace lockstep
