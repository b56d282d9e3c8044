// Parameter: a trainable tensor and its gradient, which backward accumulates into (like .grad).
// value carries the parameter's leaf node (runtime/autograd.h), so an op that reads value is
// recorded and its gradient lands in grad. on_grad_ready is the autograd hook the gradient reducer
// uses: called once per backward pass when grad is final, i.e. every use of the parameter in the
// graph has accumulated into it (PyTorch's post-accumulate-grad hook). on_grad_rows_ready(p, rows),
// when set, says earlier that grad's first `rows` rows (along dim 0) are final: a layer whose last
// use of p computes its gradient in blocks of rows reports each block (grad_rows_final,
// runtime/autograd.h), so the reducer can start all-reducing them while the rest is computed.
#pragma once

#include <cstdint>
#include <functional>

#include "runtime/tensor.h"

namespace lockstep {

struct Parameter {
  Tensor value;
  Tensor grad;  // same shape as value; zeroed by Optimizer::zero_grad / Module::zero_grad
  std::function<void(Parameter&)> on_grad_ready;
  std::function<void(Parameter&, int64_t rows)> on_grad_rows_ready;
};

// Attaches p's leaf node to p->value (Module::register_parameter does this); p must outlive every
// graph that reads its value.
void make_leaf(Parameter& p);

}  // namespace lockstep
