// Merging the ranks' trace files with nlohmann::json.
#include "launcher/trace_merge.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "launcher/trace_setup.h"
#include "runtime/check.h"

namespace lockstep {

namespace fs = std::filesystem;

namespace {

// "rank-12.json" -> 12; -1 for any other name.
int rank_of_file(const std::string& name) {
  const std::string pre = "rank-", post = ".json";
  if (name.size() <= pre.size() + post.size() || name.rfind(pre, 0) != 0 ||
      name.compare(name.size() - post.size(), post.size(), post) != 0)
    return -1;
  const std::string digits = name.substr(pre.size(), name.size() - pre.size() - post.size());
  if (digits.empty() || digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), ::isdigit)) return -1;
  return std::stoi(digits);
}

}  // namespace

TraceMergeResult merge_trace_files(const std::string& trace_dir, const std::string& out_path) {
  std::error_code ec;
  LOCKSTEP_FAIL_IF(!fs::is_directory(trace_dir, ec)) << trace_dir << ": no such directory (no rank wrote a trace: "
                                                        "was the job run with --trace or a trace { } field?)";
  std::map<int, fs::path> files;
  for (const auto& e : fs::directory_iterator(trace_dir, ec))
    if (const int r = rank_of_file(e.path().filename().string()); r >= 0 && e.is_regular_file()) files[r] = e.path();
  LOCKSTEP_FAIL_IF(ec) << trace_dir << ": cannot list: " << ec.message();
  LOCKSTEP_FAIL_IF(files.empty()) << trace_dir << ": no rank-N.json file to merge";

  TraceMergeResult out;
  out.path = out_path;
  nlohmann::json events = nlohmann::json::array();
  for (const auto& [rank, path] : files) {
    std::ifstream in(path, std::ios::binary);
    LOCKSTEP_FAIL_IF(!in) << path.string() << ": cannot read";
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(path.string() + ": not JSON: " + e.what());
    }
    LOCKSTEP_FAIL_IF(!doc.is_object() || !doc.contains("traceEvents") || !doc["traceEvents"].is_array())
        << path.string() << ": not a trace-event file (no \"traceEvents\" array)";
    for (auto& ev : doc["traceEvents"]) {
      LOCKSTEP_FAIL_IF(!ev.is_object() || !ev.contains("pid") || ev["pid"] != rank)
          << path.string() << ": an event of another process than rank " << rank << ": " << ev.dump().substr(0, 200);
      events.push_back(std::move(ev));
    }
    if (doc.contains("otherData") && doc["otherData"].is_object()) {
      const auto& od = doc["otherData"];
      if (od.contains("dropped_events") && od["dropped_events"].is_number_integer())
        out.dropped += od["dropped_events"].get<int64_t>();
    }
    out.ranks.push_back(rank);
  }
  out.events = static_cast<int64_t>(events.size());
  nlohmann::json merged = {{"traceEvents", std::move(events)},
                           {"displayTimeUnit", "ms"},
                           {"otherData",
                            {{"ranks", out.ranks},
                             {"dropped_events", out.dropped},
                             {"clock", "CLOCK_REALTIME microseconds since the Unix epoch"}}}};
  const std::string tmp = out_path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    LOCKSTEP_FAIL_IF(!f) << out_path << ": cannot write " << tmp;
    f << merged.dump() << "\n";
    f.flush();
    LOCKSTEP_FAIL_IF(!f) << out_path << ": writing " << tmp << " failed";
  }
  fs::rename(tmp, out_path, ec);
  if (ec) fs::remove(tmp);
  LOCKSTEP_FAIL_IF(ec) << out_path << ": cannot rename " << tmp << " into place: " << ec.message();
  return out;
}

TraceMergeResult merge_trace(const std::string& run_dir) {
  return merge_trace_files(trace_dir(run_dir), (run_dir.empty() ? std::string(".") : run_dir) + "/trace.json");
}

}  // namespace lockstep
