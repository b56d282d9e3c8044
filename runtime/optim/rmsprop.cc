// RMSprop update loop; see rmsprop.h for the rule. Each tensor op of PyTorch's loop is one float
// expression here, in the same order, so results round alike.
#include "runtime/optim/rmsprop.h"

#include <cmath>

#include "runtime/check.h"

namespace lockstep {

Rmsprop::Rmsprop(std::vector<Parameter*> params, const RmspropOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  LOCKSTEP_FAIL_IF(!(options.alpha >= 0.f)) << "invalid RMSprop alpha: " << options.alpha;
  LOCKSTEP_FAIL_IF(!(options.eps >= 0.f)) << "invalid RMSprop eps: " << options.eps;
  LOCKSTEP_FAIL_IF(!(options.weight_decay >= 0.f)) << "invalid RMSprop weight_decay: " << options.weight_decay;
  LOCKSTEP_FAIL_IF(!(options.momentum >= 0.f)) << "invalid RMSprop momentum: " << options.momentum;
  for (Parameter* p : params_) {
    square_avg_.push_back(Tensor::zeros(p->value.shape()));
    if (options.momentum > 0.f) momentum_buffer_.push_back(Tensor::zeros(p->value.shape()));
    if (options.centered) grad_avg_.push_back(Tensor::zeros(p->value.shape()));
  }
}

void Rmsprop::step() {
  check_grads();
  ++step_count_;
  const float lr = lr_, alpha = options_.alpha, eps = options_.eps, wd = options_.weight_decay;
  const float mom = options_.momentum;
  const float keep = static_cast<float>(1.0 - typed_value(options_.alpha));  // as PyTorch's 1 - alpha
  const bool decay = wd != 0.f, centered = options_.centered;
  for (size_t i = 0; i < params_.size(); ++i) {
    float* p = params_[i]->value.data();
    const float* gp = params_[i]->grad.data();
    float* s = square_avg_[i].data();
    float* a = centered ? grad_avg_[i].data() : nullptr;
    float* buf = mom > 0.f ? momentum_buffer_[i].data() : nullptr;
    const int64_t n = params_[i]->value.numel();
    for (int64_t j = 0; j < n; ++j) {
      const float g = decay ? gp[j] + wd * p[j] : gp[j];
      s[j] = alpha * s[j] + keep * (g * g);
      float avg;
      if (a) {
        a[j] = alpha * a[j] + keep * g;
        avg = std::sqrt(s[j] - a[j] * a[j]) + eps;
      } else {
        avg = std::sqrt(s[j]) + eps;
      }
      if (buf) {
        buf[j] = mom * buf[j] + g / avg;
        p[j] -= lr * buf[j];
      } else {
        p[j] -= lr * (g / avg);
      }
    }
  }
}

std::vector<std::pair<std::string, Tensor*>> Rmsprop::state_tensors() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < square_avg_.size(); ++i) {
    out.emplace_back(std::to_string(i) + ".square_avg", &square_avg_[i]);
    if (!momentum_buffer_.empty()) out.emplace_back(std::to_string(i) + ".momentum_buffer", &momentum_buffer_[i]);
    if (!grad_avg_.empty()) out.emplace_back(std::to_string(i) + ".grad_avg", &grad_avg_[i]);
  }
  return out;
}

}  // namespace lockstep
