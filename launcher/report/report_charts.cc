// The report's chart specs (see report_charts.h).
#include "launcher/report/report_charts.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

namespace lockstep::report {
namespace {

// Tableau 10 without its grey: distinct on white and for the common colour-vision deficiencies.
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#bcbd22", "#17becf"};
constexpr const char* kStepBlue = "#8fbbe0";   // per-step lines: lighter than the epoch series
constexpr const char* kStepBrown = "#c49c94";

Series line(const std::string& name, const std::string& color, bool markers, double width = 2) {
  Series s;
  s.name = name;
  s.color = color;
  s.markers = markers;
  s.width = width;
  return s;
}

}  // namespace

std::vector<double> step_positions(const MetricsHistory& m) {
  std::map<int64_t, std::pair<int64_t, int64_t>> span;  // epoch -> (first step, last step)
  for (const StepRow& s : m.steps) {
    auto [it, fresh] = span.try_emplace(s.epoch, s.step, s.step);
    if (!fresh) it->second.first = std::min(it->second.first, s.step), it->second.second = std::max(it->second.second, s.step);
  }
  std::set<int64_t> ended;
  for (const EpochRow& e : m.epochs) ended.insert(e.epoch);
  const auto base = [&](int64_t e) {  // the step before epoch e's first
    auto prev = span.find(e - 1);
    return prev != span.end() ? prev->second.second : span.at(e).first - 1;
  };
  int64_t per_epoch = 0;
  for (const auto& [e, fl] : span)
    if (ended.count(e)) per_epoch = std::max(per_epoch, fl.second - base(e));
  std::vector<double> x;
  for (const StepRow& s : m.steps) {
    const int64_t n = per_epoch > 0 ? per_epoch : std::max<int64_t>(1, span.at(s.epoch).second - base(s.epoch));
    x.push_back(static_cast<double>(s.epoch - 1) + static_cast<double>(s.step - base(s.epoch)) / static_cast<double>(n));
  }
  return x;
}

std::vector<ChartSpec> report_charts(const MetricsHistory& m) {
  const std::vector<double> sx = step_positions(m);
  std::vector<ChartSpec> charts;
  const auto chart = [&](const std::string& title, const std::string& y_label) -> ChartSpec& {
    charts.emplace_back();
    charts.back().title = title;
    charts.back().x_label = "epoch";
    charts.back().x_whole_ticks = true;
    charts.back().y_label = y_label;
    return charts.back();
  };

  {  // Loss: every step's global mean, the epoch's mean, the eval's.
    ChartSpec& c = chart("Loss", "cross-entropy loss");
    Series step = line("train loss (step)", kStepBlue, false, 1.2);
    for (size_t i = 0; i < m.steps.size(); ++i) step.points.emplace_back(sx[i], m.steps[i].loss);
    Series train = line("train loss (epoch mean)", kPalette[0], true);
    Series test = line("test loss", kPalette[1], true);
    for (const EpochRow& e : m.epochs) {
      train.points.emplace_back(static_cast<double>(e.epoch), e.train_loss);
      if (e.test_loss) test.points.emplace_back(static_cast<double>(e.epoch), *e.test_loss);
    }
    for (Series* s : {&step, &train, &test})
      if (!s->points.empty()) c.series.push_back(*s);
  }
  {  // Accuracy after each eval, top-1 and any top-k.
    ChartSpec& c = chart("Test accuracy", "accuracy (%)");
    c.y_unit = "%";
    c.y_ceiling = 100;
    Series top1 = line("top-1", kPalette[2], true);
    std::map<int64_t, Series> topk;
    for (const EpochRow& e : m.epochs) {
      if (e.test_accuracy) top1.points.emplace_back(static_cast<double>(e.epoch), 100 * *e.test_accuracy);
      for (const auto& [k, v] : e.top_k) {
        auto [it, fresh] = topk.try_emplace(k, line("top-" + std::to_string(k), kPalette[(4 + topk.size()) % 9], true));
        it->second.points.emplace_back(static_cast<double>(e.epoch), 100 * v);
      }
    }
    if (!top1.points.empty()) c.series.push_back(top1);
    for (auto& [k, s] : topk) c.series.push_back(s);
  }
  {  // Learning rate: per step where step lines exist, else per epoch.
    ChartSpec& c = chart("Learning rate", "lr");
    c.y_from_zero = true;
    Series lr = line("lr", kPalette[3], m.steps.empty());
    if (!m.steps.empty())
      for (size_t i = 0; i < m.steps.size(); ++i) lr.points.emplace_back(sx[i], m.steps[i].lr);
    else
      for (const EpochRow& e : m.epochs) lr.points.emplace_back(static_cast<double>(e.epoch), e.lr);
    if (!lr.points.empty()) c.series.push_back(lr);
  }
  {  // Throughput.
    ChartSpec& c = chart("Training throughput", "samples/s (all ranks)");
    c.y_from_zero = true;
    Series step = line("samples/s (step)", kStepBrown, false, 1.2);
    for (size_t i = 0; i < m.steps.size(); ++i)
      if (m.steps[i].samples_per_sec > 0) step.points.emplace_back(sx[i], m.steps[i].samples_per_sec);
    Series epoch = line("samples/s (epoch)", kPalette[5], true);
    for (const EpochRow& e : m.epochs) epoch.points.emplace_back(static_cast<double>(e.epoch), e.samples_per_sec);
    for (Series* s : {&step, &epoch})
      if (!s->points.empty()) c.series.push_back(*s);
  }
  {  // Per-rank step time (median of the epoch) and its exposed communication, ms.
    ChartSpec& c = chart("Step time per rank (epoch median)", "ms");
    c.y_from_zero = true;
    c.y_unit = " ms";
    std::map<int, std::pair<Series, Series>> per_rank;
    std::map<int64_t, std::vector<const RankRow*>> by_epoch;
    for (const RankRow& r : m.ranks) by_epoch[r.epoch].push_back(&r);
    std::set<int> ranks;
    for (const RankRow& r : m.ranks) ranks.insert(r.rank);
    if (static_cast<int>(ranks.size()) <= kMaxRankSeries) {
      for (const RankRow& r : m.ranks) {
        const std::string color = kPalette[static_cast<size_t>(r.rank) % 9];
        auto [it, fresh] = per_rank.try_emplace(r.rank, line("rank " + std::to_string(r.rank) + " step", color, true),
                                                line("rank " + std::to_string(r.rank) + " exposed comm", color, true));
        if (fresh) it->second.second.dashed = true;
        it->second.first.points.emplace_back(static_cast<double>(r.epoch), 1e3 * r.step_time_s);
        it->second.second.points.emplace_back(static_cast<double>(r.epoch), 1e3 * r.comm_exposed_s);
      }
      for (auto& [r, s] : per_rank) c.series.push_back(s.first);
      for (auto& [r, s] : per_rank) c.series.push_back(s.second);
    } else {
      Series slow = line("slowest rank", kPalette[3], true), mid = line("median rank", kPalette[0], true),
             fast = line("fastest rank", kPalette[2], true), comm = line("most exposed comm", kPalette[3], true);
      comm.dashed = true;
      // Each point's tooltip names its rank.
      const auto add = [](Series& s, double x, const RankRow* r, double v) {
        s.points.emplace_back(x, 1e3 * v);
        s.labels.push_back("rank " + std::to_string(r->rank));
      };
      for (auto& [e, rows] : by_epoch) {
        std::vector<const RankRow*> t = rows;
        std::sort(t.begin(), t.end(), [](const RankRow* a, const RankRow* b) { return a->step_time_s < b->step_time_s; });
        const RankRow* most_comm = *std::max_element(
            rows.begin(), rows.end(), [](const RankRow* a, const RankRow* b) { return a->comm_exposed_s < b->comm_exposed_s; });
        const double x = static_cast<double>(e);
        add(slow, x, t.back(), t.back()->step_time_s);
        add(mid, x, t[t.size() / 2], t[t.size() / 2]->step_time_s);
        add(fast, x, t.front(), t.front()->step_time_s);
        add(comm, x, most_comm, most_comm->comm_exposed_s);
      }
      c.series = {slow, mid, fast, comm};
    }
  }
  {  // Gradient norm, only with clip_grad.
    Series step = line("grad norm (step)", kStepBlue, false, 1.2), epoch = line("grad norm (epoch mean)", kPalette[4], true);
    for (size_t i = 0; i < m.steps.size(); ++i)
      if (m.steps[i].grad_norm) step.points.emplace_back(sx[i], *m.steps[i].grad_norm);
    for (const EpochRow& e : m.epochs)
      if (e.grad_norm) epoch.points.emplace_back(static_cast<double>(e.epoch), *e.grad_norm);
    if (!step.points.empty() || !epoch.points.empty()) {
      ChartSpec& c = chart("Gradient norm before clipping", "total L2 norm");
      c.y_from_zero = true;
      for (Series* s : {&step, &epoch})
        if (!s->points.empty()) c.series.push_back(*s);
    }
  }
  return charts;
}

}  // namespace lockstep::report
