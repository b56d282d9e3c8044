// Reading metrics.jsonl back (see metrics_history.h), with nlohmann/json.
#include "launcher/report/metrics_history.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

#include "launcher/json_error.h"
#include "runtime/check.h"
#include "runtime/checkpoint/user_file.h"

namespace lockstep::report {
namespace {

using nlohmann::json;

constexpr int kMaxLineNotes = 5;  // bad lines named one by one; the rest counted

double number(const json& j, const char* key) {
  const json& v = j.at(key);
  if (!v.is_number()) throw std::invalid_argument(std::string("\"") + key + "\" is not a number");
  return v.get<double>();
}

std::optional<double> optional_number(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;  // absent, or null (not finite)
  return it->get<double>();
}

// A whole number in [lo, hi]: epochs, steps and ranks far outside a run's are damage, not data.
int64_t whole(const json& j, const char* key, int64_t lo, int64_t hi) {
  const json& v = j.at(key);
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) ||
      v.get<int64_t>() < lo || v.get<int64_t>() > hi)
    throw std::invalid_argument(std::string("\"") + key + "\" is not a whole number in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "]");
  return v.get<int64_t>();
}

constexpr int64_t kMaxEpoch = int64_t{1} << 40, kMaxStep = int64_t{1} << 52, kMaxRank = int64_t{1} << 24;

EpochRow epoch_row(const json& j) {
  EpochRow r;
  r.epoch = whole(j, "epoch", 1, kMaxEpoch);
  r.train_loss = number(j, "train_loss");
  // -1: the epoch ended without an eval (launcher/worker/run.cc).
  if (const auto t = optional_number(j, "test_loss"); t && *t >= 0) r.test_loss = t;
  if (const auto a = optional_number(j, "test_accuracy"); a && *a >= 0) r.test_accuracy = a;
  r.samples_per_sec = number(j, "train_samples_per_sec");
  r.lr = number(j, "lr");
  r.grad_norm = optional_number(j, "grad_norm");
  if (auto it = j.find("top_k_accuracy"); it != j.end() && it->is_object())
    for (const auto& [k, v] : it->items())
      if (v.is_number()) r.top_k[std::stoll(k)] = v.get<double>();
  return r;
}

StepRow step_row(const json& j) {
  StepRow r;
  r.epoch = whole(j, "epoch", 1, kMaxEpoch);
  r.step = whole(j, "step", 0, kMaxStep);
  r.loss = number(j, "loss");
  r.samples_per_sec = number(j, "samples_per_sec");
  r.lr = number(j, "lr");
  r.grad_norm = optional_number(j, "grad_norm");
  return r;
}

RankRow rank_row(const json& j) {
  RankRow r;
  r.epoch = whole(j, "epoch", 1, kMaxEpoch);
  r.rank = static_cast<int>(whole(j, "rank", 0, kMaxRank));
  r.steps = whole(j, "steps", 0, kMaxStep);
  r.step_time_s = number(j, "step_time_s");
  r.comm_exposed_s = number(j, "comm_exposed_s");
  r.compute_s = number(j, "compute_s");
  return r;
}

}  // namespace

int MetricsHistory::world_size() const {
  if (ranks.empty()) return 0;
  const int64_t last = ranks.back().epoch;
  std::set<int> seen;
  for (const RankRow& r : ranks)
    if (r.epoch == last) seen.insert(r.rank);
  return static_cast<int>(seen.size());
}

MetricsHistory parse_metrics(const std::string& text, const std::string& name) {
  MetricsHistory h;
  std::map<int64_t, EpochRow> epochs;
  std::map<int64_t, StepRow> steps;
  std::map<std::pair<int64_t, int>, RankRow> ranks;
  int64_t bad = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    const bool last_unterminated = end == std::string::npos;
    const std::string line = text.substr(pos, last_unterminated ? std::string::npos : end - pos);
    pos = last_unterminated ? text.size() : end + 1;
    ++h.lines;
    if (line.empty()) continue;
    std::string why;
    try {
      const json j = json::parse(line);
      if (!j.is_object() || !j.contains("kind") || !j["kind"].is_string()) throw std::invalid_argument("no \"kind\"");
      const std::string kind = j["kind"].get<std::string>();
      if (kind == "epoch") {
        EpochRow r = epoch_row(j);
        epochs[r.epoch] = r;
      } else if (kind == "step") {
        StepRow r = step_row(j);
        steps[r.step] = r;
      } else if (kind == "rank") {
        RankRow r = rank_row(j);
        ranks[{r.epoch, r.rank}] = r;
      } else {
        why = "unknown kind \"" + kind + "\"";
      }
    } catch (const json::exception& e) {
      why = json_error_text(e, line);  // of this one line: "line 1, column 7: ..." -> "column 7: ..."
      if (why.rfind("line 1, ", 0) == 0) why = why.substr(8);
      else if (why.rfind("line 1: ", 0) == 0) why = why.substr(8);
    } catch (const std::exception& e) {
      why = e.what();
    }
    if (why.empty()) continue;
    if (last_unterminated) {
      h.notes.push_back(name + ": the last line (" + std::to_string(line.size()) +
                        " bytes, no newline) is incomplete, as while the run writes it or after a crash; "
                        "left out");
    } else if (++bad <= kMaxLineNotes) {
      h.notes.push_back(name + ": line " + std::to_string(h.lines) + " left out: " + why);
    }
  }
  if (bad > kMaxLineNotes)
    h.notes.push_back(name + ": " + std::to_string(bad - kMaxLineNotes) + " more lines left out");
  for (auto& [e, r] : epochs) h.epochs.push_back(r);
  for (auto& [s, r] : steps) h.steps.push_back(r);
  for (auto& [k, r] : ranks) h.ranks.push_back(r);
  return h;
}

std::optional<MetricsHistory> read_metrics(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::nullopt;
  if (const std::string kind = checkpoint_io::non_regular_kind(path); !kind.empty())
    throw Error("metrics file " + path + ": is " + kind + ", not a regular file; not read");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("metrics file " + path + ": cannot open it: " + std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error("metrics file " + path + ": cannot read it");
  const size_t slash = path.find_last_of('/');
  return parse_metrics(s.str(), slash == std::string::npos ? path : path.substr(slash + 1));
}

}  // namespace lockstep::report
