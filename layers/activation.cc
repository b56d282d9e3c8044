// Activation modules: each forward is its op from runtime/ops.h.
#include "layers/activation.h"

#include <sstream>

#include "runtime/check.h"
#include "runtime/ops.h"

namespace lockstep {

Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope_); }

std::string LeakyReLU::describe() const {
  std::ostringstream os;
  os << "LeakyReLU(" << negative_slope_ << ")";
  return os.str();
}

GELU::GELU(std::string approximate) : approximate_(std::move(approximate)) {
  LOCKSTEP_FAIL_IF(approximate_ != "none" && approximate_ != "tanh")
      << "GELU: approximate must be \"none\" or \"tanh\", got \"" << approximate_ << "\"";
}

Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate_); }
std::string GELU::describe() const { return "GELU(" + approximate_ + ")"; }

Tensor SiLU::forward(const Tensor& x) { return silu(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }

}  // namespace lockstep
