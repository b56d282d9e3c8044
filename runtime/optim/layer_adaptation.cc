// Trust-ratio helpers for LARS and LAMB; the exclusion rule is Note [layer adaptation exclusions].
#include "runtime/optim/layer_adaptation.h"

#include <cmath>

#include "runtime/check.h"

namespace lockstep {

std::vector<bool> one_dim_parameters(const std::vector<Parameter*>& params) {
  std::vector<bool> out;
  for (const Parameter* p : params) out.push_back(p->value.ndim() <= 1);
  return out;
}

std::vector<bool> adaptation_exclusions(const char* rule, const std::vector<Parameter*>& params,
                                        std::vector<bool> exclude) {
  if (exclude.empty()) return one_dim_parameters(params);
  LOCKSTEP_FAIL_IF(exclude.size() != params.size())
      << rule << ": exclusion mask has " << exclude.size() << " entries for " << params.size() << " parameters";
  return exclude;
}

double l2_norm(const float* x, int64_t n) {
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += double(x[j]) * double(x[j]);
  return std::sqrt(sum);
}

double trust_ratio(double numerator, double denominator) {
  if (numerator == 0 || denominator == 0) return 1;
  const double r = numerator / denominator;
  return std::isfinite(r) ? r : 1;
}

}  // namespace lockstep
