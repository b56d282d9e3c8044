// Activation modules, as torch.nn's: LeakyReLU, GELU, SiLU, Sigmoid, Tanh. Each is a Module whose
// forward calls its op (runtime/ops.h), so autograd records the op's node; no parameters, any
// input shape, output shape unchanged. (ReLU is a fused Layer of its own, layers/relu.h.)
#pragma once

#include <string>

#include "layers/module.h"

namespace lockstep {

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(float negative_slope = 0.01f) : negative_slope_(negative_slope) {}
  Tensor forward(const Tensor& x) override;  // x: any shape -> y: same shape
  std::string describe() const override;     // "LeakyReLU(0.01)"
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  float negative_slope_;
};

class GELU : public Module {
 public:
  // approximate: "none" (exact, erf) or "tanh", as nn.GELU; anything else throws here.
  explicit GELU(std::string approximate = "none");
  Tensor forward(const Tensor& x) override;  // x: any shape -> y: same shape
  std::string describe() const override;     // "GELU(none)", "GELU(tanh)"
  Shape output_shape(const Shape& in) const override { return in; }

 private:
  std::string approximate_;
};

class SiLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;  // x: any shape -> y: same shape
  std::string describe() const override { return "SiLU"; }
  Shape output_shape(const Shape& in) const override { return in; }
};

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;  // x: any shape -> y: same shape
  std::string describe() const override { return "Sigmoid"; }
  Shape output_shape(const Shape& in) const override { return in; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;  // x: any shape -> y: same shape
  std::string describe() const override { return "Tanh"; }
  Shape output_shape(const Shape& in) const override { return in; }
};

}  // namespace lockstep
