// `lockstep trace-merge RUN_DIR`: joins RUN_DIR/trace/rank-N.json into RUN_DIR/trace.json
// (launcher/trace_merge.h), for workers started without `lockstep launch` (mpirun or srun running
// `lockstep worker` against a `lockstep coordinator`); launch and `lockstep train` merge by themselves.
#include <cstdio>
#include <filesystem>
#include <string>

#include "launcher/cli.h"
#include "launcher/commands/commands.h"
#include "launcher/trace_merge.h"
#include "runtime/check.h"

namespace lockstep::commands {
namespace {

constexpr const char* kUsage = "lockstep trace-merge RUN_DIR   (RUN_DIR/trace/rank-N.json -> RUN_DIR/trace.json)";

int trace_merge_main(int argc, char** argv) {
  std::string run_dir;
  cli::CommandLine cl(std::string("usage: ") + kUsage + "\n", std::string("; usage: ") + kUsage);
  cl.positional("run_dir", run_dir);
  if (!cl.parse(argc, argv)) return 0;  // --help
  LOCKSTEP_FAIL_IF(run_dir.empty()) << "no run directory given; usage: " << kUsage;
  std::error_code ec;
  LOCKSTEP_FAIL_IF(!std::filesystem::exists(run_dir, ec)) << "RUN_DIR " << run_dir << ": no such directory";
  LOCKSTEP_FAIL_IF(!std::filesystem::is_directory(run_dir, ec)) << "RUN_DIR " << run_dir << ": not a directory";
  const TraceMergeResult m = merge_trace(run_dir);
  std::printf("timeline of %zu rank%s (%lld events) in %s\n", m.ranks.size(), m.ranks.size() == 1 ? "" : "s",
              static_cast<long long>(m.events), m.path.c_str());
  for (const std::string& w : merge_warnings(m)) std::fprintf(stderr, "lockstep trace-merge: warning: %s\n", w.c_str());
  if (m.dropped > 0) std::printf("%lld spans were dropped past trace.max_events\n", static_cast<long long>(m.dropped));
  return 0;
}

const Registrar reg("trace-merge", kUsage, &trace_merge_main);

}  // namespace
}  // namespace lockstep::commands
