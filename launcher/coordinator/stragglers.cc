// Ranks whose compute time per step stays above the others' (see stragglers.h).
#include "launcher/coordinator/stragglers.h"

#include <algorithm>
#include <cstdio>

namespace lockstep {

std::vector<proto::Straggler> find_stragglers(const std::vector<const proto::RankStatus*>& ranks,
                                              const StragglerRule& rule) {
  std::vector<const proto::RankStatus*> full;
  std::vector<double> compute;
  for (const proto::RankStatus* r : ranks)
    if (r->metrics().window_steps() >= rule.window_steps) {
      full.push_back(r);
      compute.push_back(r->metrics().compute_median_s());
    }
  std::vector<proto::Straggler> out;
  if (full.size() < 2) return out;
  const size_t mid = (compute.size() - 1) / 2;
  std::nth_element(compute.begin(), compute.begin() + static_cast<std::ptrdiff_t>(mid), compute.end());
  const double median = compute[mid];
  for (const proto::RankStatus* r : full) {
    const double c = r->metrics().compute_median_s();
    if (c > rule.factor * median && c - median >= rule.min_excess_s) {
      proto::Straggler& s = out.emplace_back();
      s.set_rank(r->rank());
      s.set_host(r->host());
      s.set_compute_s(c);
      s.set_median_compute_s(median);
      s.set_comm_exposed_s(r->metrics().comm_exposed_median_s());
      s.set_window_steps(r->metrics().window_steps());
    }
  }
  std::sort(out.begin(), out.end(), [](const proto::Straggler& a, const proto::Straggler& b) {
    return a.compute_s() != b.compute_s() ? a.compute_s() > b.compute_s() : a.rank() < b.rank();
  });
  return out;
}

std::string straggler_text(const proto::Straggler& s) {
  char buf[320];
  const double ratio = s.median_compute_s() > 0 ? s.compute_s() / s.median_compute_s() : 0;
  std::snprintf(buf, sizeof buf, "straggler: rank %d (host %s): compute %.1f ms/step over %d steps, ", s.rank(),
                s.host().c_str(), 1000 * s.compute_s(), s.window_steps());
  std::string out = buf;
  if (ratio > 0) std::snprintf(buf, sizeof buf, "%.1fx the median rank's %.1f ms", ratio, 1000 * s.median_compute_s());
  else std::snprintf(buf, sizeof buf, "the median rank's is %.1f ms", 1000 * s.median_compute_s());
  return out + buf;
}

}  // namespace lockstep
