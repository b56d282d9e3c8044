// --trace parsing and the per-rank recorder of a job.
#include "launcher/trace_setup.h"

#include <cstdint>
#include <filesystem>
#include <system_error>

#include "launcher/cli_number.h"
#include "launcher/job_file.h"
#include "launcher/quoted.h"
#include "runtime/check.h"

namespace lockstep {

void apply_trace_option(proto::JobSpec& job, const std::string& value) {
  const size_t colon = value.find(':');
  const int64_t max = job_limits::kMaxSteps;
  int64_t first = 1, last = 0;
  try {
    if (colon == std::string::npos) {
      last = cli::whole_number("--trace", value, 1, max);
    } else {
      first = cli::whole_number("--trace", value.substr(0, colon), 1, max);
      last = cli::whole_number("--trace", value.substr(colon + 1), 1, max);
    }
  } catch (const Error&) {
    throw Error("--trace: expected N (optimizer steps 1..N) or A:B (steps A..B), whole numbers in [1, " +
                std::to_string(max) + "], got " + quoted(value));
  }
  if (colon != std::string::npos) {
    LOCKSTEP_FAIL_IF(last < first) << "--trace: " << value << ": the range ends (" << last << ") before it starts ("
                                   << first << "); give A:B with A <= B";
  }
  LOCKSTEP_FAIL_IF(last - first >= job_limits::kMaxTraceSteps)
      << "--trace: " << value << " holds " << (last - first + 1) << " steps; at most " << job_limits::kMaxTraceSteps
      << " are traced at once";
  job.mutable_trace()->set_first_step(first);
  job.mutable_trace()->set_last_step(last);
}

std::string trace_dir(const std::string& run_dir) { return (run_dir.empty() ? std::string(".") : run_dir) + "/trace"; }

std::unique_ptr<TraceRecorder> make_trace_recorder(const proto::JobSpec& job, int rank, const std::string& run_dir,
                                                   int world_size) {
  const proto::TraceSpec& t = job.trace();
  if (t.last_step() <= 0) return nullptr;
  TraceOptions o;
  o.rank = rank;
  o.first_step = static_cast<uint64_t>(t.has_first_step() ? t.first_step() : 1);
  o.last_step = static_cast<uint64_t>(t.last_step());
  if (t.has_max_events()) o.max_events = static_cast<size_t>(t.max_events());
  o.world_size = world_size;
  o.path = trace_dir(run_dir) + "/rank-" + std::to_string(rank) + ".json";
  std::error_code ec;
  std::filesystem::remove(o.path, ec);  // an earlier job's; a failure shows when the new file is written
  return std::make_unique<TraceRecorder>(std::move(o));
}

std::string trace_range_warning(uint64_t first, uint64_t last, uint64_t from, uint64_t total) {
  const std::string range = "trace range " + std::to_string(first) + ":" + std::to_string(last);
  const std::string steps = from > total ? "steps: none (the job is already complete)"
                                         : "steps " + std::to_string(from) + ".." + std::to_string(total);
  if (last < from || first > total) return range + " lies outside this run's " + steps + "; no timeline will be written";
  if (first < from || last > total) return range + " reaches past this run's " + steps + "; only those are traced";
  return "";
}

}  // namespace lockstep
