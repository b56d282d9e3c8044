// Progress line and summary table of a launched job.
#include "launcher/launch/progress.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "launcher/coordinator/status_format.h"
#include "launcher/coordinator/stragglers.h"
#include "launcher/train/eval_metrics.h"

namespace lockstep {
namespace {

std::string clock_text(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

double field(const std::string& line, const std::string& name, double fallback) {
  std::smatch m;
  if (std::regex_search(line, m, std::regex("\"" + name + "\":(-?[0-9.eE+-]+)"))) return std::stod(m[1]);
  return fallback;
}

// The eval summary (top-k, per-class, confusion matrix) of a metrics line; empty without one.
std::string eval_text(const std::string& line) {
  std::smatch m;
  if (!std::regex_search(line, m, std::regex("\"confusion_matrix\":\\[(.*?)\\]\\]"))) return "";
  const std::string rows = m[1].str() + "]";
  std::vector<int64_t> confusion;
  const std::regex number("-?[0-9]+");
  for (auto it = std::sregex_iterator(rows.begin(), rows.end(), number); it != std::sregex_iterator(); ++it)
    confusion.push_back(std::stoll(it->str()));
  const auto classes = static_cast<int64_t>(std::count(rows.begin(), rows.end(), '['));
  if (classes == 0 || static_cast<int64_t>(confusion.size()) != classes * classes) return "";
  std::vector<std::pair<int64_t, double>> top_k;
  if (std::regex_search(line, m, std::regex("\"top_k_accuracy\":\\{([^}]*)\\}"))) {
    const std::string pairs = m[1];
    const std::regex pair("\"([0-9]+)\":([0-9.eE+-]+)");
    for (auto it = std::sregex_iterator(pairs.begin(), pairs.end(), pair); it != std::sregex_iterator(); ++it)
      top_k.emplace_back(std::stoll((*it)[1]), std::stod((*it)[2]));
  }
  return eval_summary(top_k, classes, confusion);
}

}  // namespace

std::string progress_text(const proto::JobStatus& st) {
  const proto::RankStatus* lead = nullptr;
  for (const auto& r : st.ranks())
    if (r.rank() == 0) lead = &r;
  // Nothing until rank 0 has taken a step in this attempt (a resumed run reports its position first).
  if (!lead || lead->metrics().steps_per_epoch() == 0 || lead->metrics().step() == 0 ||
      lead->metrics().step_time_s() <= 0)
    return "";
  const proto::StepMetrics& m = lead->metrics();
  const int64_t total = m.steps_per_epoch() * st.epochs();
  // Rates and ETA from the coordinator's window of rank 0's step counter, not the last step alone.
  char buf[256];
  std::snprintf(buf, sizeof buf, "epoch %lld/%lld  step %lld/%lld  %.0f samples/s  loss %.4f  ETA %s",
                static_cast<long long>(m.epoch()), static_cast<long long>(st.epochs()),
                static_cast<long long>(m.step()), static_cast<long long>(total), lead->samples_per_sec(), m.loss(),
                clock_text(status_format::eta_seconds(st)).c_str());
  std::string out = buf;
  // The job goes on; the slowest straggler is named, and how many more there are.
  if (st.stragglers_size() > 0) {
    out += "  " + straggler_text(st.stragglers(0));
    if (st.stragglers_size() > 1) out += " (+" + std::to_string(st.stragglers_size() - 1) + " more)";
  }
  return out;
}

ProgressLine::ProgressLine(bool terminal) : terminal_(terminal) {}

void ProgressLine::update(const proto::JobStatus& st) {
  const std::string text = progress_text(st);
  if (text.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  int64_t epoch = 0;
  for (const auto& r : st.ranks())
    if (r.rank() == 0) epoch = r.metrics().epoch();
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    drawn_ = true;
  } else if (epoch != last_epoch_ || now - last_print_ > std::chrono::seconds(10)) {
    std::fprintf(stderr, "%s\n", text.c_str());
    last_print_ = now;
    last_epoch_ = epoch;
  }
  std::fflush(stderr);
}

void ProgressLine::finish() {
  if (terminal_ && drawn_) std::fputs("\n", stderr);
  drawn_ = false;
}

std::string summary_table(const std::string& metrics_path, const proto::JobStatus& st) {
  std::map<int64_t, std::string> epochs;  // the newest line of each epoch
  std::ifstream in(metrics_path);
  for (std::string line; std::getline(in, line);)
    if (line.find("\"kind\":\"epoch\"") != std::string::npos) epochs[static_cast<int64_t>(field(line, "epoch", 0))] = line;
  std::ostringstream out;
  char row[256];
  out << "job " << st.job() << ": " << st.world_size() << " ranks";
  if (st.attempt() > 0) out << ", " << st.attempt() << " restart" << (st.attempt() > 1 ? "s" : "");
  out << "\n";
  std::snprintf(row, sizeof row, "%5s %11s %10s %9s %10s\n", "epoch", "train_loss", "test_loss", "test_acc", "samples/s");
  out << row;
  for (const auto& [e, line] : epochs) {
    const double acc = field(line, "test_accuracy", -1), tl = field(line, "test_loss", -1);
    char test[64];
    if (acc >= 0) std::snprintf(test, sizeof test, "%10.4f %9.4f", tl, acc);
    else std::snprintf(test, sizeof test, "%10s %9s", "-", "-");
    std::snprintf(row, sizeof row, "%5lld %11.4f %s %10.0f\n", static_cast<long long>(e), field(line, "train_loss", 0),
                  test, field(line, "train_samples_per_sec", 0));
    out << row;
  }
  std::snprintf(row, sizeof row, "%5s %-16s %8s %8s %10s\n", "rank", "host", "pid", "steps", "step_ms");
  out << row;
  for (const auto& r : st.ranks()) {
    std::snprintf(row, sizeof row, "%5d %-16s %8lld %8lld %10.1f\n", r.rank(), r.host().c_str(),
                  static_cast<long long>(r.pid()), static_cast<long long>(r.metrics().step()),
                  r.metrics().step_time_s() * 1000);
    out << row;
  }
  if (st.last_test_accuracy() > 0) {
    std::snprintf(row, sizeof row, "final test accuracy %.4f (test loss %.4f)\n", st.last_test_accuracy(),
                  st.last_test_loss());
    out << row;
  }
  std::string last_eval;  // the newest epoch's eval beyond top-1
  for (const auto& [e, line] : epochs)
    if (std::string t = eval_text(line); !t.empty()) last_eval = "epoch " + std::to_string(e) + " eval:\n" + t;
  out << last_eval;
  if (!st.last_checkpoint().empty()) out << "checkpoint " << st.last_checkpoint() << "\n";
  return out.str();
}

}  // namespace lockstep
