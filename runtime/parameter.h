// Parameter: a trainable tensor and its gradient, which backward accumulates into (like .grad).
#pragma once

#include "runtime/tensor.h"

namespace lockstep {

struct Parameter {
  Tensor value;
  Tensor grad;  // same shape as value; zeroed by Optimizer::zero_grad
};

}  // namespace lockstep
