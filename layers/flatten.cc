// Flatten forward/backward: reshapes only.
#include "layers/flatten.h"

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

Tensor Flatten::forward(const Tensor& x) {
  LOCKSTEP_FAIL_IF(x.ndim() < 1) << "Flatten: input needs a batch dimension";
  in_shape_ = x.shape();
  saved_ = grad_enabled();
  // The feature count from the shape, not numel / N: an empty shard (N = 0, a rank without
  // samples) must still flatten to (0, features) for the layers after it.
  int64_t features = 1;
  for (int i = 1; i < x.ndim(); ++i) features *= x.dim(i);
  return x.reshape({x.dim(0), features});
}

Tensor Flatten::backward(const Tensor& dy) {
  require_saved(saved_);
  saved_ = false;
  return dy.reshape(in_shape_);
}

}  // namespace lockstep
