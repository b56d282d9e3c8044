// A launch's timeline files: the previous trace.json kept on a resume, the merge and its missing ranks.
#include "launcher/launch/trace_outcome.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <system_error>
#include <vector>

#include "launcher/trace_merge.h"
#include "launcher/trace_setup.h"

namespace lockstep {

namespace fs = std::filesystem;

void keep_previous_trace(const std::string& run_dir) {
  const fs::path old = fs::path(run_dir) / "trace.json";
  std::error_code ec;
  if (!fs::is_regular_file(old, ec)) return;
  for (int n = 1; n < 10000; ++n) {
    const fs::path kept = fs::path(run_dir) / ("trace." + std::to_string(n) + ".json");
    if (fs::exists(kept, ec)) continue;
    fs::rename(old, kept, ec);
    if (ec)
      std::fprintf(stderr, "lockstep launch: warning: cannot keep the earlier timeline %s as %s: %s; it will be replaced\n",
                   old.c_str(), kept.c_str(), ec.message().c_str());
    else
      std::fprintf(stderr, "lockstep launch: the earlier attempt's timeline is now %s\n", kept.c_str());
    return;
  }
}

void report_merged_trace(const std::string& run_dir, int world) {
  std::error_code ec;
  bool any = false;
  if (fs::is_directory(trace_dir(run_dir), ec))
    for (const auto& e : fs::directory_iterator(trace_dir(run_dir), ec)) {
      const std::string n = e.path().filename().string();
      any = any || (n.rfind("rank-", 0) == 0 && n.size() > 10 && n.substr(n.size() - 5) == ".json");
    }
  if (!any) {
    std::fprintf(stderr,
                 "lockstep launch: no timeline: no rank wrote %s/rank-N.json (the job ended before the trace range, "
                 "or every rank was killed)\n",
                 trace_dir(run_dir).c_str());
    return;
  }
  const TraceMergeResult m = merge_trace(run_dir, world);
  for (const std::string& w : merge_warnings(m)) std::fprintf(stderr, "lockstep launch: warning: %s\n", w.c_str());
  std::fprintf(stderr, "lockstep launch: timeline of %zu rank%s in %s (open it in ui.perfetto.dev or chrome://tracing)%s\n",
               m.ranks.size(), m.ranks.size() == 1 ? "" : "s", m.path.c_str(),
               m.dropped > 0 ? ("; " + std::to_string(m.dropped) + " spans dropped past trace.max_events").c_str() : "");
}

}  // namespace lockstep
