// LAMB update loop; see lamb.h for the rule. Two passes per parameter: the moments and the Adam
// direction u (its norm is needed before any element moves), then the scaled step.
#include "runtime/optim/lamb.h"

#include <cmath>

#include "runtime/check.h"
#include "runtime/optim/layer_adaptation.h"

namespace lockstep {

Lamb::Lamb(std::vector<Parameter*> params, const LambOptions& options)
    : Optimizer(std::move(params), options.lr),
      options_(options),
      exclude_(adaptation_exclusions("LAMB", params_, options.exclude)) {
  LOCKSTEP_FAIL_IF(!(options.eps >= 0.f)) << "invalid LAMB eps: " << options.eps;
  LOCKSTEP_FAIL_IF(!(options.beta1 >= 0.f && options.beta1 < 1.f)) << "invalid LAMB beta1: " << options.beta1;
  LOCKSTEP_FAIL_IF(!(options.beta2 >= 0.f && options.beta2 < 1.f)) << "invalid LAMB beta2: " << options.beta2;
  LOCKSTEP_FAIL_IF(!(options.weight_decay >= 0.f)) << "invalid LAMB weight_decay: " << options.weight_decay;
  for (Parameter* p : params_) {
    exp_avg_.push_back(Tensor::zeros(p->value.shape()));
    exp_avg_sq_.push_back(Tensor::zeros(p->value.shape()));
  }
}

void Lamb::step() {
  check_grads();
  ++step_count_;
  const double t = static_cast<double>(step_count_);
  const double b1 = typed_value(options_.beta1), b2 = typed_value(options_.beta2);
  const float bc1 = static_cast<float>(1.0 - std::pow(b1, t));
  const float bc2 = static_cast<float>(1.0 - std::pow(b2, t));
  const float fb1 = options_.beta1, fb2 = options_.beta2, eps = options_.eps;
  const float gb1 = static_cast<float>(1.0 - b1), gb2 = static_cast<float>(1.0 - b2);
  for (size_t i = 0; i < params_.size(); ++i) {
    float* w = params_[i]->value.data();
    const float* g = params_[i]->grad.data();
    float* m = exp_avg_[i].data();
    float* v = exp_avg_sq_[i].data();
    const int64_t n = params_[i]->value.numel();
    const float wd = exclude_[i] ? 0.f : options_.weight_decay;
    const bool decay = wd != 0.f;
    update_.resize(static_cast<size_t>(n));
    float* u = update_.data();
    for (int64_t j = 0; j < n; ++j) {
      m[j] = fb1 * m[j] + gb1 * g[j];
      v[j] = fb2 * v[j] + gb2 * (g[j] * g[j]);
      const float r = (m[j] / bc1) / (std::sqrt(v[j] / bc2) + eps);
      u[j] = decay ? r + wd * w[j] : r;
    }
    const double ratio = exclude_[i] ? 1.0 : trust_ratio(l2_norm(w, n), l2_norm(u, n));
    const float scale = static_cast<float>(double(lr_) * ratio);
    for (int64_t j = 0; j < n; ++j) w[j] -= scale * u[j];
  }
}

std::vector<std::pair<std::string, Tensor*>> Lamb::state_tensors() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < exp_avg_.size(); ++i) {
    out.emplace_back(std::to_string(i) + ".exp_avg", &exp_avg_[i]);
    out.emplace_back(std::to_string(i) + ".exp_avg_sq", &exp_avg_sq_[i]);
  }
  return out;
}

}  // namespace lockstep
