// Flatten forward/backward: reshapes only.
#include "layers/flatten.h"

#include "runtime/check.h"
#include "runtime/grad_mode.h"

namespace lockstep {

Tensor Flatten::forward(const Tensor& x) {
  LOCKSTEP_FAIL_IF(x.ndim() < 1) << "Flatten: input needs a batch dimension";
  in_shape_ = x.shape();
  saved_ = grad_enabled();
  return x.reshape({x.dim(0), -1});
}

Tensor Flatten::backward(const Tensor& dy) {
  require_saved(saved_);
  saved_ = false;
  return dy.reshape(in_shape_);
}

}  // namespace lockstep
