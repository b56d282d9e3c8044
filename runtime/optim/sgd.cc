// SGD update loop; see sgd.h for the rule. The momentum buffer is "unset" exactly when
// step_count() == 0, as PyTorch's is None before its first step.
#include "runtime/optim/sgd.h"

#include "runtime/check.h"

namespace lockstep {

Sgd::Sgd(std::vector<Parameter*> params, const SgdOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options) {
  LOCKSTEP_FAIL_IF(!(options.momentum >= 0.f)) << "invalid SGD momentum: " << options.momentum;
  LOCKSTEP_FAIL_IF(!(options.weight_decay >= 0.f)) << "invalid SGD weight_decay: " << options.weight_decay;
  LOCKSTEP_FAIL_IF(options.nesterov && (options.momentum <= 0.f || options.dampening != 0.f))
      << "Nesterov momentum requires a momentum and zero dampening";
  if (options.momentum != 0.f)
    for (Parameter* p : params_) momentum_buffer_.push_back(Tensor::zeros(p->value.shape()));
}

void Sgd::step() {
  check_grads();
  const float lr = lr_, wd = options_.weight_decay, mom = options_.momentum;
  const float keep = 1.f - options_.dampening;
  const bool first = step_count_ == 0, nesterov = options_.nesterov;
  for (size_t i = 0; i < params_.size(); ++i) {
    float* p = params_[i]->value.data();
    const float* g = params_[i]->grad.data();
    float* buf = mom != 0.f ? momentum_buffer_[i].data() : nullptr;
    const int64_t n = params_[i]->value.numel();
    // One loop per case, so each vectorises; the arithmetic is the rule's, in its order (no decay
    // term at all when weight_decay is 0, as in PyTorch, so an infinite weight stays infinite).
    const bool decay = wd != 0.f;
    if (!buf) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) p[j] -= lr * (decay ? g[j] + wd * p[j] : g[j]);
    } else if (first) {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const float d = decay ? g[j] + wd * p[j] : g[j];
        buf[j] = d;
        p[j] -= lr * (nesterov ? d + mom * d : d);
      }
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        const float d = decay ? g[j] + wd * p[j] : g[j];
        buf[j] = mom * buf[j] + keep * d;
        p[j] -= lr * (nesterov ? d + mom * buf[j] : buf[j]);
      }
    }
  }
  ++step_count_;
}

std::vector<std::pair<std::string, Tensor*>> Sgd::state_tensors() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < momentum_buffer_.size(); ++i)
    out.emplace_back(std::to_string(i) + ".momentum_buffer", &momentum_buffer_[i]);
  return out;
}

}  // namespace lockstep
