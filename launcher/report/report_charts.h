// The report's charts, from a run's metrics (launcher/report/metrics_history.h): each a ChartSpec
// with the series it has data for. The x axis is the epoch; a step line sits at its fraction of its
// epoch, so per-step and per-epoch series share one axis.
#pragma once

#include <vector>

#include "launcher/report/metrics_history.h"
#include "launcher/report/svg_chart.h"

namespace lockstep::report {

// Loss, test accuracy, learning rate, samples/s, per-rank step time (with exposed communication),
// and gradient norm when the records carry one. Ranks past kMaxRankSeries are drawn as the
// slowest, median and fastest rank of each epoch.
constexpr int kMaxRankSeries = 8;
std::vector<ChartSpec> report_charts(const MetricsHistory& m);

// Where step rows sit on the epoch axis: epoch - 1 + (steps into the epoch) / (steps per epoch),
// steps per epoch from the epochs that ended. Same order as m.steps.
std::vector<double> step_positions(const MetricsHistory& m);

}  // namespace lockstep::report
