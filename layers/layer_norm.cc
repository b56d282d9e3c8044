// LayerNorm forward/backward, one row (sample) at a time, sums in double.
#include "layers/layer_norm.h"

#include <cmath>
#include <sstream>
#include <vector>

#include "layers/shape_math.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

LayerNorm::LayerNorm(Shape normalized_shape, float eps, bool elementwise_affine)
    : shape_(std::move(normalized_shape)), eps_(eps) {
  LOCKSTEP_FAIL_IF(shape_.empty()) << describe() << ": normalized_shape must not be empty";
  for (size_t i = 0; i < shape_.size(); ++i)
    LOCKSTEP_FAIL_IF(shape_[i] <= 0)
        << describe() << ": normalized_shape[" << i << "] must be positive, got " << shape_[i];
  const auto n = checked_numel(shape_);
  LOCKSTEP_FAIL_IF(!n || *n > kMaxTensorElements)
      << describe() << ": normalized_shape holds more than 2^31 elements";
  features_ = *n;
  LOCKSTEP_FAIL_IF(!(eps > 0.f)) << describe() << ": eps must be positive, got " << eps;
  if (elementwise_affine) {
    weight_ = &register_parameter("weight", Tensor::full(shape_, 1.f));
    bias_ = &register_parameter("bias", Tensor::zeros(shape_));
  }
}

std::string LayerNorm::describe() const {
  std::ostringstream os;
  os << "LayerNorm(" << shape_str(shape_) << ")";
  return os.str();
}

void LayerNorm::reset_parameters(Philox&, uint32_t&) {
  if (weight_) weight_->value.fill(1.f);
  if (bias_) bias_->value.fill(0.f);
}

Shape LayerNorm::output_shape(const Shape& in) const {
  bool fits = in.size() >= shape_.size();
  for (size_t i = 0; fits && i < shape_.size(); ++i) fits = in[in.size() - shape_.size() + i] == shape_[i];
  LOCKSTEP_FAIL_IF(!fits) << describe() << ": expected input (..., " << shape_str(shape_).substr(1)
                          << ", got " << shape_str(in);
  return in;
}

Tensor LayerNorm::forward_impl(const Tensor& x) {
  output_shape(x.shape());
  const int64_t rows = x.numel() / features_, m = features_;
  Tensor y = Tensor::empty(x.shape());
  const bool save = grad_enabled();
  mean_.resize(save ? rows : 0);
  rstd_.resize(save ? rows : 0);
  const float* w = weight_ ? weight_->value.data() : nullptr;
  const float* b = bias_ ? bias_->value.data() : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * m;
    float* yr = y.data() + r * m;
    double s = 0.0;
    for (int64_t j = 0; j < m; ++j) s += xr[j];
    const double mean = s / static_cast<double>(m);
    double ss = 0.0;  // two passes: no cancellation for rows far from zero
    for (int64_t j = 0; j < m; ++j) ss += (xr[j] - mean) * (xr[j] - mean);
    const float rstd = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(m) + eps_));
    const float mu = static_cast<float>(mean);
    for (int64_t j = 0; j < m; ++j) {
      const float xhat = (xr[j] - mu) * rstd;
      yr[j] = w ? xhat * w[j] + b[j] : xhat;
    }
    if (save) {
      mean_[r] = mu;
      rstd_[r] = rstd;
    }
  }
  x_ = save ? x : Tensor();
  return y;
}

// With xhat = (x - mean) * rstd and g = dy * weight (dy without affine):
// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)); dweight += sum_rows dy * xhat; dbias += sum_rows dy.
Tensor LayerNorm::backward(const Tensor& dy) {
  require_saved(x_.defined());
  LOCKSTEP_CHECK(dy.numel() == x_.numel()) << describe() << ": grad " << shape_str(dy.shape());
  const int64_t rows = x_.numel() / features_, m = features_;
  const float* w = weight_ ? weight_->value.data() : nullptr;
  std::vector<double> dw(w ? m : 0), db(w ? m : 0);
  std::vector<float> xhat(m), g(m);
  Tensor dx = needs_input_grad() ? Tensor::empty(x_.shape()) : Tensor();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x_.data() + r * m;
    const float* dyr = dy.data() + r * m;
    const float mu = mean_[r], rstd = rstd_[r];
    double sg = 0.0, sgx = 0.0;
    for (int64_t j = 0; j < m; ++j) {
      xhat[j] = (xr[j] - mu) * rstd;
      g[j] = w ? dyr[j] * w[j] : dyr[j];
      sg += g[j];
      sgx += static_cast<double>(g[j]) * xhat[j];
      if (w) {
        dw[j] += static_cast<double>(dyr[j]) * xhat[j];
        db[j] += dyr[j];
      }
    }
    if (dx.defined()) {
      const float mg = static_cast<float>(sg / static_cast<double>(m));
      const float mgx = static_cast<float>(sgx / static_cast<double>(m));
      float* dxr = dx.data() + r * m;
      for (int64_t j = 0; j < m; ++j) dxr[j] = rstd * (g[j] - mg - xhat[j] * mgx);
    }
  }
  if (w) {
    for (int64_t j = 0; j < m; ++j) {
      weight_->grad[j] += static_cast<float>(dw[j]);
      bias_->grad[j] += static_cast<float>(db[j]);
    }
  }
  x_ = Tensor();
  mean_.clear();
  rstd_.clear();
  return dx;
}

}  // namespace lockstep
