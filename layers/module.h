// Module: a node of the model tree, as torch.nn.Module. A model is a subclass that registers its
// children, parameters and buffers in its constructor and writes forward() with ops
// (runtime/ops.h) and child modules; autograd (runtime/autograd.h) records the graph, so there is
// no backward to write. Leaf layers with fused kernels derive from Layer (layers/layer.h).
// Mode is explicit state of the tree: train()/eval() set it recursively. Grad mode
// (runtime/grad_mode.h) decides whether forward records anything for backward. Parameters and
// buffers get PyTorch's state_dict names from the tree: "layer1.0.conv1.weight",
// "layer1.0.bn1.running_mean", "0.num_batches_tracked".
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/parameter.h"
#include "runtime/tensor.h"

namespace lockstep {

class Philox;
class TraceRecorder;

enum class Mode { kTrain, kEval };

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // x -> y. Under grad mode, records what backward needs (runtime/autograd.h).
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
  // Short description for messages, e.g. "Linear(784->512)"; default "Module".
  virtual std::string describe() const { return "Module"; }
  // The output shape for an input of shape `in` (batch dimension first), by formula: checks that
  // `in` fits this layer and computes the result with overflow-checked arithmetic, running
  // nothing, so no mode or batch statistic can change the answer. Throws Error naming the layer
  // (describe()), the shape it expects and `in` when `in` does not fit, or when a size overflows.
  // Every layer and Sequential has it; a user's module need not (the default throws, naming it).
  virtual Shape output_shape(const Shape& in) const;

  // Draws fresh initial parameters (PyTorch's default init for each layer) from rng, one RNG
  // "layer" slot per parameter tensor, in registration order; the default recurses into children.
  virtual void reset_parameters(Philox& rng, uint32_t& slot);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return mode_ == Mode::kTrain; }
  Mode mode() const { return mode_; }

  // When false, a layer's backward may skip computing dx and return an undefined Tensor. The
  // autograd node of a layer turns it off for the call when the input requires no grad.
  void set_needs_input_grad(bool on) { needs_input_grad_ = on; }
  bool needs_input_grad() const { return needs_input_grad_; }

  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  std::vector<std::pair<std::string, Tensor*>> named_buffers();
  // Parameters then buffers per module, children after, in registration order (PyTorch's order).
  std::vector<std::pair<std::string, Tensor*>> state_dict();
  std::vector<Parameter*> parameters();
  void zero_grad();

  const std::deque<std::pair<std::string, std::unique_ptr<Module>>>& children() const { return children_; }
  // The timeline (runtime/trace_recorder.h): every module of the tree takes its qualified name
  // ("layer1.0.conv1", as in state_dict keys; the root: describe()), under which a Layer records its
  // forward and its backward (the autograd node's run) as spans. Null: off (the default).
  void set_trace(TraceRecorder* rec);
  TraceRecorder* trace() const { return trace_; }
  uint32_t trace_name() const { return trace_name_; }

  // Every module of the tree with its qualified name ("" for this one, "layer1.0.conv1"), parents
  // before children, in registration order (torch's named_modules).
  std::vector<std::pair<std::string, Module*>> named_modules();

 protected:
  // value becomes a leaf of the autograd graph whose gradient accumulates into .grad.
  Parameter& register_parameter(const std::string& name, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor value);
  // The child keeps this module's mode. The reference stays valid as long as this module lives.
  template <typename T>
  T& register_module(const std::string& name, std::unique_ptr<T> m) {
    T& ref = *m;
    add_child(name, std::move(m));
    return ref;
  }
  // Replaces the child registered as `name`; returns the previous one.
  std::unique_ptr<Module> swap_child(const std::string& name, std::unique_ptr<Module> m);
  // Throws if the last forward saved nothing (no-grad) or backward already consumed it.
  void require_saved(bool saved) const;

 private:
  void add_child(const std::string& name, std::unique_ptr<Module> m);
  void collect(const std::string& prefix, bool params, bool buffers,
               std::vector<std::pair<std::string, Tensor*>>& out);

  Mode mode_ = Mode::kTrain;
  bool needs_input_grad_ = true;
  TraceRecorder* trace_ = nullptr;
  uint32_t trace_name_ = 0;
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::deque<std::pair<std::string, std::unique_ptr<Module>>> children_;  // stable addresses
};

}  // namespace lockstep
