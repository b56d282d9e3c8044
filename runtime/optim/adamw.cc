// AdamW update loop; see adamw.h for the rule. Scalars are formed in double and rounded to float
// once, as PyTorch forms them in Python before handing them to float kernels.
#include "runtime/optim/adamw.h"

#include <algorithm>
#include <cmath>

#include "runtime/check.h"

namespace lockstep {

AdamW::AdamW(std::vector<Parameter*> params, const AdamWOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  LOCKSTEP_FAIL_IF(!(options.eps >= 0.f)) << "invalid AdamW eps: " << options.eps;
  LOCKSTEP_FAIL_IF(!(options.beta1 >= 0.f && options.beta1 < 1.f)) << "invalid AdamW beta1: " << options.beta1;
  LOCKSTEP_FAIL_IF(!(options.beta2 >= 0.f && options.beta2 < 1.f)) << "invalid AdamW beta2: " << options.beta2;
  LOCKSTEP_FAIL_IF(!(options.weight_decay >= 0.f)) << "invalid AdamW weight_decay: " << options.weight_decay;
  for (Parameter* p : params_) {
    exp_avg_.push_back(Tensor::zeros(p->value.shape()));
    exp_avg_sq_.push_back(Tensor::zeros(p->value.shape()));
    if (options.amsgrad) max_exp_avg_sq_.push_back(Tensor::zeros(p->value.shape()));
  }
}

void AdamW::step() {
  check_grads();
  ++step_count_;
  const double t = static_cast<double>(step_count_);
  const double b1 = typed_value(options_.beta1), b2 = typed_value(options_.beta2);
  const float decay = static_cast<float>(1.0 - double(lr_) * typed_value(options_.weight_decay));
  const float step_size = static_cast<float>(lr_ / (1.0 - std::pow(b1, t)));
  const float bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(b2, t)));
  const float fb1 = options_.beta1, fb2 = options_.beta2, eps = options_.eps;
  const float gb1 = static_cast<float>(1.0 - b1), gb2 = static_cast<float>(1.0 - b2);
  for (size_t i = 0; i < params_.size(); ++i) {
    float* p = params_[i]->value.data();
    const float* g = params_[i]->grad.data();
    float* m = exp_avg_[i].data();
    float* v = exp_avg_sq_[i].data();
    float* vmax = options_.amsgrad ? max_exp_avg_sq_[i].data() : nullptr;
    const int64_t n = params_[i]->value.numel();
    for (int64_t j = 0; j < n; ++j) {
      p[j] *= decay;
      m[j] = fb1 * m[j] + gb1 * g[j];
      v[j] = fb2 * v[j] + gb2 * (g[j] * g[j]);
      float second = v[j];
      if (vmax) second = vmax[j] = std::max(vmax[j], v[j]);
      const float denom = std::sqrt(second) / bc2_sqrt + eps;
      p[j] -= step_size * (m[j] / denom);
    }
  }
}

std::vector<std::pair<std::string, Tensor*>> AdamW::state_tensors() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < exp_avg_.size(); ++i) {
    out.emplace_back(std::to_string(i) + ".exp_avg", &exp_avg_[i]);
    out.emplace_back(std::to_string(i) + ".exp_avg_sq", &exp_avg_sq_[i]);
    if (options_.amsgrad) out.emplace_back(std::to_string(i) + ".max_exp_avg_sq", &max_exp_avg_sq_[i]);
  }
  return out;
}

}  // namespace lockstep
