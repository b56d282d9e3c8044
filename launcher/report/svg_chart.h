// Line charts as inline SVG, drawn in C++ so the report needs no script and no network: axes with
// ticks at 1-2-5 steps, grid lines, axis labels, a legend, one polyline (and/or markers) per series,
// each marker carrying a <title> tooltip with its value.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace lockstep::report {

struct Series {
  std::string name;   // legend text
  std::string color;  // "#rrggbb"
  std::vector<std::pair<double, double>> points;  // (x, y) by x; non-finite points are skipped
  bool line = true;      // a polyline through the points
  bool markers = false;  // a dot at each point (with a tooltip)
  std::vector<std::string> labels;  // optional, one per point: added to its marker's tooltip
  bool dashed = false;
  double width = 2;      // stroke width, px
};

struct ChartSpec {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  int width = 560, height = 300;  // px, legend excluded; two fit side by side in a 1200 px window
  bool x_whole_ticks = false;     // x ticks at whole numbers only (epochs)
  bool y_from_zero = false;       // the y axis starts at 0 (rates, times), else at the data
  double y_ceiling = 0;           // > 0: the y axis ends there at most (100 for a percentage)
  int max_points = 600;           // a longer series is drawn as the means of equal buckets
  std::string x_unit, y_unit;     // tooltip suffixes ("", "%", " ms")
};

// One <svg class="chart"> element. Its plot area is <rect class="plot">; each series is drawn as
// elements of class "series" with the series' colour. A chart without any finite point says so in
// its plot area.
std::string svg_line_chart(const ChartSpec& spec);

// Tick values at a 1-2-5 step covering [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);

}  // namespace lockstep::report
