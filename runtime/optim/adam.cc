// Adam update loop; see adam.h for the rule. Scalars are formed in double and rounded to float
// once, as PyTorch forms them in Python before handing them to float kernels.
#include "runtime/optim/adam.h"

#include "runtime/check.h"

namespace lockstep {

Adam::Adam(std::vector<Parameter*> params, const AdamOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options), moments_(params_, options.amsgrad) {
  LOCKSTEP_FAIL_IF(!(options.eps >= 0.f)) << "invalid Adam eps: " << options.eps;
  LOCKSTEP_FAIL_IF(!(options.beta1 >= 0.f && options.beta1 < 1.f)) << "invalid Adam beta1: " << options.beta1;
  LOCKSTEP_FAIL_IF(!(options.beta2 >= 0.f && options.beta2 < 1.f)) << "invalid Adam beta2: " << options.beta2;
  LOCKSTEP_FAIL_IF(!(options.weight_decay >= 0.f)) << "invalid Adam weight_decay: " << options.weight_decay;
}

void Adam::step() {
  check_grads();
  ++step_count_;
  moments_.step(params_, step_count_,
                {.lr = lr_, .beta1 = typed_value(options_.beta1), .beta2 = typed_value(options_.beta2),
                 .fbeta1 = options_.beta1, .fbeta2 = options_.beta2, .eps = options_.eps,
                 .l2 = options_.weight_decay});
}

std::vector<std::pair<std::string, Tensor*>> Adam::state_tensors() { return moments_.state_tensors(); }

}  // namespace lockstep
