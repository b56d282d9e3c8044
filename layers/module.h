// Module: a node of the model tree. Each layer owns its forward and backward (no general autograd:
// models are sequential stacks). Mode is explicit state of the tree: train()/eval() set it
// recursively. Grad mode (runtime/grad_mode.h) decides whether forward saves anything for backward.
// Parameters and buffers are registered under PyTorch's state_dict names ("0.weight",
// "1.running_mean", "1.num_batches_tracked").
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/parameter.h"
#include "runtime/tensor.h"

namespace lockstep {

class Philox;

enum class Mode { kTrain, kEval };

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // x -> y. In train mode with grad enabled, saves what backward needs.
  virtual Tensor forward(const Tensor& x) = 0;
  // dL/dy -> dL/dx; accumulates parameter gradients. Valid once per recorded forward.
  virtual Tensor backward(const Tensor& dy) = 0;
  // Short description for messages, e.g. "Linear(784->512)".
  virtual std::string describe() const = 0;
  // The output shape for an input of shape `in` (batch dimension first), by formula: checks that
  // `in` fits this layer and computes the result with overflow-checked arithmetic, running
  // nothing, so no mode or batch statistic can change the answer. Throws Error naming the layer
  // (describe()), the shape it expects and `in` when `in` does not fit, or when a size overflows.
  virtual Shape output_shape(const Shape& in) const = 0;

  // Draws fresh initial parameters (PyTorch's default init for each layer) from rng, one RNG
  // "layer" slot per parameter tensor, in registration order; the default recurses into children.
  virtual void reset_parameters(Philox& rng, uint32_t& slot);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return mode_ == Mode::kTrain; }
  Mode mode() const { return mode_; }

  // When false, backward may skip computing dx (the first layer of a model; like an input that
  // does not require grad) and returns an undefined Tensor.
  void set_needs_input_grad(bool on) { needs_input_grad_ = on; }
  bool needs_input_grad() const { return needs_input_grad_; }

  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  // Parameters then buffers per module, children after, in registration order (PyTorch's order).
  std::vector<std::pair<std::string, Tensor*>> state_dict();
  std::vector<Parameter*> parameters();
  void zero_grad();

  const std::vector<std::pair<std::string, std::unique_ptr<Module>>>& children() const {
    return children_;
  }

 protected:
  Parameter& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  Module& register_module(const std::string& name, std::unique_ptr<Module> m);
  // Replaces the child registered as `name`; returns the previous one.
  std::unique_ptr<Module> swap_child(const std::string& name, std::unique_ptr<Module> m);
  // Throws if the last forward saved nothing (no-grad) or backward already consumed it.
  void require_saved(bool saved) const;

 private:
  void collect(const std::string& prefix, bool params, bool buffers,
               std::vector<std::pair<std::string, Tensor*>>& out);

  Mode mode_ = Mode::kTrain;
  bool needs_input_grad_ = true;
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

}  // namespace lockstep
