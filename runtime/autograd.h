// Define-by-run reverse-mode autograd, as PyTorch's engine (torch.autograd.backward) and
// Flashlight's Variable. Under grad mode (runtime/grad_mode.h) every op or layer whose input
// requires grad records one Node on its output (Tensor::grad_fn); the nodes and their edges are the
// graph. backward(loss) walks it in reverse: each node turns dL/d(output) into dL/d(input) for each
// input, gradients reaching a node along several edges are summed first, and parameters accumulate
// into .grad (never overwrite it: zero_grad sets it to zero, as in PyTorch).
//
// Note [backward order]: among nodes whose gradient is complete, the most recently created runs
// first (PyTorch's sequence-number priority). The order is therefore a pure function of the
// forward's order of operations, the same on every rank, and a parameter's on_grad_ready hook
// fires at the same point of every rank's backward: the gradient reducer launches its buckets from
// there.
//
// A graph is used once: apply() consumes what the node saved (retain_graph=False in PyTorch). A
// fused layer keeps its saved activations in the layer itself, so the layer must outlive the graph.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "runtime/parameter.h"
#include "runtime/tensor.h"

namespace lockstep {

class Node {
 public:
  virtual ~Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // dL/d(output) -> one gradient per edge of next(), in order; an undefined Tensor where an input
  // gets none, else one in that input's shape, in either memory format. grad_output is in the
  // output's memory format (Note [memory format]): channels_last in the output's shape, or the
  // output's numel contiguous values in any shape (see Tensor::reshape). Called at most once,
  // under no-grad.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // For messages: "Linear(784->512)", "add".
  virtual std::string name() const = 0;
  // Parameters whose gradient this node accumulates itself (a fused layer, a parameter's leaf):
  // the engine calls their on_grad_ready after the last node that accumulates into them.
  virtual std::vector<Parameter*> accumulates() const { return {}; }

  // The nodes that made this node's inputs; null where an input requires no grad.
  const std::vector<std::shared_ptr<Node>>& next() const { return next_; }
  uint64_t sequence() const { return sequence_; }
  // The memory format of the tensor this node made, and its shape when channels_last: the engine
  // hands apply() its gradient in that format. Set by record() and Layer::forward.
  MemoryFormat output_format() const { return out_format_; }
  const Shape& output_shape() const { return out_shape_; }
  void set_output(const Tensor& out);

 protected:
  explicit Node(std::vector<std::shared_ptr<Node>> next);

 private:
  std::vector<std::shared_ptr<Node>> next_;
  uint64_t sequence_;
  MemoryFormat out_format_ = MemoryFormat::kContiguous;
  Shape out_shape_;  // only when channels_last
};

// Whether an op over `inputs` records a node: grad mode is on and some input requires grad.
bool should_record(std::initializer_list<const Tensor*> inputs);
bool should_record(std::span<const Tensor> inputs);

// The backward of an op as a function: dL/d(output) -> one gradient per input (undefined where
// that input does not require grad).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

// Records `out` as made by op `name` from `inputs` with backward `fn` (which captures what it
// needs), when should_record(inputs); returns out either way. The building block of runtime/ops.
Tensor record(const char* name, Tensor out, std::span<const Tensor> inputs, BackwardFn fn);
Tensor record(const char* name, Tensor out, std::initializer_list<Tensor> inputs, BackwardFn fn);

// Runs the graph behind `root` in reverse (Note [backward order]). grad is dL/d(root), of root's
// numel; undefined means 1, allowed only for a one-element root (a scalar loss). Throws Error when
// root does not require grad, when grad does not fit, or when a node's saved state is gone.
void backward(const Tensor& root, const Tensor& grad = Tensor());

// Called from inside a node's apply() (a fused layer's backward) as soon as that node's
// contribution to p's gradient is complete, before the node's remaining work: when the node is p's
// last use in the running backward, p's on_grad_ready hook fires now instead of after apply
// returns, so the reducer can start all-reducing p's bucket while the node still computes (a
// Linear's bias before its weight, a first layer's weight before nothing else is left). Gradients
// and the order of hooks among parameters are unchanged, so every rank still fires them at the
// same point (Note [backward order]). A no-op outside a backward, for a parameter the running node
// does not accumulate into, and when called twice.
void grad_final(Parameter& p);

// Called from inside a node's apply() that computes p's gradient in blocks of rows (along dim 0,
// in increasing order): rows [0, rows) of p.grad are final. When the node is p's last use in the
// running backward and p has an on_grad_rows_ready hook, the hook is called with `rows`; otherwise
// (other uses still to accumulate, outside a backward, p already final) a no-op. on_grad_ready
// still fires once the whole gradient is final. Whether anybody listens: grad_rows_wanted(p).
void grad_rows_final(Parameter& p, int64_t rows);
// Whether p has an on_grad_rows_ready hook, i.e. whether computing its gradient in blocks of rows
// pays (a layer computes it in one piece otherwise).
inline bool grad_rows_wanted(const Parameter& p) { return static_cast<bool>(p.on_grad_rows_ready); }

}  // namespace lockstep
