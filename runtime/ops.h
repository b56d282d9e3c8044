// Differentiable ops on CPU tensors, the ones a model's forward composes between its layers
// (residual sums, attention matmuls, concatenations, pooling by mean, activations), with
// PyTorch's names and semantics. They are free functions in namespace lockstep, so a forward reads
// as its PyTorch twin: `relu(y + shortcut(x))`, `mean(x, {2, 3})`.
//
// Every op computes its result eagerly; under grad mode, when some input requires grad, it records
// one autograd node (runtime/autograd.h) whose backward returns the gradient of each input that
// requires grad. Otherwise nothing is recorded and nothing is saved for backward. A recorded op
// saves its inputs or output by reference to their storage (tensors share storage, as torch
// views do): writing into a saved tensor before backward changes the gradient (torch would refuse
// through its version counter; we have none).
//
// Errors (lockstep::Error) are one line naming the op and the shapes: "add: shapes (2, 3) and (4)
// do not broadcast". Inputs must be defined CPU tensors.
//
// Note: lockstep::tanh(const Tensor&) hides std::tanh(float) for unqualified calls inside namespace
// lockstep in files that include this header; write std::tanh (and std::exp, ...) there.
//
// Implementations: runtime/ops/{elementwise,matmul,shape,reduce,activation}.cc.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/tensor.h"

namespace lockstep {

// ---- Elementwise arithmetic with broadcasting (torch.add / torch.sub / torch.mul) ----
// Shapes broadcast as NumPy's and PyTorch's: aligned at the last dim, each pair of sizes equal or
// one of them 1; the output takes the larger. So a one-element tensor (shape () or (1)) acts as a
// scalar, and a per-channel (1, C, 1, 1) applies to (N, C, H, W), (C) to (N, C).
// Backward sums the gradient over the broadcast dims of each input.
// Throws when the shapes do not broadcast: "mul: shapes (2, 3) and (4) do not broadcast".
Tensor add(const Tensor& a, const Tensor& b);  // a + b
Tensor sub(const Tensor& a, const Tensor& b);  // a - b
Tensor mul(const Tensor& a, const Tensor& b);  // a * b
Tensor mul(const Tensor& a, float s);          // a * s, s a constant (torch.mul(a, 2.0))
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, float s);
Tensor operator*(float s, const Tensor& a);

// ---- Matrix product (torch.matmul), through runtime/gemm.h in forward and backward ----
// (M, K) x (K, N) -> (M, N); batched (B, M, K) x (B, K, N) -> (B, M, N); and (B, M, K) x (K, N)
// -> (B, M, N) (b shared by the batch, as torch broadcasts it). Other ranks throw, as do
// mismatched K or B: "matmul: shapes (2, 3) and (4, 5) do not fit (inner sizes 3 and 4)".
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- Memory format (Note [memory format] in runtime/tensor.h) ----
// x.contiguous() and x.to(memory_format=torch.channels_last): x itself when already in that
// format, else a copy whose storage is (N, C, H, W) or (N, H, W, C); the logical values and shape
// are x's. Recorded: backward converts the gradient back to x's format. to_channels_last throws
// unless x is 4-D: "to_channels_last: expected a 4-D tensor (N, C, H, W), got shape (2, 3)".
Tensor contiguous(const Tensor& x);
Tensor to_channels_last(const Tensor& x);

// ---- Shape ----
// The same values in another shape (torch.reshape / Tensor.view, which are one here). One dim may
// be -1, inferred. A contiguous x shares its storage and keeps its grad_fn: gradients travel as
// contiguous values, so no node is needed (under NoGradGuard the result is out of the graph, as
// torch's); a channels_last x goes through contiguous(x) first, a copy, so the values are in the
// logical NCHW order. Throws when the element counts differ: "reshape: cannot reshape
// (2, 3) (6 elements) to (4, -1)".
Tensor reshape(const Tensor& x, Shape shape);
Tensor view(const Tensor& x, Shape shape);
// Dims start_dim..end_dim merged into one (torch.flatten), negative dims counting from the end.
// Note the default start_dim is 1, as nn.Flatten's (keep the batch dim), not torch.flatten's 0:
// flatten(x) of (N, C, H, W) is (N, C*H*W). A 0-d x becomes (1) as in torch.
Tensor flatten(const Tensor& x, int64_t start_dim = 1, int64_t end_dim = -1);

// Concatenation along dim (torch.cat), into a contiguous tensor: every tensor of the same rank and the same sizes except at
// dim, which may be negative. Backward hands each input its slice of the gradient.
// Throws on an empty list, a 0-d tensor, or a rank or size mismatch: "cat: tensor 1 has shape
// (4, 5), tensor 0 has (2, 3); all sizes but dim 1 must match".
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);

// ---- Reductions (torch.sum / torch.mean) ----
// Over every element: a 0-d tensor (shape ()), which backward() accepts as a scalar loss.
Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
// Over `dims` (negative allowed, each at most once), which are kept as size 1 when keepdim:
// (N, C, H, W) over {2, 3} -> (N, C), or (N, C, 1, 1) with keepdim. An empty dims reduces over
// every dim, as torch 1.13 does for dim=[]. Sums accumulate in double. mean over zero elements is
// NaN, as in torch. Throws on a dim out of range or repeated: "sum: dim 4 out of range for
// shape (2, 3)".
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);

// ---- Activations, elementwise, any shape; NaN in, NaN out ----
// torch.relu: max(x, 0), NaN stays NaN; backward passes dy where y > 0 or y is NaN.
Tensor relu(const Tensor& x);
// relu(a + b) in one pass over memory, with one output buffer and one saved tensor (the output):
// what torch.fx's fuser makes of a residual add followed by relu (torch._VF._add_relu). Values and
// gradients are bit-identical to relu(add(a, b)): the sum is rounded to float first, and backward
// passes dy to both inputs where the output is > 0 or NaN. a and b of one shape and one memory
// format take the fused path (the output keeps the format); others fall back to relu(add(a, b)),
// broadcasting included. Throws as add does.
Tensor add_relu(const Tensor& a, const Tensor& b);
// torch.nn.functional.leaky_relu: x > 0 ? x : negative_slope * x; backward slope likewise.
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);
// torch.nn.functional.gelu: approximate "none" is x * Phi(x) with the exact (erf) normal CDF;
// "tanh" is 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Other strings throw.
Tensor gelu(const Tensor& x, std::string_view approximate = "none");
// torch.nn.functional.silu: x * sigmoid(x).
Tensor silu(const Tensor& x);
// torch.sigmoid: 1 / (1 + exp(-x)); backward from the output, dy * y * (1 - y).
Tensor sigmoid(const Tensor& x);
// torch.tanh; backward from the output, dy * (1 - y^2).
Tensor tanh(const Tensor& x);

}  // namespace lockstep
