// Optimizer base: parameter bookkeeping, zero_grad and argument checks shared by all rules.
#include "runtime/optim/optimizer.h"

#include <charconv>
#include <cstdlib>

#include "runtime/check.h"

namespace lockstep {

Optimizer::Optimizer(std::vector<Parameter*> params, float lr) : params_(std::move(params)), lr_(lr) {
  set_lr(lr);
  for (size_t i = 0; i < params_.size(); ++i) {
    LOCKSTEP_CHECK(params_[i] != nullptr) << "parameter " << i << " is null";
    LOCKSTEP_CHECK(params_[i]->value.defined()) << "parameter " << i << " has no value";
    LOCKSTEP_CHECK(params_[i]->value.device() == Device::kCPU) << "optimizers run on CPU tensors";
  }
}

double Optimizer::typed_value(float x) {
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof buf - 1, x).ptr;  // shortest round-trip form
  *end = '\0';
  return std::strtod(buf, nullptr);
}

void Optimizer::set_lr(float lr) {
  LOCKSTEP_FAIL_IF(!(lr >= 0.f)) << "invalid learning rate: " << lr;
  lr_ = lr;
}

void Optimizer::set_step_count(int64_t n) {
  LOCKSTEP_FAIL_IF(n < 0) << "invalid optimizer step count: " << n;
  step_count_ = n;
}

void Optimizer::zero_grad() {
  for (Parameter* p : params_)
    if (p->grad.defined()) p->grad.fill(0.f);
}

void Optimizer::check_grads() const {
  for (size_t i = 0; i < params_.size(); ++i) {
    const Parameter& p = *params_[i];
    LOCKSTEP_CHECK(p.grad.defined() && p.grad.shape() == p.value.shape())
        << "parameter " << i << ": grad shape " << shape_str(p.grad.shape()) << " vs value shape "
        << shape_str(p.value.shape());
  }
}

}  // namespace lockstep
