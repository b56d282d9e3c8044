// Closed forms of the schedules in lr_schedule.h, evaluated in double and rounded once to float.
#include "runtime/optim/lr_schedule.h"

#include <algorithm>
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

LinearLr::LinearLr(float base_lr, float start_factor, float end_factor, int64_t total_iters)
    : base_lr_(base_lr), start_factor_(start_factor), end_factor_(end_factor), total_iters_(total_iters) {
  LOCKSTEP_FAIL_IF(!(start_factor >= 0.f && start_factor <= 1.f))
      << "LinearLr: start_factor must be in [0, 1], got " << start_factor;
  LOCKSTEP_FAIL_IF(!(end_factor >= 0.f && end_factor <= 1.f)) << "LinearLr: end_factor must be in [0, 1], got " << end_factor;
  LOCKSTEP_FAIL_IF(total_iters <= 0) << "LinearLr: total_iters must be positive, got " << total_iters;
}

float LinearLr::lr_at(int64_t t) const {
  LOCKSTEP_CHECK(t >= 0) << "schedule step " << t;
  const double done = double(std::min(t, total_iters_)) / double(total_iters_);
  return static_cast<float>(double(base_lr_) * (start_factor_ + (double(end_factor_) - start_factor_) * done));
}

PolynomialLr::PolynomialLr(float base_lr, int64_t total_iters, float power)
    : base_lr_(base_lr), total_iters_(total_iters), power_(power) {
  LOCKSTEP_FAIL_IF(total_iters <= 0) << "PolynomialLr: total_iters must be positive, got " << total_iters;
  LOCKSTEP_FAIL_IF(!(power > 0.f)) << "PolynomialLr: power must be positive, got " << power;
}

float PolynomialLr::lr_at(int64_t t) const {
  LOCKSTEP_CHECK(t >= 0) << "schedule step " << t;
  const double left = 1.0 - double(std::min(t, total_iters_)) / double(total_iters_);
  return static_cast<float>(double(base_lr_) * std::pow(left, double(power_)));
}

OneCycleLr::OneCycleLr(float max_lr, OneCycleOptions o) : max_lr_(max_lr), o_(o) {
  LOCKSTEP_FAIL_IF(o.total_steps <= 0) << "OneCycleLr: total_steps must be positive, got " << o.total_steps;
  LOCKSTEP_FAIL_IF(!(o.pct_start > 0.f && o.pct_start < 1.f))
      << "OneCycleLr: pct_start must be in (0, 1), got " << o.pct_start;
  LOCKSTEP_FAIL_IF(!(o.div_factor > 0.f)) << "OneCycleLr: div_factor must be positive, got " << o.div_factor;
  LOCKSTEP_FAIL_IF(!(o.final_div_factor > 0.f))
      << "OneCycleLr: final_div_factor must be positive, got " << o.final_div_factor;
}

double OneCycleLr::anneal(double start, double end, double pct) const {
  if (!o_.anneal_cos) return (end - start) * pct + start;
  return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
}

float OneCycleLr::lr_at(int64_t t) const {
  LOCKSTEP_FAIL_IF(t < 0 || t > o_.total_steps)
      << "OneCycleLr: step " << t << " is past total_steps " << o_.total_steps;
  // torch's phase ends, in float as torch computes them: phase 1 ends at pct_start * total - 1.
  const double initial = double(max_lr_) / o_.div_factor, min_lr = initial / o_.final_div_factor;
  const double end1 = double(o_.pct_start) * double(o_.total_steps) - 1.0, end2 = double(o_.total_steps) - 1.0;
  const double s = double(t);
  if (s <= end1) return static_cast<float>(anneal(initial, max_lr_, s / end1));
  return static_cast<float>(anneal(max_lr_, min_lr, (s - end1) / (end2 - end1)));
}

LinearWarmup::LinearWarmup(std::unique_ptr<LrSchedule> after, float start_factor, int64_t warmup_steps)
    : after_(std::move(after)), start_factor_(start_factor), warmup_steps_(warmup_steps) {
  LOCKSTEP_CHECK(after_ != nullptr) << "LinearWarmup needs a schedule to hand over to";
  LOCKSTEP_FAIL_IF(!(start_factor >= 0.f && start_factor <= 1.f))
      << "LinearWarmup: start_factor must be in [0, 1], got " << start_factor;
  LOCKSTEP_FAIL_IF(warmup_steps < 0) << "LinearWarmup: warmup_steps must be >= 0, got " << warmup_steps;
}

float LinearWarmup::lr_at(int64_t t) const {
  LOCKSTEP_CHECK(t >= 0) << "schedule step " << t;
  if (t >= warmup_steps_) return after_->lr_at(t - warmup_steps_);
  const double factor = start_factor_ + (1.0 - start_factor_) * double(t) / double(warmup_steps_);
  return static_cast<float>(double(after_->lr_at(0)) * factor);
}

}  // namespace lockstep
