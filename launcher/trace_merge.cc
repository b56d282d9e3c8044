// Merging the ranks' trace files with nlohmann::json.
#include "launcher/trace_merge.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "launcher/json_error.h"
#include "launcher/trace_setup.h"
#include "runtime/checkpoint/user_file.h"
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

std::string rank_list(const std::vector<int>& ranks) {
  std::string s = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
  return s;
}

std::vector<std::string> merge_warnings(const TraceMergeResult& m) {
  std::vector<std::string> w;
  if (!m.missing.empty())
    w.push_back("the timeline lacks " + rank_list(m.missing) + " of the job's " + std::to_string(m.world_size) +
                " (no trace/rank-N.json: the rank failed, or could not write it)");
  if (!m.ignored.empty())
    w.push_back("left out trace files of " + rank_list(m.ignored) + ": the job had " + std::to_string(m.world_size) +
                " rank" + (m.world_size == 1 ? "" : "s") + " (files of an earlier, larger job)");
  return w;
}

TraceMergeResult merge_trace_files(const std::string& trace_dir, const std::string& out_path, int world_size) {
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
  std::map<int, nlohmann::json> docs;
  int rank0_size = 0, max_size = 0;
  for (const auto& [rank, path] : files) {
    checkpoint_io::check_input_file("", path.string());
    std::ifstream in(path, std::ios::binary);
    LOCKSTEP_FAIL_IF(!in) << path.string() << ": cannot read it";
    std::ostringstream text;
    text << in.rdbuf();
    LOCKSTEP_FAIL_IF(in.bad()) << path.string() << ": cannot read it";
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::exception& e) {
      throw Error(path.string() + ": " + json_error_text(e, text.str()) + " (a rank's trace file; was it cut off?)");
    }
    LOCKSTEP_FAIL_IF(!doc.is_object() || !doc.contains("traceEvents") || !doc["traceEvents"].is_array())
        << path.string() << ": not a trace-event file (no \"traceEvents\" array)";
    if (doc.contains("otherData") && doc["otherData"].is_object() && doc["otherData"].contains("world_size") &&
        doc["otherData"]["world_size"].is_number_integer()) {
      const int n = doc["otherData"]["world_size"].get<int>();
      if (rank == 0) rank0_size = n;
      max_size = std::max(max_size, n);
    }
    docs[rank] = std::move(doc);
  }
  out.world_size = world_size > 0 ? world_size : rank0_size > 0 ? rank0_size : max_size;
  nlohmann::json events = nlohmann::json::array();
  for (auto& [rank, doc] : docs) {
    const fs::path& path = files[rank];
    if (out.world_size > 0 && rank >= out.world_size) {
      out.ignored.push_back(rank);
      continue;
    }
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
  for (int r = 0; r < out.world_size; ++r)
    if (!docs.count(r)) out.missing.push_back(r);
  LOCKSTEP_FAIL_IF(out.ranks.empty()) << trace_dir << ": no rank file of the job's " << out.world_size
                                      << " ranks to merge (only " << rank_list(out.ignored) << ")";
  out.events = static_cast<int64_t>(events.size());
  nlohmann::json merged = {{"traceEvents", std::move(events)},
                           {"displayTimeUnit", "ms"},
                           {"otherData",
                            {{"ranks", out.ranks},
                             {"dropped_events", out.dropped},
                             {"clock", "CLOCK_REALTIME microseconds since the Unix epoch"}}}};
  // trace.json is the run's own output; still never a device or a FIFO (Note [user-named outputs]).
  const std::string kind = checkpoint_io::non_regular_kind(out_path);
  LOCKSTEP_FAIL_IF(!kind.empty()) << out_path << ": is " << kind << "; cannot write the timeline there";
  const std::string tmp = out_path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    LOCKSTEP_FAIL_IF(!f) << out_path << ": cannot write it: " << std::strerror(errno);
    f << merged.dump() << "\n";
    f.flush();
    if (!f) fs::remove(tmp, ec);
    LOCKSTEP_FAIL_IF(!f) << out_path << ": cannot write it (disk full?)";
  }
  fs::rename(tmp, out_path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
  }
  LOCKSTEP_FAIL_IF(ec) << out_path << ": cannot write it: " << ec.message();
  return out;
}

TraceMergeResult merge_trace(const std::string& run_dir, int world_size) {
  return merge_trace_files(trace_dir(run_dir), (run_dir.empty() ? std::string(".") : run_dir) + "/trace.json",
                           world_size);
}

}  // namespace lockstep
