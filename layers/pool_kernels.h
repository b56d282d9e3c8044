// Row kernels for 2x2, stride-2 max pooling, the pooling of every reference model. AVX-512 where
// the compiler targets it, portable loops otherwise; both follow PyTorch's window rule
// (pool_window_argmax): the first maximum in scan order, but a NaN wins and the last NaN is chosen.
// r0, r1: two input rows (2*ow floats used); out, pos: ow outputs and their positions 0..3
// (0, 1: r0[2j], r0[2j+1]; 2, 3: r1[2j], r1[2j+1]).
#pragma once

#include <cstdint>

namespace lockstep {

// PyTorch's CPU max-pool rule for one window of values v[0..n) in scan order: starting from
// (-inf, index 0), v[k] takes over when v[k] > max or v[k] is NaN. So ties keep the first
// maximum, any NaN makes the result NaN, and its index is the last NaN's.
inline bool pool_takes_over(float v, float max_so_far) { return v > max_so_far || v != v; }
inline int64_t pool_window_argmax(const float* v, int64_t n) {
  float m = -__builtin_inff();
  int64_t at = 0;
  for (int64_t k = 0; k < n; ++k)
    if (pool_takes_over(v[k], m)) {
      m = v[k];
      at = k;
    }
  return at;
}

void max_pool2x2_row(const float* r0, const float* r1, int64_t ow, float* out, uint8_t* pos);
// d0, d1: the two input-gradient rows (2*ow floats written): g[j] at its window's position, 0 elsewhere.
void max_pool2x2_backward_row(const uint8_t* pos, const float* g, int64_t ow, float* d0, float* d1);

}  // namespace lockstep
