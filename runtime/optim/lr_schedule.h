// Learning-rate schedules as closed forms of t, the number of scheduler steps taken (t = 0 before
// the first), matching PyTorch's schedulers' get_last_lr(). A pure function of t needs no state in
// a checkpoint beyond t itself. Use: optimizer.set_lr(schedule.lr_at(t)) before each step.
#pragma once

#include <cstdint>
#include <memory>

namespace lockstep {

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual float lr_at(int64_t t) const = 0;  // t >= 0
};

// lr = base_lr for every t.
class ConstantLr : public LrSchedule {
 public:
  explicit ConstantLr(float base_lr);
  float lr_at(int64_t t) const override;

 private:
  float base_lr_;
};

// torch StepLR: lr = base_lr * gamma^floor(t / step_size).
class StepLr : public LrSchedule {
 public:
  StepLr(float base_lr, int64_t step_size, float gamma);
  float lr_at(int64_t t) const override;

 private:
  float base_lr_;
  int64_t step_size_;
  float gamma_;
};

// torch CosineAnnealingLR (its closed form):
//   lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2
// Past t_max it rises again (period 2 * t_max), as PyTorch's does.
class CosineLr : public LrSchedule {
 public:
  CosineLr(float base_lr, int64_t t_max, float eta_min = 0.f);
  float lr_at(int64_t t) const override;

 private:
  float base_lr_;
  int64_t t_max_;
  float eta_min_;
};

// Warmup then hand-over, like torch SequentialLR([LinearLR(start_factor, end_factor=1,
// total_iters=W), after], milestones=[W]) with W = warmup_steps:
//   t <  W: lr = after.lr_at(0) * (start_factor + (1 - start_factor) * t / W)
//   t >= W: lr = after.lr_at(t - W)     (after starts its own clock at the hand-over)
// after.lr_at(0) is the base lr for every schedule here. W = 0 means no warmup.
class LinearWarmup : public LrSchedule {
 public:
  LinearWarmup(std::unique_ptr<LrSchedule> after, float start_factor, int64_t warmup_steps);
  float lr_at(int64_t t) const override;

 private:
  std::unique_ptr<LrSchedule> after_;
  float start_factor_;
  int64_t warmup_steps_;
};

}  // namespace lockstep
