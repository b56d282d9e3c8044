// Layer: a module with its own fused forward and backward kernels (Linear, Conv2d, BatchNorm, ...).
// forward() runs the forward kernel and, under grad mode when the input or a parameter requires
// grad, records one autograd node whose apply() runs the layer's backward kernel and accumulates
// the layer's parameter gradients: a step of the tape costs one call, as before autograd.
//
// The kernels keep what backward needs in the layer itself, so a layer serves one recorded call
// per graph: calling it a second time before that graph's backward overwrites the first call's
// saved values, and the first call's node then refuses to run, naming the layer (register a
// second layer instead; under no-grad a layer may be called any number of times).
#pragma once

#include "layers/module.h"

namespace lockstep {

class Layer : public Module {
 public:
  Tensor forward(const Tensor& x) final;
  // The fused backward of the last recorded forward: dL/dy -> dL/dx (undefined when
  // needs_input_grad() is false); adds the parameter gradients into their .grad. Valid once per
  // recorded forward. Called by the layer's autograd node; tests may call it directly.
  virtual Tensor backward(const Tensor& dy) = 0;

 protected:
  // x -> y; when grad_enabled(), saves what backward needs.
  virtual Tensor forward_impl(const Tensor& x) = 0;

 private:
  friend class LayerNode;
  uint64_t calls_ = 0;  // recorded forwards so far; a node runs only for the newest
};

}  // namespace lockstep
