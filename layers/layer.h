// Layer: a module with its own fused forward and backward kernels (Linear, Conv2d, BatchNorm, ...).
// forward() runs the forward kernel and, under grad mode when the input or a parameter requires
// grad, records one autograd node whose apply() runs the layer's backward kernel and accumulates
// the layer's parameter gradients: a step of the tape costs one call, as before autograd.
//
// The kernels keep what backward needs in the layer itself. When the layer is called again before
// the backward of a recorded call, a layer that implements take_saved / restore_saved hands that
// call's saved values to its node first, so it serves any number of calls in one graph (a ReLU
// used twice, weights shared between branches), gradients of every call accumulating. Conv2d
// does not: calling it a second time before that graph's backward overwrites the first call's saved
// values, and the first call's node then refuses to run, naming the layer (register a second layer
// instead; under no-grad any layer may be called any number of times).
//
// Memory format (Note [memory format], runtime/tensor.h): forward hands forward_impl a
// channels_last input as it is only when the layer's accepts_channels_last() says its kernels read
// that storage; every other layer gets contiguous() of it (a recorded copy), so no kernel indexes an
// NHWC storage as NCHW. backward(dy) of a format-aware layer accepts dy in either format.
#pragma once

#include <any>
#include <memory>

#include "layers/module.h"

namespace lockstep {

class LayerNode;

class Layer : public Module {
 public:
  Tensor forward(const Tensor& x) final;
  // The fused backward of the last recorded forward: dL/dy -> dL/dx (undefined when
  // needs_input_grad() is false); adds the parameter gradients into their .grad. Valid once per
  // recorded forward. Called by the layer's autograd node; tests may call it directly.
  virtual Tensor backward(const Tensor& dy) = 0;
  // Whether forward_impl takes a channels_last input as it is (false: it gets contiguous()).
  virtual bool accepts_channels_last() const { return false; }

 protected:
  // x -> y; when grad_enabled(), saves what backward needs.
  virtual Tensor forward_impl(const Tensor& x) = 0;
  // Moves what the last forward_impl saved out of the layer (the node keeps it), and back in before
  // that call's backward. An empty std::any: the layer cannot hand it over.
  virtual std::any take_saved() { return {}; }
  virtual void restore_saved(std::any) {}

 private:
  friend class LayerNode;
  uint64_t calls_ = 0;  // recorded forwards so far
  std::weak_ptr<LayerNode> latest_;  // the newest call's node: its saved values are in the layer
};

}  // namespace lockstep
