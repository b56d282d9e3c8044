// Layer::forward and the autograd node that runs a layer's fused backward.
#include "layers/layer.h"

#include <utility>

#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"
#include "runtime/trace_recorder.h"

namespace lockstep {

class LayerNode final : public Node {
 public:
  LayerNode(Layer& layer, const Tensor& x, Shape out_shape)
      : Node({x.grad_fn()}), layer_(layer), call_(layer.calls_), out_shape_(std::move(out_shape)) {
    for (Parameter* p : layer.parameters()) params_.push_back(p);
  }
  // The newest call's values move out of the layer into its node, if that call still waits for
  // its backward (Layer::forward before another call, apply before an older call's restore).
  static void stash_latest(Layer& layer, const LayerNode* except) {
    auto latest = layer.latest_.lock();
    if (latest && latest.get() != except && !latest->applied_ && !latest->saved_.has_value())
      latest->saved_ = layer.take_saved();
  }
  std::vector<Tensor> apply(const Tensor& g) override {
    TraceSpan span(layer_.trace(), layer_.trace_name(), TraceCat::kBackward);
    applied_ = true;
    if (saved_.has_value()) {
      stash_latest(layer_, this);
      layer_.restore_saved(std::exchange(saved_, std::any()));
    } else LOCKSTEP_FAIL_IF(layer_.calls_ != call_)
        << layer_.describe() << ": called again before the backward of an earlier call in the same graph, "
        << "which overwrote that call's saved values; register one layer per use";
    const bool need_dx = next()[0] != nullptr;
    const bool user = layer_.needs_input_grad();
    layer_.set_needs_input_grad(user && need_dx);
    Tensor dx;
    try {
      dx = layer_.backward(g.shape() == out_shape_ ? g : g.reshape(out_shape_));
    } catch (...) {
      layer_.set_needs_input_grad(user);
      throw;
    }
    layer_.set_needs_input_grad(user);
    return {need_dx ? dx : Tensor()};
  }
  std::string name() const override { return layer_.describe(); }
  std::vector<Parameter*> accumulates() const override { return params_; }

 private:
  Layer& layer_;
  uint64_t call_;
  Shape out_shape_;
  std::any saved_;  // this call's saved values, once a later call took the layer's place
  bool applied_ = false;
  std::vector<Parameter*> params_;
};

Tensor Layer::forward(const Tensor& x_in) {
  TraceSpan span(trace(), trace_name(), TraceCat::kForward);
  // contiguous() keeps grad_fn; the engine converts the gradient back at x's node.
  const Tensor x = x_in.is_channels_last() && !accepts_channels_last() ? x_in.contiguous() : x_in;
  bool record = grad_enabled() && x.requires_grad();
  if (grad_enabled() && !record)
    for (Parameter* p : parameters())
      if (p->value.requires_grad()) {
        record = true;
        break;
      }
  if (!record) return forward_impl(x).detach();  // out of any graph (backward() may still be called directly)
  LayerNode::stash_latest(*this, nullptr);
  ++calls_;
  Tensor y = forward_impl(x);
  auto node = std::make_shared<LayerNode>(*this, x, y.shape());
  node->set_output(y);
  latest_ = node;
  y.set_grad_fn(std::move(node));
  return y;
}

}  // namespace lockstep
