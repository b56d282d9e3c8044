// Optimizer: the interface every update rule implements (step), and what all rules share: the
// parameter list, the learning rate, zero_grad and the count of steps taken. State is exposed as
// named tensors plus the step count, so a checkpoint can save and restore any rule alike.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/parameter.h"
#include "runtime/tensor.h"

namespace lockstep {

class Optimizer {
 public:
  // params are not owned and must outlive the optimizer; every grad must be defined, value-shaped.
  explicit Optimizer(std::vector<Parameter*> params, float lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual void step() = 0;  // applies one update from the current grads; increments step_count
  void zero_grad();         // fills every grad with 0 (PyTorch 1.13's set_to_none=False)

  float lr() const { return lr_; }
  void set_lr(float lr);  // read at every step, so a schedule may change it between steps

  // Named state, e.g. "0.momentum_buffer" or "1.exp_avg" (parameter index, PyTorch's state name).
  // The tensors are the live ones: writing into them restores a checkpoint.
  virtual std::vector<std::pair<std::string, Tensor*>> state_tensors() = 0;
  int64_t step_count() const { return step_count_; }
  void set_step_count(int64_t n);  // restore together with state_tensors

  const std::vector<Parameter*>& params() const { return params_; }

  // The shortest decimal that reads back as x, as a double: 0.99f -> 0.99. Hyper-parameters arrive
  // as floats (job files, options structs), but PyTorch forms 1 - beta and beta^t from the Python
  // double the user wrote; forming them from this value rather than from 0.99f's binary expansion
  // (0.9900000095...) makes them round to PyTorch's floats (1 - alpha: 0.01f, not 0.00999999f).
  static double typed_value(float x);

 protected:
  void check_grads() const;  // every grad defined and shaped like its value

  std::vector<Parameter*> params_;
  float lr_;
  int64_t step_count_ = 0;
};

}  // namespace lockstep
