// Module tree bookkeeping: modes, registration and state_dict naming.
#include "layers/module.h"

#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/trace_recorder.h"

namespace lockstep {

void Module::reset_parameters(Philox& rng, uint32_t& slot) {
  for (auto& [name, child] : children_) child->reset_parameters(rng, slot);
}

void Module::train(bool on) {
  mode_ = on ? Mode::kTrain : Mode::kEval;
  for (auto& [name, child] : children_) child->train(on);
}

Parameter& Module::register_parameter(const std::string& name, Tensor value) {
  auto p = std::make_unique<Parameter>();
  p->grad = Tensor::zeros(value.shape());
  p->value = std::move(value);
  make_leaf(*p);
  params_.emplace_back(name, std::move(p));
  return *params_.back().second;
}

Tensor& Module::register_buffer(const std::string& name, Tensor value) {
  buffers_.emplace_back(name, std::make_unique<Tensor>(std::move(value)));
  return *buffers_.back().second;
}

void Module::add_child(const std::string& name, std::unique_ptr<Module> m) {
  for (auto& [n, c] : children_) LOCKSTEP_CHECK(n != name) << "two children named " << name;
  m->train(is_training());
  children_.emplace_back(name, std::move(m));
}

Shape Module::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(true) << describe() << ": no output_shape for input " << shape_str(in)
                         << " (a module without a shape formula; run forward instead)";
  return in;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& [n, c] : children_)
    for (auto& [cn, m] : c->named_modules()) out.emplace_back(cn.empty() ? n : n + "." + cn, m);
  return out;
}

void Module::set_trace(TraceRecorder* rec) {
  for (auto& [name, m] : named_modules()) {
    m->trace_ = rec;
    m->trace_name_ = rec ? rec->intern(name.empty() ? m->describe() : name) : 0;
  }
}

std::unique_ptr<Module> Module::swap_child(const std::string& name, std::unique_ptr<Module> m) {
  for (auto& [n, c] : children_)
    if (n == name) {
      std::swap(c, m);
      return m;
    }
  LOCKSTEP_CHECK(false) << "no child named " << name;
  return nullptr;
}

void Module::require_saved(bool saved) const {
  LOCKSTEP_FAIL_IF(!saved) << describe()
                           << ": backward() without a recorded forward (forward ran under no-grad, "
                              "or backward was already called for it)";
}

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, Tensor*>>& out) {
  if (params)
    for (auto& [n, p] : params_) out.emplace_back(prefix + n, &p->value);
  if (buffers)
    for (auto& [n, b] : buffers_) out.emplace_back(prefix + n, b.get());
  for (auto& [n, c] : children_) c->collect(prefix + n + ".", params, buffers, out);
}

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out;
  for (auto& [n, p] : params_) out.emplace_back(n, p.get());
  for (auto& [cn, c] : children_)
    for (auto& [n, p] : c->named_parameters()) out.emplace_back(cn + "." + n, p);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", false, true, out);
  return out;
}

std::vector<std::pair<std::string, Tensor*>> Module::state_dict() {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", true, true, out);
  return out;
}

std::vector<Parameter*> Module::parameters() {
  std::vector<Parameter*> out;
  for (auto& [n, p] : named_parameters()) out.push_back(p);
  return out;
}

void Module::zero_grad() {
  for (Parameter* p : parameters()) p->grad.fill(0.f);
}

}  // namespace lockstep
