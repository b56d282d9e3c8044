// Parameter initialisation with PyTorch's default schemes, drawn from Philox (stream kInit) so
// every rank that uses the same seed builds the same model.
#pragma once

#include <cstdint>

#include "layers/module.h"
#include "runtime/philox.h"

namespace lockstep {

// Uniform(-bound, bound) into t, from RNG slot `slot` (one slot per tensor).
void fill_uniform(Tensor& t, float bound, Philox& rng, uint32_t slot);

// Re-initialises every parameter of the model deterministically from seed.
void init_parameters(Module& model, uint64_t seed);

}  // namespace lockstep
