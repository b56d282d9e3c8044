// Deterministic default initialisation from (seed, stream kInit).
#include "layers/init.h"

#include <vector>

namespace lockstep {

void fill_uniform(Tensor& t, float bound, Philox& rng, uint32_t slot) {
  rng.uniform(slot, t.data(), t.numel());
  for (float& v : t.span()) v = (2.f * v - 1.f) * bound;
}

void init_parameters(Module& model, uint64_t seed) {
  Philox rng(RngState{seed, 0, RngStream::kInit, 0});
  uint32_t slot = 0;
  model.reset_parameters(rng, slot);
}

}  // namespace lockstep
