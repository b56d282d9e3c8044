// Learning-rate schedules as closed forms of t, the number of scheduler steps taken (t = 0 before
// the first), matching PyTorch's schedulers' get_last_lr(). A pure function of t needs no state in
// a checkpoint beyond t itself. Use: optimizer.set_lr(schedule.lr_at(t)) before each step. t counts
// epochs or optimizer steps, as the caller steps it (the trainer: ScheduleInterval); a closed form
// also avoids the recursive ratio torch uses, which divides by zero when a warm-up starts at 0.
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

// torch LinearLR (its closed form): the factor goes linearly from start_factor to end_factor over
// total_iters scheduler steps, then stays:
//   lr = base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)
// Linear decay is start_factor 1, end_factor 0 (= PolynomialLr with power 1).
// Factors in [0, 1]; start_factor 0 is allowed (torch 1.13 divides by zero on its first step).
class LinearLr : public LrSchedule {
 public:
  LinearLr(float base_lr, float start_factor, float end_factor, int64_t total_iters);
  float lr_at(int64_t t) const override;

 private:
  float base_lr_;
  float start_factor_, end_factor_;
  int64_t total_iters_;
};

// torch PolynomialLR (torch 1.13, its closed form):
//   lr = base_lr * (1 - min(t, total_iters) / total_iters)^power
class PolynomialLr : public LrSchedule {
 public:
  PolynomialLr(float base_lr, int64_t total_iters, float power = 1.f);
  float lr_at(int64_t t) const override;

 private:
  float base_lr_;
  int64_t total_iters_;
  float power_;
};

// torch OneCycleLR (Smith & Topin 2018, "Super-Convergence"), two phases (three_phase=False),
// cosine annealing, lr only (cycle_momentum=False: momentum is not cycled). With
// initial = max_lr / div_factor and min = initial / final_div_factor:
//   phase 1, t <= pct_start * total_steps - 1: initial -> max_lr
//   phase 2, up to total_steps - 1:            max_lr -> min
// each by cos annealing end + (start - end) / 2 * (1 + cos(pi * pct)), pct the fraction of the
// phase done. torch raises past total_steps; so does lr_at (the trainer checks the horizon first).
struct OneCycleOptions {
  int64_t total_steps = 0;
  float pct_start = 0.3f;
  float div_factor = 25.f;
  float final_div_factor = 1e4f;
  bool anneal_cos = true;  // false: linear annealing (anneal_strategy="linear")
};
class OneCycleLr : public LrSchedule {
 public:
  OneCycleLr(float max_lr, OneCycleOptions o);
  float lr_at(int64_t t) const override;
  int64_t total_steps() const { return o_.total_steps; }

 private:
  double anneal(double start, double end, double pct) const;
  float max_lr_;
  OneCycleOptions o_;
};

// Warmup then hand-over, like torch SequentialLR([LinearLR(start_factor, end_factor=1,
// total_iters=W), after], milestones=[W]) with W = warmup_steps:
//   t <  W: lr = after.lr_at(0) * (start_factor + (1 - start_factor) * t / W)
//   t >= W: lr = after.lr_at(t - W)     (after starts its own clock at the hand-over)
// after.lr_at(0) is the base lr for every schedule here but OneCycleLr. W = 0 means no warmup.
// start_factor in [0, 1]: 0 starts at lr 0 and rises from the next step (closed form, no ratio).
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
