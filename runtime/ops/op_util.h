// Helpers shared by the ops' implementations (runtime/ops/*.cc), not part of the API: argument
// checks with one-line errors, and NumPy broadcasting as strides over the output's index space.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "runtime/check.h"
#include "runtime/tensor.h"

namespace lockstep::ops_detail {

// x defined and on the CPU, else "op: undefined input" / "op: CPU tensors only, got (2, 3) on CUDA".
inline void check_input(const char* op, const Tensor& x) {
  LOCKSTEP_FAIL_IF(!x.defined()) << op << ": undefined input tensor";
  LOCKSTEP_FAIL_IF(x.device() != Device::kCPU)
      << op << ": CPU tensors only, got one of shape " << shape_str(x.shape()) << " on CUDA";
}

// dim in [-rank, rank) -> [0, rank), else "op: dim 4 out of range for shape (2, 3)". A 0-d
// tensor accepts dims -1 and 0, as torch.
inline int64_t wrap_dim(const char* op, int64_t dim, const Shape& shape) {
  const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(shape.size()));
  LOCKSTEP_FAIL_IF(dim < -rank || dim >= rank) << op << ": dim " << dim << " out of range for shape " << shape_str(shape);
  return dim < 0 ? dim + rank : dim;
}

// The broadcast shape of a and b, else "op: shapes (2, 3) and (4) do not broadcast".
Shape broadcast_shape(const char* op, const Shape& a, const Shape& b);

// Element strides of a contiguous tensor of shape `in` read at the indices of `out`, a shape `in`
// broadcasts to: aligned at the last dim, 0 where `in` has size 1 (or no dim) and `out` more.
std::vector<int64_t> broadcast_strides(const Shape& in, const Shape& out);

// Calls f(i, ia, ib) for every element i of a contiguous `out` in order, with ia and ib the
// offsets given by strides sa and sb (from broadcast_strides). Inner loop over the last dim.
template <typename F>
void for_each_broadcast(const Shape& out, const std::vector<int64_t>& sa, const std::vector<int64_t>& sb, F&& f) {
  const int64_t n = shape_numel(out);
  if (n == 0) return;
  const size_t rank = out.size();
  if (rank == 0) {
    f(int64_t{0}, int64_t{0}, int64_t{0});
    return;
  }
  const int64_t inner = out[rank - 1], ia_step = sa[rank - 1], ib_step = sb[rank - 1];
  std::vector<int64_t> idx(rank, 0);
  int64_t ia = 0, ib = 0;
  for (int64_t i = 0; i < n; i += inner) {
    for (int64_t j = 0; j < inner; ++j) f(i + j, ia + j * ia_step, ib + j * ib_step);
    // Advance the outer index (all dims but the last), as an odometer.
    for (size_t d = rank - 1; d-- > 0;) {
      ia += sa[d];
      ib += sb[d];
      if (++idx[d] < out[d]) break;
      ia -= sa[d] * out[d];
      ib -= sb[d] * out[d];
      idx[d] = 0;
    }
  }
}

// g (read as contiguous `out`) summed over the dims that `in` broadcast along, into shape `in`;
// accumulates in double. g itself when the shapes are equal.
Tensor sum_to(const Tensor& g, const Shape& out, const Shape& in);

}  // namespace lockstep::ops_detail
