// Sliding-window and per-epoch step-time medians of one rank (see step_times.h).
#include "launcher/worker/step_times.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "runtime/check.h"

namespace lockstep {
namespace {

// The lower middle element (the median for an odd count); 0 for none.
double median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = (v.size() - 1) / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  return v[mid];
}

}  // namespace

StepTimes::StepTimes(int window_steps) : window_(static_cast<size_t>(std::max(1, window_steps))) {}

void StepTimes::add(double step_s, double comm_s) {
  step_s = std::max(0.0, step_s);
  const Step s{step_s, std::clamp(comm_s, 0.0, step_s)};
  recent_.push_back(s);
  while (recent_.size() > window_) recent_.pop_front();
  epoch_.push_back(s);
}

void StepTimes::begin_epoch() { epoch_.clear(); }

StepTimes::Medians StepTimes::medians(const std::vector<Step>& steps) {
  std::vector<double> step, comm, compute;
  for (const Step& s : steps) {
    step.push_back(s.step_s);
    comm.push_back(s.comm_s);
    compute.push_back(s.step_s - s.comm_s);
  }
  return {median(step), median(comm), median(compute), static_cast<int>(steps.size())};
}

StepTimes::Medians StepTimes::window() const { return medians({recent_.begin(), recent_.end()}); }
StepTimes::Medians StepTimes::epoch() const { return medians(epoch_); }

void StepTimes::publish(proto::StepMetrics& m) const {
  const Medians w = window();
  m.set_step_time_median_s(w.step_s);
  m.set_comm_exposed_median_s(w.comm_s);
  m.set_compute_median_s(w.compute_s);
  m.set_window_steps(w.steps);
}

double test_step_delay_s(int rank) {
  const char* v = std::getenv("LOCKSTEP_TEST_STEP_DELAY");
  if (!v || !*v) return 0;
  const std::string s = v;
  char* end = nullptr;
  const long r = std::strtol(s.c_str(), &end, 10);
  const bool colon = end && *end == ':' && end != s.c_str();
  char* end2 = nullptr;
  const double seconds = colon ? std::strtod(end + 1, &end2) : -1;
  LOCKSTEP_FAIL_IF(!colon || !end2 || *end2 != '\0' || end2 == end + 1 || !(seconds >= 0 && seconds <= 60))
      << "LOCKSTEP_TEST_STEP_DELAY=" << s << ": expected RANK:SECONDS with SECONDS in [0, 60], e.g. 1:0.05";
  return r == rank ? seconds : 0;
}

uint64_t test_terminate_at_step() {
  const char* v = std::getenv("LOCKSTEP_TEST_TERMINATE_AT");
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long long step = std::strtoll(v, &end, 10);
  LOCKSTEP_FAIL_IF(!end || *end != '\0' || step < 1)
      << "LOCKSTEP_TEST_TERMINATE_AT=" << v << ": expected an optimizer step >= 1";
  return static_cast<uint64_t>(step);
}

}  // namespace lockstep
