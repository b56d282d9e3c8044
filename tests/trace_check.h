// Reading a timeline back for tests: a check of a parsed file against the Chrome trace-event format
// (the JSON object form: "traceEvents" and "displayTimeUnit"; "X" complete events with ts/dur in
// microseconds; "M" metadata naming processes and threads), written from the format's document,
// not from lockstep's writer; and the complete spans as plain records for the tests' own checks.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lockstep::testing {

inline nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nlohmann::json();
  return nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
}

struct Span {
  std::string name, cat;
  int pid = -1, tid = -1;
  double ts = 0, dur = 0;  // microseconds
  nlohmann::json args;
  double end() const { return ts + dur; }
};

// Every way `doc` departs from the trace-event format, one line each ("" lines never); `ranks` is
// the number of processes expected (pids 0..ranks-1, each named "rank N", with threads "train" and
// "comm").
inline std::vector<std::string> trace_format_errors(const nlohmann::json& doc, int ranks) {
  std::vector<std::string> err;
  if (!doc.is_object()) return {"the file is not a JSON object"};
  if (!doc.contains("traceEvents") || !doc["traceEvents"].is_array()) return {"no traceEvents array"};
  if (!doc.contains("displayTimeUnit") || !doc["displayTimeUnit"].is_string() ||
      (doc["displayTimeUnit"] != "ms" && doc["displayTimeUnit"] != "ns"))
    err.push_back("displayTimeUnit missing or not \"ms\"/\"ns\"");
  std::map<int, std::string> process_names;
  std::map<std::pair<int, int>, std::string> thread_names;
  std::set<std::pair<int, int>> threads_used;
  size_t i = 0;
  for (const auto& e : doc["traceEvents"]) {
    const std::string at = "event " + std::to_string(i++) + " " + e.dump().substr(0, 160) + ": ";
    if (!e.is_object()) {
      err.push_back(at + "not an object");
      continue;
    }
    for (const char* key : {"name", "ph"})
      if (!e.contains(key) || !e[key].is_string()) err.push_back(at + key + " missing or not a string");
    for (const char* key : {"pid", "tid"})
      if (!e.contains(key) || !e[key].is_number_integer()) err.push_back(at + key + " missing or not an integer");
    if (!e.contains("ph") || !e["ph"].is_string() || !e.contains("pid") || !e["pid"].is_number_integer() ||
        !e.contains("tid") || !e["tid"].is_number_integer())
      continue;
    const int pid = e["pid"].get<int>(), tid = e["tid"].get<int>();
    if (pid < 0 || pid >= ranks) err.push_back(at + "pid outside 0.." + std::to_string(ranks - 1));
    const std::string ph = e["ph"];
    if (ph == "X") {
      for (const char* key : {"ts", "dur"})
        if (!e.contains(key) || !e[key].is_number()) err.push_back(at + key + " missing or not a number");
      if (e.contains("dur") && e["dur"].is_number() && e["dur"].get<double>() < 0) err.push_back(at + "negative dur");
      if (e.contains("ts") && e["ts"].is_number() && e["ts"].get<double>() < 0) err.push_back(at + "negative ts");
      if (e.contains("cat") && !e["cat"].is_string()) err.push_back(at + "cat not a string");
      if (e.contains("args") && !e["args"].is_object()) err.push_back(at + "args not an object");
      threads_used.insert({pid, tid});
    } else if (ph == "M") {
      if (!e.contains("args") || !e["args"].is_object()) {
        err.push_back(at + "metadata without args");
        continue;
      }
      const std::string name = e.value("name", "");
      if (name == "process_name" || name == "thread_name") {
        if (!e["args"].contains("name") || !e["args"]["name"].is_string()) {
          err.push_back(at + "args.name missing");
          continue;
        }
        if (name == "process_name") process_names[pid] = e["args"]["name"];
        else thread_names[{pid, tid}] = e["args"]["name"];
      } else if (name != "process_sort_index" && name != "thread_sort_index" && name != "process_labels") {
        err.push_back(at + "unknown metadata " + name);
      }
    } else {
      err.push_back(at + "ph " + ph + " (expected X or M)");
    }
  }
  for (int r = 0; r < ranks; ++r) {
    if (process_names[r] != "rank " + std::to_string(r))
      err.push_back("pid " + std::to_string(r) + ": process_name \"" + process_names[r] + "\", expected \"rank " +
                    std::to_string(r) + "\"");
    std::set<std::string> lanes;
    for (const auto& [key, name] : thread_names)
      if (key.first == r) lanes.insert(name);
    if (!lanes.count("train") || !lanes.count("comm"))
      err.push_back("pid " + std::to_string(r) + ": thread_name metadata for \"train\" and \"comm\" missing");
  }
  for (const auto& t : threads_used)
    if (!thread_names.count(t))
      err.push_back("pid " + std::to_string(t.first) + " tid " + std::to_string(t.second) + " has no thread_name");
  return err;
}

// The X events of `doc` with their thread's name in `tid`'s place: lane(pid, tid) gives "train"/"comm".
inline std::vector<Span> spans_of(const nlohmann::json& doc) {
  std::vector<Span> out;
  for (const auto& e : doc["traceEvents"])
    if (e.value("ph", "") == "X")
      out.push_back({e.value("name", ""), e.value("cat", ""), e.value("pid", -1), e.value("tid", -1),
                     e.value("ts", 0.0), e.value("dur", 0.0), e.contains("args") ? e["args"] : nlohmann::json()});
  return out;
}

// (pid, tid) -> the thread's name.
inline std::map<std::pair<int, int>, std::string> lanes_of(const nlohmann::json& doc) {
  std::map<std::pair<int, int>, std::string> out;
  for (const auto& e : doc["traceEvents"])
    if (e.value("ph", "") == "M" && e.value("name", "") == "thread_name")
      out[{e.value("pid", -1), e.value("tid", -1)}] = e["args"].value("name", "");
  return out;
}

}  // namespace lockstep::testing
