// reshape / view / flatten (no node: gradients travel as contiguous values), the memory-format
// conversions contiguous / to_channels_last, and cat.
#include <algorithm>
#include <cstring>
#include <sstream>

#include "runtime/autograd.h"
#include "runtime/grad_mode.h"
#include "runtime/ops.h"
#include "runtime/ops/op_util.h"

namespace lockstep {
namespace {

// x in a new shape, in the graph only under grad mode (torch: a view made under no_grad does not
// require grad). A channels_last x is first copied to NCHW by the recorded contiguous(x), so the
// values come out in the logical order (torch's reshape copies a non-viewable tensor likewise).
Tensor reshaped(const Tensor& x, Shape shape) {
  const Tensor c = contiguous(x);
  return grad_enabled() ? c.reshape(std::move(shape)) : c.detach().reshape(std::move(shape));
}

// x in `format`; under grad mode a node whose backward hands the gradient back in x's format.
Tensor convert(const char* op, const Tensor& x, MemoryFormat format) {
  ops_detail::check_input(op, x);
  if (x.memory_format() == format) return x;
  Tensor y = x.detach().to_format(format);
  const MemoryFormat in_format = x.memory_format();
  return record(op, y, {x}, [in_format](const Tensor& g) -> std::vector<Tensor> { return {g.to_format(in_format)}; });
}

Tensor reshape_as(const char* op, const Tensor& x, Shape shape) {
  ops_detail::check_input(op, x);
  int infer = -1;
  int64_t known = 1;
  bool ok = true;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1 && infer < 0) {
      infer = static_cast<int>(i);
    } else if (shape[i] < 0 || __builtin_mul_overflow(known, shape[i], &known)) {
      ok = false;  // a second -1, another negative size, or an overflow
    }
  }
  if (ok && infer >= 0) ok = known != 0 && x.numel() % known == 0;  // as torch: -1 next to a 0 is ambiguous
  if (ok) ok = (infer >= 0 ? x.numel() / known * known : known) == x.numel();
  LOCKSTEP_FAIL_IF(!ok) << op << ": cannot reshape " << shape_str(x.shape()) << " (" << x.numel()
                        << " elements) to " << shape_str(shape);
  return reshaped(x, std::move(shape));  // keeps grad_fn under grad mode
}

}  // namespace

Tensor contiguous(const Tensor& x) { return convert("contiguous", x, MemoryFormat::kContiguous); }

Tensor to_channels_last(const Tensor& x) {
  ops_detail::check_input("to_channels_last", x);
  LOCKSTEP_FAIL_IF(x.ndim() != 4) << "to_channels_last: expected a 4-D tensor (N, C, H, W), got shape "
                                  << shape_str(x.shape());
  return convert("to_channels_last", x, MemoryFormat::kChannelsLast);
}

Tensor reshape(const Tensor& x, Shape shape) { return reshape_as("reshape", x, std::move(shape)); }
Tensor view(const Tensor& x, Shape shape) { return reshape_as("view", x, std::move(shape)); }

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  ops_detail::check_input("flatten", x);
  if (x.ndim() == 0) return reshaped(x, {1});
  const int64_t s = ops_detail::wrap_dim("flatten", start_dim, x.shape());
  const int64_t e = ops_detail::wrap_dim("flatten", end_dim, x.shape());
  LOCKSTEP_FAIL_IF(s > e) << "flatten: start_dim " << start_dim << " comes after end_dim " << end_dim
                          << " for shape " << shape_str(x.shape());
  Shape out(x.shape().begin(), x.shape().begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= x.shape()[d];
  out.push_back(merged);
  out.insert(out.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshaped(x, std::move(out));
}

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim) {
  LOCKSTEP_FAIL_IF(tensors.empty()) << "cat: expected a non-empty list of tensors";
  for (const Tensor& t : tensors) ops_detail::check_input("cat", t);
  if (std::any_of(tensors.begin(), tensors.end(), [](const Tensor& t) { return t.is_channels_last(); })) {
    std::vector<Tensor> nchw;  // read positionally below (Note [memory format])
    for (const Tensor& t : tensors) nchw.push_back(contiguous(t));
    return cat(nchw, dim);
  }
  const Shape& first = tensors[0].shape();
  LOCKSTEP_FAIL_IF(first.empty()) << "cat: zero-dimensional tensor (shape ()) cannot be concatenated";
  const int64_t d = ops_detail::wrap_dim("cat", dim, first);
  Shape out_shape = first;
  out_shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Shape& s = tensors[i].shape();
    bool fits = s.size() == first.size();
    for (size_t j = 0; fits && j < s.size(); ++j) fits = static_cast<int64_t>(j) == d || s[j] == first[j];
    LOCKSTEP_FAIL_IF(!fits) << "cat: tensor " << i << " has shape " << shape_str(s) << ", tensor 0 has "
                            << shape_str(first) << "; all sizes but dim " << dim << " must match";
    out_shape[d] += s[d];
  }
  // (outer, size_i * inner) blocks: each input's rows interleave along the outer dims.
  int64_t outer = 1, inner = 1;
  for (int64_t j = 0; j < d; ++j) outer *= first[j];
  for (size_t j = d + 1; j < first.size(); ++j) inner *= first[j];
  Tensor out = Tensor::empty(out_shape);
  const int64_t row = out_shape[d] * inner;
  std::vector<int64_t> offsets;  // each input's offset within an output row
  int64_t off = 0;
  for (const Tensor& t : tensors) {
    offsets.push_back(off);
    const int64_t chunk = t.shape()[d] * inner;
    for (int64_t o = 0; o < outer; ++o)
      std::memcpy(out.data() + o * row + off, t.data() + o * chunk, static_cast<size_t>(chunk) * sizeof(float));
    off += t.shape()[d] * inner;
  }
  if (!should_record(std::span<const Tensor>(tensors))) return out;

  std::vector<Shape> shapes;
  std::vector<bool> need;
  for (const Tensor& t : tensors) {
    shapes.push_back(t.shape());
    need.push_back(t.requires_grad());
  }
  return record("cat", out, std::span<const Tensor>(tensors),
                [=](const Tensor& g) -> std::vector<Tensor> {
                  std::vector<Tensor> grads(shapes.size());
                  for (size_t i = 0; i < shapes.size(); ++i) {
                    if (!need[i]) continue;
                    grads[i] = Tensor::empty(shapes[i]);
                    const int64_t chunk = shapes[i][d] * inner;
                    for (int64_t o = 0; o < outer; ++o)
                      std::memcpy(grads[i].data() + o * chunk, g.data() + o * row + offsets[i],
                                  static_cast<size_t>(chunk) * sizeof(float));
                  }
                  return grads;
                });
}

}  // namespace lockstep
