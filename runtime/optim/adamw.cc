// AdamW update loop; see adamw.h for the rule. Scalars are formed in double and rounded to float
// once, as PyTorch forms them in Python before handing them to float kernels.
#include "runtime/optim/adamw.h"

#include "runtime/check.h"

namespace lockstep {

AdamW::AdamW(std::vector<Parameter*> params, const AdamWOptions& options)
    : Optimizer(std::move(params), options.lr), options_(options), moments_(params_, options.amsgrad) {
  LOCKSTEP_FAIL_IF(!(options.eps >= 0.f)) << "invalid AdamW eps: " << options.eps;
  LOCKSTEP_FAIL_IF(!(options.beta1 >= 0.f && options.beta1 < 1.f)) << "invalid AdamW beta1: " << options.beta1;
  LOCKSTEP_FAIL_IF(!(options.beta2 >= 0.f && options.beta2 < 1.f)) << "invalid AdamW beta2: " << options.beta2;
  LOCKSTEP_FAIL_IF(!(options.weight_decay >= 0.f)) << "invalid AdamW weight_decay: " << options.weight_decay;
}

void AdamW::step() {
  check_grads();
  ++step_count_;
  moments_.step(params_, step_count_,
                {.lr = lr_, .beta1 = typed_value(options_.beta1), .beta2 = typed_value(options_.beta2),
                 .fbeta1 = options_.beta1, .fbeta2 = options_.beta2, .eps = options_.eps,
                 .decay = static_cast<float>(1.0 - double(lr_) * typed_value(options_.weight_decay))});
}

std::vector<std::pair<std::string, Tensor*>> AdamW::state_tensors() { return moments_.state_tensors(); }

}  // namespace lockstep
