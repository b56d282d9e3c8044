// Sequential: a stack of modules named "0", "1", ... (torch.nn.Sequential's state_dict names).
// forward runs them in order (autograd records each); an error inside one is re-thrown naming its
// index. A BatchNorm directly followed by a ReLU runs as one fused call (BatchNorm::forward_relu,
// bit-identical to the two), so the timeline shows one span for both, under the BatchNorm's name.
#pragma once

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
  std::string describe() const override;
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) { return *layers_[i]; }
  const Module& operator[](size_t i) const { return *layers_[i]; }
  // Swaps layer i for m (same name "i"; m takes over the mode); returns the old layer.
  std::unique_ptr<Module> replace(size_t i, std::unique_ptr<Module> m);
  // Each layer's output_shape in turn (nothing runs); an error names the layer's index.
  Shape output_shape(const Shape& in) const override;

 private:
  std::vector<Module*> layers_;
};

}  // namespace lockstep
