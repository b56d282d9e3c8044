// Sequential: a stack of layers named "0", "1", ... (PyTorch's state_dict names). forward runs
// them in order, backward in reverse. An error inside a layer is re-thrown naming its index.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "layers/module.h"

namespace lockstep {

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential& add(std::unique_ptr<Module> m);
  template <typename T, typename... Args>
  Sequential& emplace(Args&&... args) {
    return add(std::make_unique<T>(std::forward<Args>(args)...));
  }
  Tensor forward(const Tensor& x) override;
  Tensor backward(const Tensor& dy) override;
  std::string describe() const override;
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_[i]; }
  const Module& operator[](size_t i) const { return *layers_[i]; }
  // Swaps layer i for m (same name "i"; m takes over the mode); returns the old layer.
  std::unique_ptr<Module> replace(size_t i, std::unique_ptr<Module> m);
  // Called after each layer's backward with its index, once that layer's parameter gradients are
  // final: the gradient reducer starts bucket all-reduces from here, while backward goes on.
  void set_backward_hook(std::function<void(size_t)> hook) { backward_hook_ = std::move(hook); }
  // Each layer's output_shape in turn (nothing runs); an error names the layer's index.
  Shape output_shape(const Shape& in) const override;

 private:
  std::vector<Module*> layers_;
  std::function<void(size_t)> backward_hook_;
};

}  // namespace lockstep
