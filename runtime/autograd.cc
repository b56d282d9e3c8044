// The autograd engine: graph discovery, dependency counts, and the reverse walk.
#include "runtime/autograd.h"

#include <algorithm>
#include <queue>
#include <utility>
#include <unordered_map>

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {
namespace {

thread_local uint64_t t_next_sequence = 0;

// The backward running on this thread, for grad_final: its per-parameter use counts, the node being
// applied, and the parameters that node already declared final.
struct BackwardContext {
  std::unordered_map<Parameter*, int>* uses = nullptr;
  const Node* node = nullptr;
  std::vector<Parameter*> final_early;
};
thread_local BackwardContext* t_backward = nullptr;

// This node's accumulation into p is done: one use fewer; the hook fires at the last.
void release_use(std::unordered_map<Parameter*, int>& uses, Parameter* p) {
  if (--uses[p] == 0 && p->on_grad_ready) p->on_grad_ready(*p);
}

// A parameter's leaf: adds the incoming gradient into .grad (PyTorch's AccumulateGrad).
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(Parameter* p) : Node({}), p_(p) {}
  std::vector<Tensor> apply(const Tensor& g) override {
    LOCKSTEP_CHECK(g.numel() == p_->grad.numel())
        << "gradient of " << g.numel() << " values for a parameter of shape " << shape_str(p_->value.shape());
    float* dst = p_->grad.data();
    const float* src = g.data();
    for (int64_t i = 0; i < g.numel(); ++i) dst[i] += src[i];
    return {};
  }
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Parameter*> accumulates() const override { return {p_}; }

 private:
  Parameter* p_;
};

class FunctionNode final : public Node {
 public:
  FunctionNode(const char* name, std::vector<std::shared_ptr<Node>> next, BackwardFn fn)
      : Node(std::move(next)), name_(name), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(const Tensor& g) override {
    LOCKSTEP_FAIL_IF(!fn_) << "backward through the graph of " << name_
                           << " a second time: its saved values were freed by the first backward";
    BackwardFn fn = std::move(fn_);  // frees what forward saved once this returns
    fn_ = nullptr;
    return fn(g);
  }
  std::string name() const override { return name_; }

 private:
  const char* name_;
  BackwardFn fn_;
};

// g (dL/d(output), numel values) in `format`: channels_last in `shape` (the output's), or
// contiguous in g's own shape.
Tensor in_format(const Tensor& g, MemoryFormat format, const Shape& shape) {
  if (g.memory_format() == format) return g;
  if (format == MemoryFormat::kContiguous) return g.contiguous();
  return (g.shape() == shape ? g : g.reshape(shape)).to_channels_last();
}

// a + b into a fresh tensor, in a's format (b is converted when it differs: a residual sum whose
// branches' gradients arrive in both formats): a gradient held by one node must not change under
// another.
Tensor sum_of(const Tensor& a, const Tensor& b_any) {
  LOCKSTEP_CHECK(a.numel() == b_any.numel()) << "gradients of " << a.numel() << " and " << b_any.numel() << " values";
  const Tensor b = in_format(b_any, a.memory_format(), a.shape());
  Tensor out = Tensor::empty(a.shape(), a.memory_format());
  const float* x = a.data();
  const float* y = b.data();
  float* o = out.data();
  for (int64_t i = 0; i < a.numel(); ++i) o[i] = x[i] + y[i];
  return out;
}

}  // namespace

Node::Node(std::vector<std::shared_ptr<Node>> next) : next_(std::move(next)), sequence_(t_next_sequence++) {}

void Node::set_output(const Tensor& out) {
  out_format_ = out.memory_format();
  if (out.is_channels_last()) out_shape_ = out.shape();
}

void make_leaf(Parameter& p) { p.value.set_grad_fn(std::make_shared<AccumulateGrad>(&p)); }

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->requires_grad()) return true;
  return false;
}

bool should_record(std::span<const Tensor> inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

Tensor record(const char* name, Tensor out, std::span<const Tensor> inputs, BackwardFn fn) {
  if (!should_record(inputs)) return out;
  std::vector<std::shared_ptr<Node>> next;
  next.reserve(inputs.size());
  for (const Tensor& t : inputs) next.push_back(t.grad_fn());
  auto node = std::make_shared<FunctionNode>(name, std::move(next), std::move(fn));
  node->set_output(out);
  out.set_grad_fn(std::move(node));
  return out;
}

Tensor record(const char* name, Tensor out, std::initializer_list<Tensor> inputs, BackwardFn fn) {
  return record(name, std::move(out), std::span<const Tensor>(inputs.begin(), inputs.size()), std::move(fn));
}

void backward(const Tensor& root, const Tensor& grad) {
  LOCKSTEP_FAIL_IF(!root.requires_grad())
      << "backward(): the tensor does not require grad (it was made under no-grad (NoGradGuard), or "
         "from nothing that requires grad)";
  Tensor seed = grad;
  if (!seed.defined()) {
    LOCKSTEP_FAIL_IF(root.numel() != 1) << "backward(): grad can be implied only for a one-element tensor, got "
                                        << shape_str(root.shape()) << "; pass dL/d(output)";
    seed = Tensor::full(root.shape(), 1.f);
  }
  LOCKSTEP_FAIL_IF(seed.numel() != root.numel())
      << "backward(): grad of shape " << shape_str(seed.shape()) << " for a tensor of shape " << shape_str(root.shape());

  // Discover the graph: how many edges lead into each node, and how many nodes accumulate into
  // each parameter.
  std::unordered_map<Node*, int> deps;
  std::unordered_map<Parameter*, int> uses;
  std::vector<Node*> stack{root.grad_fn().get()};
  deps[stack.back()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (Parameter* p : n->accumulates()) ++uses[p];
    for (const auto& e : n->next()) {
      if (!e) continue;
      auto [it, fresh] = deps.try_emplace(e.get(), 0);
      ++it->second;
      if (fresh) stack.push_back(e.get());
    }
  }

  NoGradGuard no_grad;
  BackwardContext ctx{.uses = &uses};
  struct Scope {
    BackwardContext* prev;
    explicit Scope(BackwardContext* c) : prev(std::exchange(t_backward, c)) {}
    ~Scope() { t_backward = prev; }
  } scope(&ctx);
  auto later_first = [](Node* a, Node* b) { return a->sequence() < b->sequence(); };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later_first)> ready(later_first);
  std::unordered_map<Node*, Tensor> grads;
  grads[root.grad_fn().get()] = seed;
  ready.push(root.grad_fn().get());
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::vector<Tensor> out;
    if (auto it = grads.find(n); it != grads.end()) {  // no gradient reached it: nothing to apply
      Tensor g = in_format(it->second, n->output_format(), n->output_shape());
      grads.erase(it);
      ctx.node = n;
      ctx.final_early.clear();
      out = n->apply(g);
      ctx.node = nullptr;
      LOCKSTEP_CHECK(out.size() == n->next().size() || out.empty())
          << n->name() << " returned " << out.size() << " gradients for " << n->next().size() << " inputs";
    }
    for (Parameter* p : n->accumulates())
      if (std::find(ctx.final_early.begin(), ctx.final_early.end(), p) == ctx.final_early.end())
        release_use(uses, p);
    ctx.final_early.clear();
    for (size_t i = 0; i < n->next().size(); ++i) {
      Node* e = n->next()[i].get();
      if (!e) continue;
      if (i < out.size() && out[i].defined()) {
        auto [it, fresh] = grads.try_emplace(e, out[i]);
        if (!fresh) it->second = sum_of(it->second, out[i]);
      }
      if (--deps[e] == 0) ready.push(e);
    }
  }
}

void grad_final(Parameter& p) {
  BackwardContext* ctx = t_backward;
  if (!ctx || !ctx->node) return;
  const std::vector<Parameter*> own = ctx->node->accumulates();
  if (std::find(own.begin(), own.end(), &p) == own.end()) return;
  if (std::find(ctx->final_early.begin(), ctx->final_early.end(), &p) != ctx->final_early.end()) return;
  ctx->final_early.push_back(&p);
  release_use(*ctx->uses, &p);
}

void grad_rows_final(Parameter& p, int64_t rows) {
  BackwardContext* ctx = t_backward;
  if (!p.on_grad_rows_ready || !ctx || !ctx->node) return;
  const std::vector<Parameter*> own = ctx->node->accumulates();
  if (std::find(own.begin(), own.end(), &p) == own.end()) return;
  if (std::find(ctx->final_early.begin(), ctx->final_early.end(), &p) != ctx->final_early.end()) return;
  const auto it = ctx->uses->find(&p);
  if (it == ctx->uses->end() || it->second != 1) return;  // another node still adds to p's gradient
  p.on_grad_rows_ready(p, rows);
}

void Tensor::backward() const { lockstep::backward(*this, Tensor()); }
void Tensor::backward(const Tensor& grad) const { lockstep::backward(*this, grad); }

}  // namespace lockstep
