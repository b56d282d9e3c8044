// Text for `lockstep ctl status` and `--wait` (see status_format.h).
#include "launcher/coordinator/status_format.h"

#include <algorithm>
#include <cstdio>

#include "launcher/coordinator/stragglers.h"

namespace lockstep::status_format {
namespace {

template <typename... A>
std::string format(const char* f, A... a) {
  char buf[512];
  std::snprintf(buf, sizeof buf, f, a...);
  return buf;
}

}  // namespace

std::string report(const proto::PhaseReport& r) {
  std::string out = format("phase %llu %s", static_cast<unsigned long long>(r.phase_id()),
                           proto::PhaseKind_Name(r.kind()).c_str());
  if (r.directive_id()) out += format(" (directive %llu)", static_cast<unsigned long long>(r.directive_id()));
  out += format(" at epoch %lld step %lld", static_cast<long long>(r.epoch()), static_cast<long long>(r.step()));
  if (r.kind() == proto::EVAL) out += format(": accuracy %.4f, loss %.4f", r.test_accuracy(), r.test_loss());
  if (!r.checkpoint().empty()) out += ": checkpoint " + r.checkpoint();
  if (r.finished()) out += " (job complete)";
  return out;
}

double eta_seconds(const proto::JobStatus& s) {
  for (const proto::RankStatus& r : s.ranks()) {
    if (r.rank() != 0) continue;
    const int64_t total = r.metrics().steps_per_epoch() * s.epochs();
    if (r.steps_per_sec() <= 0 || total <= 0) return -1;
    return static_cast<double>(std::max<int64_t>(0, total - r.metrics().step())) / r.steps_per_sec();
  }
  return -1;
}

std::string status(const proto::JobStatus& s) {
  std::string out = format("job %s: phase %s (phase id %llu), attempt %u, %d/%d ranks registered, %lld epochs%s%s\n",
                           s.job().c_str(), proto::PhaseKind_Name(s.phase()).c_str(),
                           static_cast<unsigned long long>(s.phase_id()), s.attempt(), s.registered(),
                           s.world_size(), static_cast<long long>(s.epochs()), s.paused() ? ", paused" : "",
                           s.finished() ? ", finished" : "");
  if (s.ranks_size() > 0) {
    out += format("%5s %-16s %8s %6s %9s %9s %10s %9s\n", "rank", "host", "pid", "epoch", "step", "loss",
                  "samples/s", "since_hb");
    for (const proto::RankStatus& r : s.ranks()) {
      const proto::StepMetrics& m = r.metrics();
      out += format("%5d %-16s %8lld %6lld %9lld %9.4f %10.0f %8.1fs\n", r.rank(), r.host().c_str(),
                    static_cast<long long>(r.pid()), static_cast<long long>(m.epoch()),
                    static_cast<long long>(m.step()), m.loss(), r.samples_per_sec(), r.since_heartbeat_s());
    }
  }
  for (const proto::Straggler& x : s.stragglers()) out += straggler_text(x) + "\n";
  for (const proto::Directive& d : s.pending())
    out += format("pending: directive %llu %s\n", static_cast<unsigned long long>(d.id()),
                  proto::PhaseKind_Name(d.kind()).c_str());
  bool evaluated = false;
  for (const proto::PhaseReport& r : s.history()) evaluated = evaluated || r.kind() == proto::EVAL;
  if (evaluated) out += format("last eval: accuracy %.4f, loss %.4f\n", s.last_test_accuracy(), s.last_test_loss());
  if (!s.last_checkpoint().empty()) out += "last checkpoint: " + s.last_checkpoint() + "\n";
  if (s.history_size() > 0) {
    out += "history:\n";
    for (const proto::PhaseReport& r : s.history()) out += "  " + report(r) + "\n";
  }
  return out;
}

}  // namespace lockstep::status_format
