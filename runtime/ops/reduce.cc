// sum and mean over all or some dims; backward broadcasts the gradient back (times 1/count for mean).
#include <cmath>
#include <limits>

#include "runtime/autograd.h"
#include "runtime/ops.h"
#include "runtime/ops/op_util.h"

namespace lockstep {
namespace {
using namespace ops_detail;

// x summed (or averaged) over dims into `keep_shape` (x's rank, 1 at reduced dims), then shaped
// as out_shape (without the reduced dims unless keepdim).
Tensor reduce(const char* op, bool is_mean, const Tensor& x_in, const std::vector<int64_t>& dims, bool keepdim) {
  check_input(op, x_in);
  const Tensor x = x_in.contiguous();  // read positionally as row-major (Note [memory format])
  const Shape& xs = x.shape();
  std::vector<bool> reduced(xs.size(), dims.empty());  // empty dims: every dim (torch 1.13's dim=[])
  for (int64_t dim : dims) {
    const int64_t d = wrap_dim(op, dim, xs);
    if (xs.empty()) continue;  // a 0-d tensor: dim 0 / -1 is the whole tensor
    LOCKSTEP_FAIL_IF(reduced[d]) << op << ": dim " << dim << " appears more than once in the dims for shape "
                                 << shape_str(xs);
    reduced[d] = true;
  }
  Shape keep_shape = xs, out_shape;
  int64_t count = 1;
  for (size_t d = 0; d < xs.size(); ++d) {
    if (reduced[d]) {
      count *= xs[d];
      keep_shape[d] = 1;
      if (keepdim) out_shape.push_back(1);
    } else {
      out_shape.push_back(xs[d]);
    }
  }

  std::vector<double> acc(static_cast<size_t>(shape_numel(keep_shape)), 0.0);
  const std::vector<int64_t> st = broadcast_strides(keep_shape, xs);
  const float* xp = x.data();
  for_each_broadcast(xs, st, st, [&](int64_t i, int64_t j, int64_t) { acc[j] += xp[i]; });
  Tensor out = Tensor::empty(out_shape);
  const double scale = is_mean ? (count ? 1.0 / static_cast<double>(count) : std::numeric_limits<double>::quiet_NaN()) : 1.0;
  for (size_t j = 0; j < acc.size(); ++j) out[static_cast<int64_t>(j)] = static_cast<float>(acc[j] * scale);
  if (!should_record({&x})) return out;

  const float g_scale = static_cast<float>(scale);
  return record(op, out, {x}, [xs, keep_shape, g_scale, is_mean](const Tensor& g) -> std::vector<Tensor> {
    Tensor gx = Tensor::empty(xs);
    const std::vector<int64_t> s = broadcast_strides(keep_shape, xs);
    const float* gp = g.data();
    float* o = gx.data();
    if (is_mean)
      for_each_broadcast(xs, s, s, [&](int64_t i, int64_t j, int64_t) { o[i] = gp[j] * g_scale; });
    else
      for_each_broadcast(xs, s, s, [&](int64_t i, int64_t j, int64_t) { o[i] = gp[j]; });
    return {gx};
  });
}

}  // namespace

Tensor sum(const Tensor& x) { return reduce("sum", false, x, {}, false); }
Tensor mean(const Tensor& x) { return reduce("mean", true, x, {}, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return reduce("sum", false, x, dims, keepdim); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return reduce("mean", true, x, dims, keepdim);
}

}  // namespace lockstep
