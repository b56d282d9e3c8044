// The moment state and update loop Adam (adam.h) and AdamW (adamw.h) share: PyTorch 1.13's
// single-tensor Adam kernel, with the weight decay either added to the gradient (Adam's L2) or
// applied to the value first (AdamW's decoupled decay).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "runtime/parameter.h"
#include "runtime/tensor.h"

namespace lockstep {

// The hyper-parameters of one step at 1-based step t, formed as PyTorch forms them.
struct AdamStepScalars {
  double lr = 0;
  double beta1 = 0, beta2 = 0;  // the decimals the user wrote (Optimizer::typed_value)
  float fbeta1 = 0, fbeta2 = 0, eps = 0;  // as stored in float
  float l2 = 0;      // Adam: g += l2 * p (skipped when 0, as PyTorch)
  float decay = 1;   // AdamW: p *= decay = 1 - lr * weight_decay before the step (1: none)
};

// exp_avg (m), exp_avg_sq (v) and, with amsgrad, max_exp_avg_sq per parameter, zero-initialised.
class AdamMoments {
 public:
  AdamMoments(const std::vector<Parameter*>& params, bool amsgrad);
  // Per element: p *= decay; g = grad + l2 * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
  // amsgrad: v_max = max(v_max, v) replaces v; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
  void step(const std::vector<Parameter*>& params, int64_t t, const AdamStepScalars& s);
  // "{i}.exp_avg", "{i}.exp_avg_sq" and, with amsgrad, "{i}.max_exp_avg_sq" (PyTorch's names and order).
  std::vector<std::pair<std::string, Tensor*>> state_tensors();

 private:
  bool amsgrad_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_, max_exp_avg_sq_;
};

}  // namespace lockstep
