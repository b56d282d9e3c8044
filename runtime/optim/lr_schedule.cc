// Closed forms of the schedules in lr_schedule.h, evaluated in double and rounded once to float.
#include "runtime/optim/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "runtime/check.h"

namespace lockstep {

ConstantLr::ConstantLr(float base_lr) : base_lr_(base_lr) {}

float ConstantLr::lr_at(int64_t t) const {
  LOCKSTEP_CHECK(t >= 0) << "schedule step " << t;
  return base_lr_;
}

StepLr::StepLr(float base_lr, int64_t step_size, float gamma)
    : base_lr_(base_lr), step_size_(step_size), gamma_(gamma) {
  LOCKSTEP_FAIL_IF(step_size <= 0) << "StepLr: step_size must be positive, got " << step_size;
}

float StepLr::lr_at(int64_t t) const {
  LOCKSTEP_CHECK(t >= 0) << "schedule step " << t;
  return static_cast<float>(double(base_lr_) * std::pow(double(gamma_), double(t / step_size_)));
}

CosineLr::CosineLr(float base_lr, int64_t t_max, float eta_min)
    : base_lr_(base_lr), t_max_(t_max), eta_min_(eta_min) {
  LOCKSTEP_FAIL_IF(t_max <= 0) << "CosineLr: t_max must be positive, got " << t_max;
}

float CosineLr::lr_at(int64_t t) const {
  LOCKSTEP_CHECK(t >= 0) << "schedule step " << t;
  const double c = std::cos(std::numbers::pi * double(t) / double(t_max_));
  return static_cast<float>(eta_min_ + (double(base_lr_) - eta_min_) * (1.0 + c) / 2.0);
}

LinearWarmup::LinearWarmup(std::unique_ptr<LrSchedule> after, float start_factor, int64_t warmup_steps)
    : after_(std::move(after)), start_factor_(start_factor), warmup_steps_(warmup_steps) {
  LOCKSTEP_CHECK(after_ != nullptr) << "LinearWarmup needs a schedule to hand over to";
  LOCKSTEP_FAIL_IF(!(start_factor > 0.f && start_factor <= 1.f))
      << "LinearWarmup: start_factor must be in (0, 1], got " << start_factor;
  LOCKSTEP_FAIL_IF(warmup_steps < 0) << "LinearWarmup: warmup_steps must be >= 0, got " << warmup_steps;
}

float LinearWarmup::lr_at(int64_t t) const {
  LOCKSTEP_CHECK(t >= 0) << "schedule step " << t;
  if (t >= warmup_steps_) return after_->lr_at(t - warmup_steps_);
  const double factor = start_factor_ + (1.0 - start_factor_) * double(t) / double(warmup_steps_);
  return static_cast<float>(double(after_->lr_at(0)) * factor);
}

}  // namespace lockstep
