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
  os << (sync_ ? "SyncBatchNorm" : "BatchNorm") << spatial_dims_ << "d(" << o_.num_features << ")";
  return os.str();
}

namespace {

// (n, s) of the (N, C, S) view of x's storage: (N, S) for NCHW, (N*H*W, 1) for NHWC (a channels_last
// x is read as N*H*W rows of C channels, so the same kernels serve both formats).
std::pair<int64_t, int64_t> ncs_view(const Tensor& x, int64_t c) {
  const int64_t n = x.dim(0), s = x.numel() / std::max<int64_t>(1, n * c);
  return x.is_channels_last() ? std::pair{n * s, int64_t{1}} : std::pair{n, s};
}

// Two per-channel sums in one pass over a tensor viewed as (N, C, S): out1[ch] = sum f1(index, ch),
// out2[ch] = sum f2(index, ch). Partial sums run in float over one contiguous run (vectorised) and
// are added up in double across runs.
template <typename F1, typename F2>
void channel_sums2(int64_t n, int64_t c, int64_t s, std::vector<double>& out1, std::vector<double>& out2,
                   F1 f1, F2 f2) {
  out1.assign(c, 0.0);
  out2.assign(c, 0.0);
  if (s == 1) {  // (N, C), or NHWC storage viewed as (N*H*W, C): float partial sums over blocks of rows
    constexpr int64_t kRows = 256;
    std::vector<float> a1(c), a2(c);
    for (int64_t i0 = 0; i0 < n; i0 += kRows) {
      std::fill(a1.begin(), a1.end(), 0.f);
      std::fill(a2.begin(), a2.end(), 0.f);
      for (int64_t i = i0; i < std::min(n, i0 + kRows); ++i) {
#pragma omp simd
        for (int64_t ch = 0; ch < c; ++ch) {
          a1[ch] += f1(i * c + ch, ch);
          a2[ch] += f2(i * c + ch, ch);
        }
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        out1[ch] += a1[ch];
        out2[ch] += a2[ch];
      }
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t off = (i * c + ch) * s;
      float a1 = 0.f, a2 = 0.f;
#pragma omp simd reduction(+ : a1, a2)
      for (int64_t j = 0; j < s; ++j) {
        a1 += f1(off + j, ch);
        a2 += f2(off + j, ch);
      }
      out1[ch] += a1;
      out2[ch] += a2;
    }
}

// y[index] = g(index, ch) over every element of a tensor viewed as (N, C, S).
template <typename G>
void channel_map(float* y, int64_t n, int64_t c, int64_t s, G g) {
  if (s == 1) {
    for (int64_t i = 0; i < n; ++i) {
#pragma omp simd
      for (int64_t ch = 0; ch < c; ++ch) y[i * c + ch] = g(i * c + ch, ch);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch) {
      const int64_t off = (i * c + ch) * s;
#pragma omp simd
      for (int64_t j = 0; j < s; ++j) y[off + j] = g(off + j, ch);
    }
}

}  // namespace

void BatchNorm::local_batch_stats(const float* x, int64_t n, int64_t s, int64_t& count,
                                  std::vector<double>& mean, std::vector<double>& var) const {
  const int64_t c = o_.num_features;
  count = n * s;
  if (count == 0) {
    mean.assign(c, 0.0);
    var.assign(c, 0.0);
    return;
  }
  // One pass of sums shifted by each channel's first value (close to its mean, so the float
  // partial sums lose little): S1 = sum(x - k), S2 = sum((x - k)^2); var = S2/n - (S1/n)^2.
  // A non-finite first value shifts by 0 instead, so an infinite input gives an infinite mean and
  // a NaN variance, as PyTorch's sum(x)/n and sum((x - mean)^2)/n do (inf - inf would make both NaN).
  std::vector<float> k(c);
  for (int64_t ch = 0; ch < c; ++ch) k[ch] = std::isfinite(x[ch * s]) ? x[ch * s] : 0.f;
  const float* kp = k.data();
  std::vector<double> s1, s2;
  channel_sums2(
      n, c, s, s1, s2, [x, kp](int64_t i, int64_t ch) { return x[i] - kp[ch]; },
      [x, kp](int64_t i, int64_t ch) { return (x[i] - kp[ch]) * (x[i] - kp[ch]); });
  mean.resize(c);
  var.resize(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    const double d = s1[ch] / static_cast<double>(count);
    mean[ch] = k[ch] + d;
    // Rounding can leave a tiny negative variance; clamp that, but keep NaN (std::max(0, NaN) is 0).
    const double v = s2[ch] / static_cast<double>(count) - d * d;
    var[ch] = v < 0.0 ? 0.0 : v;
  }
}

void BatchNorm::batch_stats(const float* x, int64_t n, int64_t s, int64_t& count, std::vector<double>& mean,
                            std::vector<double>& var) {
  local_batch_stats(x, n, s, count, mean, var);
  if (sync_) sync_batch_stats(count, mean, var);
}

void BatchNorm::reduce_backward_sums(std::vector<double>& sum_dy, std::vector<double>& sum_dy_xhat,
                                     int64_t& count) {
  if (sync_) sync_backward_sums(sum_dy, sum_dy_xhat, count);
}

Shape BatchNorm::output_shape(const Shape& in) const {
  const int64_t c = o_.num_features;
  const bool shape_ok = spatial_dims_ == 1 ? (in.size() == 2 || in.size() == 3) : in.size() == 4;
  LOCKSTEP_FAIL_IF(!shape_ok || in[1] != c)
      << describe() << ": expected input "
      << (spatial_dims_ == 1 ? "(N, " + std::to_string(c) + ") or (N, " + std::to_string(c) + ", L)"
                             : "(N, " + std::to_string(c) + ", H, W)")
      << ", got " << shape_str(in);
  return in;
}

Tensor BatchNorm::forward_relu(const Tensor& x) {
  struct Reset {
    bool& flag;
    ~Reset() { flag = false; }
  } reset{relu_next_};
  relu_next_ = true;
  return forward(x);
}

Tensor BatchNorm::forward_impl(const Tensor& x) {
  const bool relu = std::exchange(relu_next_, false);
  const int64_t c = o_.num_features;
  output_shape(x.shape());
  const auto [n, s] = ncs_view(x, c);
  const bool use_batch = is_training() || !o_.track_running_stats;

  std::vector<double> mean, var;
  if (use_batch) {
    int64_t count = 0;
    batch_stats(x.data(), n, s, count, mean, var);
    LOCKSTEP_FAIL_IF(count <= 1)
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
  Tensor y = Tensor::empty(x.shape(), x.memory_format());
  const float* sc = scale.data();
  const float* sh = shift.data();
  const float* xp = x.data();
  // y = x * scale + shift as one fused multiply-add, written out so that backward's recomputation of
  // a fused ReLU's mask rounds exactly as this did (the compiler may contract a * b + c or not).
  if (relu)
    channel_map(y.data(), n, c, s, [xp, sc, sh](int64_t i, int64_t ch) {
      const float v = std::fma(xp[i], sc[ch], sh[ch]);
      return v < 0.f ? 0.f : v;  // torch.relu's clamp_min: NaN stays NaN
    });
  else
    channel_map(y.data(), n, c, s, [xp, sc, sh](int64_t i, int64_t ch) { return std::fma(xp[i], sc[ch], sh[ch]); });
  if (save) {
    x_ = x;
    mean_.resize(c);
    for (int64_t ch = 0; ch < c; ++ch) mean_[ch] = static_cast<float>(mean[ch]);
    invstd_ = std::move(invstd);
    used_batch_stats_ = use_batch;
    fused_relu_ = relu;
    if (relu) {
      scale_ = std::move(scale);
      shift_ = std::move(shift);
    } else {
      scale_.clear();
      shift_.clear();
    }
  } else {
    x_ = Tensor();
  }
  return y;
}

namespace {

// BatchNorm's backward over x viewed as (N, C, S), with dy(i, ch) the incoming gradient (plain, or
// masked by a fused ReLU): the per-channel sums sum(dy) and sum(dy * xhat), the parameter
// gradients, and dx when it is wanted. `reduce` merges the sums across ranks (SyncBatchNorm).
template <typename DY, typename Reduce>
void bn_backward(int64_t n, int64_t c, int64_t s, DY dy, const float* x, const float* mp, const float* is,
                 Parameter* weight, Parameter* bias, bool batch_stats, float* dx, Reduce reduce) {
  std::vector<double> sum_dy, sum_dy_xhat;
  channel_sums2(
      n, c, s, sum_dy, sum_dy_xhat, [dy](int64_t i, int64_t ch) { return dy(i, ch); },
      [dy, x, mp, is](int64_t i, int64_t ch) { return dy(i, ch) * ((x[i] - mp[ch]) * is[ch]); });
  if (weight) {
    for (int64_t ch = 0; ch < c; ++ch) {
      weight->grad[ch] += static_cast<float>(sum_dy_xhat[ch]);
      bias->grad[ch] += static_cast<float>(sum_dy[ch]);
    }
  }
  if (!dx) return;
  int64_t count = n * s;
  if (batch_stats) reduce(sum_dy, sum_dy_xhat, count);
  std::vector<float> k(c), mdy(c), mdyx(c);
  for (int64_t ch = 0; ch < c; ++ch) {
    k[ch] = (weight ? weight->value[ch] : 1.f) * is[ch];
    mdy[ch] = batch_stats ? static_cast<float>(sum_dy[ch] / count) : 0.f;
    mdyx[ch] = batch_stats ? static_cast<float>(sum_dy_xhat[ch] / count) : 0.f;
  }
  const float *kp = k.data(), *a = mdy.data(), *b = mdyx.data();
  if (batch_stats) {
    channel_map(dx, n, c, s, [=](int64_t i, int64_t ch) {
      return kp[ch] * (dy(i, ch) - a[ch] - (x[i] - mp[ch]) * is[ch] * b[ch]);
    });
  } else {  // running statistics are constants: dx = dy * w * invstd, x not involved (an inf x
            // must not turn the gradient into inf * 0 = NaN)
    channel_map(dx, n, c, s, [=](int64_t i, int64_t ch) { return kp[ch] * dy(i, ch); });
  }
}

}  // namespace

Tensor BatchNorm::backward(const Tensor& dy_in) {
  require_saved(x_.defined());
  const int64_t c = o_.num_features;
  const auto [n, s] = ncs_view(x_, c);
  LOCKSTEP_CHECK(dy_in.numel() == x_.numel()) << describe() << ": grad size";
  const Tensor dy = dy_in.to_format(x_.memory_format());  // y had x's format
  Tensor dx;
  if (needs_input_grad()) dx = Tensor::empty(x_.shape(), x_.memory_format());
  const float *g = dy.data(), *x = x_.data(), *mp = mean_.data(), *is = invstd_.data();
  auto reduce = [this](std::vector<double>& s1, std::vector<double>& s2, int64_t& count) {
    reduce_backward_sums(s1, s2, count);
  };
  float* dxp = dx.defined() ? dx.data() : nullptr;
  if (fused_relu_) {
    // The fused ReLU's backward, inline: dy passes where y = relu(x * scale + shift) is > 0 or NaN
    // (relu's threshold_backward), with y recomputed exactly as forward wrote it.
    const float *sc = scale_.data(), *sh = shift_.data();
    auto masked = [=](int64_t i, int64_t ch) { return std::fma(x[i], sc[ch], sh[ch]) <= 0.f ? 0.f : g[i]; };
    bn_backward(n, c, s, masked, x, mp, is, weight_, bias_, used_batch_stats_, dxp, reduce);
  } else {
    auto plain = [g](int64_t i, int64_t) { return g[i]; };
    bn_backward(n, c, s, plain, x, mp, is, weight_, bias_, used_batch_stats_, dxp, reduce);
  }
  x_ = Tensor();
  return dx;
}

}  // namespace lockstep
