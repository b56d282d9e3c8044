// Flatten forward/backward: reshapes only.
#include "layers/flatten.h"

#include "layers/shape_math.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

// The feature count from the shape, not numel / N: an empty shard (N = 0, a rank without samples)
// must still flatten to (0, features) for the layers after it.
Shape Flatten::output_shape(const Shape& in) const {
  LOCKSTEP_FAIL_IF(in.empty()) << "Flatten: expected input (N, ...), got " << shape_str(in);
  const auto features = checked_numel(in, 1);
  LOCKSTEP_FAIL_IF(!features) << "Flatten: input " << shape_str(in)
                              << " has more values per sample than 64-bit sizes hold";
  return {in[0], *features};
}

Tensor Flatten::forward_impl(const Tensor& x) {
  Shape out = output_shape(x.shape());
  in_shape_ = x.shape();
  saved_ = grad_enabled();
  return x.reshape(std::move(out));
}

Tensor Flatten::backward(const Tensor& dy) {
  require_saved(saved_);
  saved_ = false;
  return dy.reshape(in_shape_);
}

}  // namespace lockstep
