// The report page (see html_report.h). Every string from the run directory passes html_escape.
#include "launcher/report/html_report.h"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <map>
#include <set>

#include "launcher/report/html_text.h"
#include "launcher/report/report_charts.h"

namespace lockstep::report {
namespace {

namespace fs = std::filesystem;

// No script, no fetch of any kind: what the page shows is in the file.
constexpr const char* kHead = R"(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font-family: sans-serif; margin: 24px; color: #222; background: #f6f6f6; }
h1 { font-size: 22px; margin: 0 0 4px 0; }
h2 { font-size: 17px; margin: 24px 0 8px 0; }
.status { margin: 0 0 12px 0; color: #444; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #d4d4d4; padding: 4px 10px; text-align: left; font-size: 14px; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts svg { background: #fff; border: 1px solid #d4d4d4; }
.bad { color: #b00020; }
.notes li { color: #7a4a00; }
pre { background: #fff; border: 1px solid #d4d4d4; padding: 8px; font-size: 13px; overflow-x: auto; }
.empty { color: #666; font-style: italic; }
</style>
)";

std::string row(const std::string& label, const std::string& value_html) {
  return "<tr><th>" + html_escape(label) + "</th><td>" + value_html + "</td></tr>\n";
}

std::string percent(double fraction) { return format_number(100 * fraction, 4) + "%"; }

// The run's state in one sentence.
std::string status_line(const RunRecord& r) {
  const MetricsHistory* m = r.metrics ? &*r.metrics : nullptr;
  const int64_t done = m && !m->epochs.empty() ? m->epochs.back().epoch : 0;
  const int64_t of = r.job ? r.job->epochs() : 0;
  const std::string progress =
      done > 0 ? "epoch " + std::to_string(done) + (of > 0 ? " of " + std::to_string(of) : "") + " done" : "no epoch done yet";
  if (r.running) return "Running (" + r.holder + "): " + progress + ".";
  const bool can_resume = std::any_of(r.checkpoints.begin(), r.checkpoints.end(), [](const CheckpointInfo& c) { return c.valid; });
  const std::string resume = can_resume ? " (lockstep launch --resume continues it from its newest checkpoint)"
                                        : " (no valid checkpoint: a new launch starts it afresh)";
  if (r.result) {  // how the launcher says it ended
    const RunResult& x = *r.result;
    const std::string status = "exit status " + std::to_string(x.exit_status);
    if (x.complete) return "Finished: all " + std::to_string(x.epochs > 0 ? x.epochs : of) + " epochs done (" + status + ").";
    if (!x.failure.empty()) return "Failed (" + status + "): " + x.failure + "; " + progress + resume + ".";
    if (x.exit_status == 3) return "Stopped on request (" + status + "), " + progress + resume + ".";
    return "Ended without finishing (" + status + "), " + progress + resume + ".";
  }
  if (of > 0 && done >= of) return "Finished: all " + std::to_string(of) + " epochs done.";
  if (!m) return std::string("Not running; no metrics yet") + (can_resume ? "." : ", no checkpoint.");
  return "Not running: stopped or interrupted, " + progress + resume + ".";
}

std::string world_size(const RunRecord& r) {
  if (r.metrics && r.metrics->world_size() > 0) {
    const MetricsHistory& m = *r.metrics;
    std::map<int64_t, int> per_epoch;  // epoch -> ranks recorded
    for (const RankRow& x : m.ranks) per_epoch[x.epoch] = std::max(per_epoch[x.epoch], x.rank + 1);
    std::set<int> sizes;
    for (const auto& [e, n] : per_epoch) sizes.insert(n);
    std::string s = std::to_string(m.world_size()) + " (rank records of epoch " + std::to_string(m.ranks.back().epoch) + ")";
    if (sizes.size() > 1) {  // an elastic resume: each stretch of epochs with its ranks
      s += "; the run changed size:";
      for (auto it = per_epoch.begin(); it != per_epoch.end();) {
        auto end = it;
        while (std::next(end) != per_epoch.end() && std::next(end)->second == it->second) ++end;
        s += (it == per_epoch.begin() ? " epochs " : ", epochs ") + std::to_string(it->first) + "-" +
             std::to_string(end->first) + " on " + std::to_string(it->second);
        it = std::next(end);
      }
    }
    return s;
  }
  for (const CheckpointInfo& c : r.checkpoints)
    if (c.valid) return std::to_string(c.world_size) + " (checkpoint " + fs::path(c.dir).filename().string() + ")";
  return "unknown (no rank records or checkpoints yet)";
}

std::string summary(const RunRecord& r, const std::string& generated_at) {
  std::string o = "<table id=\"summary\">\n";
  o += row("Job", html_escape(r.job_name));
  o += row("Run directory", html_escape(r.dir));
  o += row("World size", html_escape(world_size(r)));
  if (r.job) {
    const proto::JobSpec& j = *r.job;
    std::string model = j.model().reference().empty() ? "layers from the job file (" + std::to_string(j.model().layers_size()) + " layers)"
                                                      : j.model().reference();
    o += row("Model", html_escape(model));
    o += row("Epochs", std::to_string(j.epochs()));
    o += row("Global batch", std::to_string(j.batch_size()));
  }
  o += row("Metrics file", html_escape(r.metrics_path) + (r.metrics ? " (" + std::to_string(r.metrics->lines) + " lines)" : " (none yet)"));
  o += row("Report written", html_escape(generated_at));
  return o + "</table>\n";
}

std::string final_figures(const MetricsHistory& m) {
  if (m.epochs.empty()) return "<p class=\"empty\">No epoch has ended yet.</p>\n";
  const EpochRow& last = m.epochs.back();
  const EpochRow* eval = nullptr;
  for (const EpochRow& e : m.epochs)
    if (e.test_accuracy) eval = &e;
  std::string o = "<table id=\"final\">\n";
  o += row("Epoch", std::to_string(last.epoch));
  o += "<tr><th>Train loss</th><td class=\"num\" id=\"final-train-loss\">" + format_number(last.train_loss, 5) + "</td></tr>\n";
  if (eval) {
    const std::string when = eval == &last ? "" : " (after epoch " + std::to_string(eval->epoch) + ", the last eval)";
    o += "<tr><th>Test loss" + when + "</th><td class=\"num\" id=\"final-test-loss\">" +
         (eval->test_loss ? format_number(*eval->test_loss, 5) : "n/a") + "</td></tr>\n";
    o += "<tr><th>Test accuracy" + when + "</th><td class=\"num\" id=\"final-test-accuracy\">" + percent(*eval->test_accuracy) +
         "</td></tr>\n";
    for (const auto& [k, v] : eval->top_k)
      o += "<tr><th>Top-" + std::to_string(k) + " accuracy" + when + "</th><td class=\"num\" id=\"final-top-" +
           std::to_string(k) + "\">" + percent(v) + "</td></tr>\n";
  } else {
    o += row("Test loss, accuracy", "<span class=\"empty\">no eval yet</span>");
  }
  o += "<tr><th>Train samples/s</th><td class=\"num\">" + format_number(last.samples_per_sec, 5) + "</td></tr>\n";
  o += "<tr><th>Learning rate</th><td class=\"num\">" + format_number(last.lr, 4) + "</td></tr>\n";
  return o + "</table>\n";
}

std::string rank_table(const MetricsHistory& m) {
  if (m.ranks.empty()) return "";
  const int64_t e = m.ranks.back().epoch;
  double slowest = 0;
  for (const RankRow& r : m.ranks)
    if (r.epoch == e) slowest = std::max(slowest, r.step_time_s);
  std::string o = "<h2>Ranks in epoch " + std::to_string(e) + " (medians over the epoch's steps)</h2>\n<table id=\"ranks\">\n"
                  "<tr><th>rank</th><th>steps</th><th>step time (ms)</th><th>exposed comm (ms)</th><th>compute (ms)</th></tr>\n";
  for (const RankRow& r : m.ranks) {
    if (r.epoch != e) continue;
    const bool slow = r.step_time_s == slowest;
    o += "<tr><td>" + std::to_string(r.rank) + (slow ? " (slowest)" : "") + "</td><td class=\"num\">" + std::to_string(r.steps) +
         "</td><td class=\"num\">" + format_number(1e3 * r.step_time_s, 4) + "</td><td class=\"num\">" +
         format_number(1e3 * r.comm_exposed_s, 4) + "</td><td class=\"num\">" + format_number(1e3 * r.compute_s, 4) + "</td></tr>\n";
  }
  return o + "</table>\n";
}

std::string checkpoint_table(const RunRecord& r) {
  if (r.checkpoints.empty()) return "<p class=\"empty\">No checkpoints yet.</p>\n";
  std::string o = "<table id=\"checkpoints\">\n<tr><th>directory</th><th>step</th><th>epoch</th><th>ranks</th><th>valid</th></tr>\n";
  for (const CheckpointInfo& c : r.checkpoints) {
    o += "<tr><td>" + html_escape(c.dir) + "</td>";
    if (c.valid) {
      const std::string epoch = c.epoch_step == 0 ? "end of epoch " + std::to_string(c.epoch)
                                                  : "epoch " + std::to_string(c.epoch + 1) + ", " + std::to_string(c.epoch_step) + " steps in";
      o += "<td class=\"num\">" + std::to_string(c.step) + "</td><td>" + epoch + "</td><td class=\"num\">" +
           std::to_string(c.world_size) + "</td><td>valid</td>";
    } else {
      o += "<td></td><td></td><td></td><td class=\"bad\">damaged: " + html_escape(c.error) + "</td>";
    }
    o += "</tr>\n";
  }
  return o + "</table>\n";
}

}  // namespace

std::string render_report(const RunRecord& r, const std::string& generated_at) {
  std::string o = kHead;
  o += "<title>lockstep report: " + html_escape(r.job_name) + "</title>\n</head>\n<body>\n";
  o += "<h1>lockstep report: " + html_escape(r.job_name) + "</h1>\n";
  o += "<p class=\"status\" id=\"status\">" + html_escape(status_line(r)) + "</p>\n";
  o += summary(r, generated_at);
  std::vector<std::string> notes = r.notes;
  if (r.metrics) notes.insert(notes.end(), r.metrics->notes.begin(), r.metrics->notes.end());
  if (!notes.empty()) {
    o += "<h2>Notes</h2>\n<ul class=\"notes\" id=\"notes\">\n";
    for (const std::string& n : notes) o += "<li>" + html_escape(n) + "</li>\n";
    o += "</ul>\n";
  }
  o += "<h2>Final figures</h2>\n";
  if (!r.metrics || (r.metrics->epochs.empty() && r.metrics->steps.empty() && r.metrics->ranks.empty())) {
    o += "<p class=\"empty\" id=\"no-metrics\">No metrics yet: " + html_escape(r.metrics_path) +
         (r.metrics ? " holds no records." : " does not exist.") + " The charts appear once training has logged steps.</p>\n";
  } else {
    o += final_figures(*r.metrics);
    o += "<h2>Charts</h2>\n<div class=\"charts\">\n";
    for (const ChartSpec& c : report_charts(*r.metrics)) o += svg_line_chart(c);
    o += "</div>\n";
    o += rank_table(*r.metrics);
  }
  o += "<h2>Checkpoints</h2>\n" + checkpoint_table(r);
  o += "<h2>Job spec</h2>\n";
  if (r.job_text.empty())
    o += "<p class=\"empty\">Not recorded: the run directory has no job.textproto and no valid checkpoint.</p>\n";
  else
    o += "<p>From " + html_escape(r.job_source) + ":</p>\n<pre id=\"job\">" + html_escape(r.job_text) + "</pre>\n";
  return o + "</body>\n</html>\n";
}

}  // namespace lockstep::report
