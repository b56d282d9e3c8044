// Row kernels for 2x2, stride-2 max pooling, the pooling of every reference model. AVX-512 where
// the compiler targets it, portable loops otherwise; both pick the first maximum in scan order.
// r0, r1: two input rows (2*ow floats used); out, pos: ow outputs and their positions 0..3
// (0, 1: r0[2j], r0[2j+1]; 2, 3: r1[2j], r1[2j+1]).
#pragma once

#include <cstdint>

namespace lockstep {

void max_pool2x2_row(const float* r0, const float* r1, int64_t ow, float* out, uint8_t* pos);
// d0, d1: the two input-gradient rows (2*ow floats written): g[j] at its window's position, 0 elsewhere.
void max_pool2x2_backward_row(const uint8_t* pos, const float* g, int64_t ow, float* d0, float* d1);

}  // namespace lockstep
