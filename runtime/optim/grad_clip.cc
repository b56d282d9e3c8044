// Total gradient norm, clipping by norm and by value.
#include "runtime/optim/grad_clip.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/check.h"

namespace lockstep {

double total_grad_norm(std::span<Parameter* const> params, double norm_type) {
  LOCKSTEP_FAIL_IF(!(norm_type >= 1.0)) << "gradient norm: norm_type must be >= 1 or inf, got " << norm_type;
  const bool inf = std::isinf(norm_type);
  double acc = 0.0;
  bool nan = false;
  for (Parameter* p : params) {
    if (!p->grad.defined()) continue;
    const float* g = p->grad.data();
    const int64_t n = p->grad.numel();
    for (int64_t i = 0; i < n; ++i) {
      const double a = std::fabs(double(g[i]));
      if (std::isnan(a)) nan = true;
      if (inf)
        acc = std::max(acc, a);
      else if (norm_type == 2.0)
        acc += a * a;
      else
        acc += std::pow(a, norm_type);
    }
  }
  if (nan) return std::numeric_limits<double>::quiet_NaN();
  if (inf) return acc;
  return norm_type == 2.0 ? std::sqrt(acc) : std::pow(acc, 1.0 / norm_type);
}

double clip_grad_norm(std::span<Parameter* const> params, double max_norm, double norm_type) {
  LOCKSTEP_FAIL_IF(!(max_norm > 0.0) || std::isinf(max_norm))
      << "clip_grad_norm: max_norm must be positive and finite, got " << max_norm;
  const double total = total_grad_norm(params, norm_type);
  if (!std::isfinite(total)) return total;
  // torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to at most 1 and always applied.
  const double coef = std::min(1.0, max_norm / (total + 1e-6));
  if (coef < 1.0) {
    const auto c = static_cast<float>(coef);
    for (Parameter* p : params) {
      if (!p->grad.defined()) continue;
      float* g = p->grad.data();
      const int64_t n = p->grad.numel();
      for (int64_t i = 0; i < n; ++i) g[i] *= c;
    }
  }
  return total;
}

void clip_grad_value(std::span<Parameter* const> params, double clip_value) {
  LOCKSTEP_FAIL_IF(!(clip_value > 0.0) || std::isinf(clip_value))
      << "clip_grad_value: clip_value must be positive and finite, got " << clip_value;
  const auto v = static_cast<float>(clip_value);
  for (Parameter* p : params) {
    if (!p->grad.defined()) continue;
    float* g = p->grad.data();
    const int64_t n = p->grad.numel();
    for (int64_t i = 0; i < n; ++i)
      if (!std::isnan(g[i])) g[i] = std::clamp(g[i], -v, v);
  }
}

}  // namespace lockstep
