// LARS update loop; see lars.h for the rule.
#include "runtime/optim/lars.h"

#include "runtime/check.h"
#include "runtime/optim/layer_adaptation.h"

namespace lockstep {

Lars::Lars(std::vector<Parameter*> params, const LarsOptions& options)
    : Optimizer(std::move(params), options.lr),
      options_(options),
      exclude_(adaptation_exclusions("LARS", params_, options.exclude)) {
  LOCKSTEP_FAIL_IF(!(options.momentum >= 0.f)) << "invalid LARS momentum: " << options.momentum;
  LOCKSTEP_FAIL_IF(!(options.weight_decay >= 0.f)) << "invalid LARS weight_decay: " << options.weight_decay;
  LOCKSTEP_FAIL_IF(!(options.trust_coefficient > 0.f))
      << "invalid LARS trust_coefficient: " << options.trust_coefficient;
  if (options.momentum != 0.f)
    for (Parameter* p : params_) momentum_buffer_.push_back(Tensor::zeros(p->value.shape()));
}

void Lars::step() {
  check_grads();
  ++step_count_;
  const float mom = options_.momentum;
  for (size_t i = 0; i < params_.size(); ++i) {
    float* w = params_[i]->value.data();
    const float* g = params_[i]->grad.data();
    const int64_t n = params_[i]->value.numel();
    const float wd = exclude_[i] ? 0.f : options_.weight_decay;
    double local_lr = 1;
    if (!exclude_[i]) {
      const double w_norm = l2_norm(w, n);
      local_lr = trust_ratio(options_.trust_coefficient * w_norm, l2_norm(g, n) + double(wd) * w_norm);
    }
    const float scale = static_cast<float>(double(lr_) * local_lr);
    float* v = mom != 0.f ? momentum_buffer_[i].data() : nullptr;
    const bool decay = wd != 0.f;
    for (int64_t j = 0; j < n; ++j) {
      const float d = scale * (decay ? g[j] + wd * w[j] : g[j]);
      if (v) {
        v[j] = mom * v[j] + d;
        w[j] -= v[j];
      } else {
        w[j] -= d;
      }
    }
  }
}

std::vector<std::pair<std::string, Tensor*>> Lars::state_tensors() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < momentum_buffer_.size(); ++i)
    out.emplace_back(std::to_string(i) + ".momentum_buffer", &momentum_buffer_[i]);
  return out;
}

}  // namespace lockstep
