// Adam's moment update loop, shared by Adam and AdamW; see adam_moments.h.
#include "runtime/optim/adam_moments.h"

#include <algorithm>
#include <cmath>

namespace lockstep {

AdamMoments::AdamMoments(const std::vector<Parameter*>& params, bool amsgrad) : amsgrad_(amsgrad) {
  for (const Parameter* p : params) {
    exp_avg_.push_back(Tensor::zeros(p->value.shape()));
    exp_avg_sq_.push_back(Tensor::zeros(p->value.shape()));
    if (amsgrad) max_exp_avg_sq_.push_back(Tensor::zeros(p->value.shape()));
  }
}

void AdamMoments::step(const std::vector<Parameter*>& params, int64_t t, const AdamStepScalars& s) {
  const double td = static_cast<double>(t);
  const float step_size = static_cast<float>(s.lr / (1.0 - std::pow(s.beta1, td)));
  const float bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(s.beta2, td)));
  const float fb1 = s.fbeta1, fb2 = s.fbeta2, eps = s.eps, l2 = s.l2, decay = s.decay;
  const float gb1 = static_cast<float>(1.0 - s.beta1), gb2 = static_cast<float>(1.0 - s.beta2);
  for (size_t i = 0; i < params.size(); ++i) {
    float* p = params[i]->value.data();
    const float* gp = params[i]->grad.data();
    float* m = exp_avg_[i].data();
    float* v = exp_avg_sq_[i].data();
    float* vmax = amsgrad_ ? max_exp_avg_sq_[i].data() : nullptr;
    const int64_t n = params[i]->value.numel();
    for (int64_t j = 0; j < n; ++j) {
      if (decay != 1.f) p[j] *= decay;
      const float g = l2 != 0.f ? gp[j] + l2 * p[j] : gp[j];
      m[j] = fb1 * m[j] + gb1 * g;
      v[j] = fb2 * v[j] + gb2 * (g * g);
      float second = v[j];
      if (vmax) second = vmax[j] = std::max(vmax[j], v[j]);
      const float denom = std::sqrt(second) / bc2_sqrt + eps;
      p[j] -= step_size * (m[j] / denom);
    }
  }
}

std::vector<std::pair<std::string, Tensor*>> AdamMoments::state_tensors() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < exp_avg_.size(); ++i) {
    out.emplace_back(std::to_string(i) + ".exp_avg", &exp_avg_[i]);
    out.emplace_back(std::to_string(i) + ".exp_avg_sq", &exp_avg_sq_[i]);
    if (amsgrad_) out.emplace_back(std::to_string(i) + ".max_exp_avg_sq", &max_exp_avg_sq_[i]);
  }
  return out;
}

}  // namespace lockstep
