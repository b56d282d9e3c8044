// Gradient clipping, as torch.nn.utils.clip_grad_norm_ and clip_grad_value_: applied to the
// averaged gradients before the optimizer step, so every data-parallel rank clips alike.
#pragma once

#include <span>

#include "runtime/parameter.h"

namespace lockstep {

// The total norm of all gradients together, as if concatenated into one vector: norm_type 2 is
// sqrt(sum g^2); infinity is max |g|; any p >= 1 is (sum |g|^p)^(1/p). Accumulated in double.
// NaN when a gradient holds NaN, infinity when one is infinite.
double total_grad_norm(std::span<Parameter* const> params, double norm_type = 2.0);

// torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type) (torch 1.13): scales every gradient
// by min(1, max_norm / (total_norm + 1e-6)) and returns total_norm, the norm BEFORE clipping.
// max_norm > 0; norm_type >= 1 or infinity. Gradients left as they are when total_norm is not finite.
double clip_grad_norm(std::span<Parameter* const> params, double max_norm, double norm_type = 2.0);

// torch.nn.utils.clip_grad_value_(params, clip_value): clamps every gradient element into
// [-clip_value, clip_value]; clip_value > 0. NaN stays NaN.
void clip_grad_value(std::span<Parameter* const> params, double clip_value);

}  // namespace lockstep
