// Layer-wise adaptation shared by LARS and LAMB: the per-parameter trust ratio ||w|| / ||u||, and
// which parameters it is not applied to.
//
// Note [layer adaptation exclusions]: taken literally, LARS and LAMB scale a parameter's step by
// its norm, so a parameter whose norm is 0 (a zero-initialised residual BatchNorm gamma, a zeroed
// layer) never moves. Following common practice (SimCLR's and the BERT LAMB reference
// implementations, NVIDIA's LARC), an EXCLUDED parameter gets trust ratio 1 and no weight decay:
// it takes the plain momentum-SGD (LARS) or Adam (LAMB) step at the global lr. Excluded are biases
// and BatchNorm/LayerNorm weight and bias; the optimizer is told which by a per-parameter mask, by
// default every parameter with at most one dimension (job_builder.cc builds the mask from the
// module tree, so a LayerNorm over several dims is excluded as well). Any other parameter whose
// norm is 0, or whose trust-ratio denominator is 0, gets trust ratio 1 for that step (weight
// decay still applies, and is 0 on a zero tensor).
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/parameter.h"

namespace lockstep {

// The default mask: true for every parameter with at most one dimension.
std::vector<bool> one_dim_parameters(const std::vector<Parameter*>& params);

// `exclude` as given, or the default mask when it is empty; throws Error naming `rule` when its
// size is not params.size().
std::vector<bool> adaptation_exclusions(const char* rule, const std::vector<Parameter*>& params,
                                        std::vector<bool> exclude);

// Euclidean norm of x[0..n), accumulated in double in index order (deterministic on every rank).
double l2_norm(const float* x, int64_t n);

// numerator / denominator, or 1 when either is 0 (or the quotient is not finite).
double trust_ratio(double numerator, double denominator);

}  // namespace lockstep
