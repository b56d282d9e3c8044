// BatchNorm forward/backward; statistics accumulate in double so results match PyTorch closely.
#include "layers/batch_norm.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

BatchNorm::BatchNorm(int spatial_dims, BatchNormOptions o) : spatial_dims_(spatial_dims), o_(o) {
  LOCKSTEP_FAIL_IF(o.num_features <= 0) << describe() << ": num_features must be positive";
  LOCKSTEP_FAIL_IF(o.eps <= 0.f) << describe() << ": eps must be positive";
  const int64_t c = o.num_features;
  if (o.affine) {
    weight_ = &register_parameter("weight", Tensor::full({c}, 1.f));
    bias_ = &register_parameter("bias", Tensor::zeros({c}));
  }
  if (o.track_running_stats) {
    running_mean_ = &register_buffer("running_mean", Tensor::zeros({c}));
    running_var_ = &register_buffer("running_var", Tensor::full({c}, 1.f));
    num_batches_tracked_ = &register_buffer("num_batches_tracked", Tensor::zeros({}));
  }
}

std::string BatchNorm::describe() const {
  std::ostringstream os;
  os << "BatchNorm" << spatial_dims_ << "d(" << o_.num_features << ")";
  return os.str();
}

void BatchNorm::batch_stats(const float* x, int64_t n, int64_t s, int64_t& count,
                            std::vector<double>& mean, std::vector<double>& var) {
  const int64_t c = o_.num_features;
  count = n * s;
  mean.assign(c, 0.0);
  var.assign(c, 0.0);
  if (count == 0) return;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* p = x + (i * c + ch) * s;
      double acc = 0.0;
      for (int64_t j = 0; j < s; ++j) acc += p[j];
      mean[ch] += acc;
    }
  for (int64_t ch = 0; ch < c; ++ch) mean[ch] /= static_cast<double>(count);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* p = x + (i * c + ch) * s;
      const double m = mean[ch];
      double acc = 0.0;
      for (int64_t j = 0; j < s; ++j) acc += (p[j] - m) * (p[j] - m);
      var[ch] += acc;
    }
  for (int64_t ch = 0; ch < c; ++ch) var[ch] /= static_cast<double>(count);
}

void BatchNorm::reduce_backward_sums(std::vector<double>&, std::vector<double>&, int64_t&) {}

Tensor BatchNorm::forward(const Tensor& x) {
  const int64_t c = o_.num_features;
  const bool shape_ok = spatial_dims_ == 1 ? (x.ndim() == 2 || x.ndim() == 3) : x.ndim() == 4;
  LOCKSTEP_FAIL_IF(!shape_ok || x.dim(1) != c)
      << describe() << ": expected input "
      << (spatial_dims_ == 1 ? "(N, " + std::to_string(c) + ") or (N, " + std::to_string(c) + ", L)"
                             : "(N, " + std::to_string(c) + ", H, W)")
      << ", got " << shape_str(x.shape());
  const int64_t n = x.dim(0), s = x.numel() / std::max<int64_t>(1, n * c);
  const bool use_batch = is_training() || !o_.track_running_stats;

  std::vector<double> mean, var;
  if (use_batch) {
    int64_t count = 0;
    batch_stats(x.data(), n, s, count, mean, var);
    LOCKSTEP_FAIL_IF(is_training() && count <= 1)
        << describe() << ": expected more than 1 value per channel when training, got input "
        << shape_str(x.shape());
    if (is_training() && o_.track_running_stats) {
      float& nbt = (*num_batches_tracked_)[0];
      nbt += 1.f;
      const double f = o_.momentum ? *o_.momentum : 1.0 / nbt;
      const double unbias = static_cast<double>(count) / static_cast<double>(count - 1);
      for (int64_t ch = 0; ch < c; ++ch) {
        (*running_mean_)[ch] = static_cast<float>((1 - f) * (*running_mean_)[ch] + f * mean[ch]);
        (*running_var_)[ch] = static_cast<float>((1 - f) * (*running_var_)[ch] + f * var[ch] * unbias);
      }
    }
  } else {
    mean.assign(running_mean_->data(), running_mean_->data() + c);
    var.assign(running_var_->data(), running_var_->data() + c);
  }

  std::vector<float> invstd(c), scale(c), shift(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    invstd[ch] = static_cast<float>(1.0 / std::sqrt(var[ch] + o_.eps));
    const float w = weight_ ? (*weight_).value[ch] : 1.f;
    const float b = bias_ ? (*bias_).value[ch] : 0.f;
    scale[ch] = w * invstd[ch];
    shift[ch] = b - static_cast<float>(mean[ch]) * scale[ch];
  }
  const bool save = grad_enabled();
  Tensor y = Tensor::empty(x.shape());
  xhat_ = save ? Tensor::empty(x.shape()) : Tensor();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t off = (i * c + ch) * s;
      const float* p = x.data() + off;
      float* q = y.data() + off;
      for (int64_t j = 0; j < s; ++j) q[j] = p[j] * scale[ch] + shift[ch];
      if (save) {
        float* h = xhat_.data() + off;
        const float m = static_cast<float>(mean[ch]), is = invstd[ch];
        for (int64_t j = 0; j < s; ++j) h[j] = (p[j] - m) * is;
      }
    }
  if (save) {
    invstd_ = std::move(invstd);
    used_batch_stats_ = use_batch;
  }
  return y;
}

Tensor BatchNorm::backward(const Tensor& dy) {
  require_saved(xhat_.defined());
  const int64_t c = o_.num_features, n = xhat_.dim(0), s = xhat_.numel() / std::max<int64_t>(1, n * c);
  LOCKSTEP_CHECK(dy.numel() == xhat_.numel()) << describe() << ": grad size";
  std::vector<double> sum_dy(c, 0.0), sum_dy_xhat(c, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t off = (i * c + ch) * s;
      double a = 0.0, b = 0.0;
      for (int64_t j = 0; j < s; ++j) {
        a += dy[off + j];
        b += static_cast<double>(dy[off + j]) * xhat_[off + j];
      }
      sum_dy[ch] += a;
      sum_dy_xhat[ch] += b;
    }
  if (weight_) {
    for (int64_t ch = 0; ch < c; ++ch) {
      weight_->grad[ch] += static_cast<float>(sum_dy_xhat[ch]);
      bias_->grad[ch] += static_cast<float>(sum_dy[ch]);
    }
  }
  Tensor dx;
  if (needs_input_grad()) {
    dx = Tensor::empty(xhat_.shape());
    int64_t count = n * s;
    if (used_batch_stats_) reduce_backward_sums(sum_dy, sum_dy_xhat, count);
    for (int64_t ch = 0; ch < c; ++ch) {
      const float w = weight_ ? weight_->value[ch] : 1.f;
      const float k = w * invstd_[ch];
      const float mdy = used_batch_stats_ ? static_cast<float>(sum_dy[ch] / count) : 0.f;
      const float mdyx = used_batch_stats_ ? static_cast<float>(sum_dy_xhat[ch] / count) : 0.f;
      for (int64_t i = 0; i < n; ++i) {
        const int64_t off = (i * c + ch) * s;
        for (int64_t j = 0; j < s; ++j)
          dx[off + j] = k * (dy[off + j] - mdy - xhat_[off + j] * mdyx);
      }
    }
  }
  xhat_ = Tensor();
  return dx;
}

}  // namespace lockstep
