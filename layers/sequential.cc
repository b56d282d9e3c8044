// Sequential forward and index-named error context.
#include "layers/sequential.h"

#include <sstream>

#include "layers/batch_norm.h"
#include "layers/relu.h"
#include "runtime/check.h"

namespace lockstep {

Sequential& Sequential::add(std::unique_ptr<Module> m) {
  layers_.push_back(&register_module(std::to_string(layers_.size()), std::move(m)));
  return *this;
}

std::unique_ptr<Module> Sequential::replace(size_t i, std::unique_ptr<Module> m) {
  LOCKSTEP_CHECK(i < layers_.size()) << "replace layer " << i << " of " << layers_.size();
  m->train(is_training());
  m->set_needs_input_grad(layers_[i]->needs_input_grad());
  layers_[i] = m.get();
  return swap_child(std::to_string(i), std::move(m));
}

std::string Sequential::describe() const {
  std::ostringstream os;
  os << "Sequential(";
  for (size_t i = 0; i < layers_.size(); ++i) os << (i ? ", " : "") << layers_[i]->describe();
  os << ")";
  return os.str();
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    try {
      // BatchNorm followed by ReLU runs as one fused call (BatchNorm::forward_relu: the same values
      // and gradients); the ReLU, which holds no state, is skipped.
      if (auto* bn = dynamic_cast<BatchNorm*>(layers_[i]);
          bn && i + 1 < layers_.size() && dynamic_cast<ReLU*>(layers_[i + 1])) {
        h = bn->forward_relu(h);
        ++i;
        continue;
      }
      h = layers_[i]->forward(h);
    } catch (const Error& e) {
      throw Error("layer " + std::to_string(i) + ": " + e.what());
    }
  }
  return h;
}

Shape Sequential::output_shape(const Shape& in) const {
  Shape shape = in;
  for (size_t i = 0; i < layers_.size(); ++i) {
    try {
      shape = layers_[i]->output_shape(shape);
    } catch (const Error& e) {
      throw Error("layer " + std::to_string(i) + ": " + e.what());
    }
  }
  return shape;
}

}  // namespace lockstep
