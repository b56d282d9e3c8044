// SVG line charts for the report (see svg_chart.h).
#include "launcher/report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "launcher/report/html_text.h"

namespace lockstep::report {
namespace {

// Plot area margins, px: room for y tick labels and the rotated y label on the left, the title
// on top, x tick labels and the x label below.
constexpr double kLeft = 72, kRight = 16, kTop = 30, kBottom = 46;
constexpr double kLegendRow = 20;

double tick_step(double lo, double hi, int target) {
  const double raw = (hi - lo) / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

// [lo, hi] widened so it is not empty, then out to whole tick steps.
struct Axis {
  double lo, hi, step;
};

Axis axis_of(double lo, double hi, int target, double min_step = 0) {
  if (!(hi > lo)) {
    const double pad = lo == 0 ? 1 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const double step = std::max(tick_step(lo, hi, target), min_step);
  return {std::floor(lo / step + 1e-9) * step, std::ceil(hi / step - 1e-9) * step, step};
}

std::string tick_label(double v, double step) {
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::fabs(v) < step * 1e-6 ? 0.0 : v);
  return buf;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

// The finite points, as the means of equal buckets when there are more than max_points.
std::vector<std::pair<double, double>> drawn_points(const Series& s, int max_points) {
  std::vector<std::pair<double, double>> p;
  for (const auto& xy : s.points)
    if (std::isfinite(xy.first) && std::isfinite(xy.second)) p.push_back(xy);
  if (max_points <= 0 || static_cast<int>(p.size()) <= max_points) return p;
  const size_t bucket = (p.size() + static_cast<size_t>(max_points) - 1) / static_cast<size_t>(max_points);
  std::vector<std::pair<double, double>> out;
  for (size_t i = 0; i < p.size(); i += bucket) {
    const size_t end = std::min(p.size(), i + bucket);
    double x = 0, y = 0;
    for (size_t k = i; k < end; ++k) x += p[k].first, y += p[k].second;
    out.emplace_back(x / static_cast<double>(end - i), y / static_cast<double>(end - i));
  }
  return out;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  const Axis a = axis_of(lo, hi, target);
  std::vector<double> t;
  for (double v = a.lo; v <= a.hi + a.step * 1e-6; v += a.step) t.push_back(v);
  return t;
}

std::string svg_line_chart(const ChartSpec& spec) {
  std::vector<std::vector<std::pair<double, double>>> pts;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const Series& s : spec.series) {
    pts.push_back(drawn_points(s, s.line && !s.markers ? spec.max_points : 0));
    for (const auto& [x, y] : pts.back()) {
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  }
  const bool empty = !(x0 <= x1);
  if (empty) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  // Headroom so no point sits on the plot's border; a rate or a time keeps its axis at 0.
  const double pad = 0.04 * (y1 - y0);
  y1 += pad;
  y0 = spec.y_from_zero && y0 >= 0 ? 0.0 : y0 - pad;
  if (spec.y_ceiling > 0 && y1 > spec.y_ceiling && y0 < spec.y_ceiling) y1 = spec.y_ceiling;
  const Axis ax = axis_of(x0, x1, 8, spec.x_whole_ticks ? 1.0 : 0.0), ay = axis_of(y0, y1, 5);

  const double W = spec.width, H = spec.height;
  const double pw = W - kLeft - kRight, ph = H - kTop - kBottom;
  const auto sx = [&](double x) { return kLeft + (x - ax.lo) / (ax.hi - ax.lo) * pw; };
  const auto sy = [&](double y) { return kTop + ph - (y - ay.lo) / (ay.hi - ay.lo) * ph; };

  // Legend rows under the x label; each item a swatch and its name (about 7 px a character).
  std::vector<std::pair<double, double>> legend_at;
  double lx = kLeft, rows = spec.series.empty() ? 0 : 1;
  for (const Series& s : spec.series) {
    const double w = 26 + 7.0 * static_cast<double>(s.name.size()) + 18;
    if (lx + w > W && lx > kLeft) lx = kLeft, ++rows;
    legend_at.emplace_back(lx, H + (rows - 1) * kLegendRow);
    lx += w;
  }
  const double total_h = H + rows * kLegendRow + 4;

  std::string o;
  o += "<svg class=\"chart\" role=\"img\" width=\"" + num(W) + "\" height=\"" + num(total_h) + "\" viewBox=\"0 0 " +
       num(W) + " " + num(total_h) + "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o += "<title>" + html_escape(spec.title) + "</title>\n";
  o += "<text x=\"" + num(kLeft) + "\" y=\"18\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">" +
       html_escape(spec.title) + "</text>\n";
  o += "<rect class=\"plot\" x=\"" + num(kLeft) + "\" y=\"" + num(kTop) + "\" width=\"" + num(pw) + "\" height=\"" +
       num(ph) + "\" fill=\"#ffffff\" stroke=\"#999999\"/>\n";
  // Grid and ticks.
  for (double v = ay.lo; v <= ay.hi + ay.step * 1e-6; v += ay.step) {
    const std::string y = num(sy(v));
    o += "<line x1=\"" + num(kLeft) + "\" x2=\"" + num(kLeft + pw) + "\" y1=\"" + y + "\" y2=\"" + y +
         "\" stroke=\"#e4e4e4\"/>";
    o += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(sy(v) + 4) + "\" text-anchor=\"end\" fill=\"#333\">" +
         tick_label(v, ay.step) + "</text>\n";
  }
  for (double v = ax.lo; v <= ax.hi + ax.step * 1e-6; v += ax.step) {
    const std::string x = num(sx(v));
    o += "<line x1=\"" + x + "\" x2=\"" + x + "\" y1=\"" + num(kTop) + "\" y2=\"" + num(kTop + ph) +
         "\" stroke=\"#e4e4e4\"/>";
    o += "<text x=\"" + x + "\" y=\"" + num(kTop + ph + 16) + "\" text-anchor=\"middle\" fill=\"#333\">" +
         tick_label(v, ax.step) + "</text>\n";
  }
  o += "<text x=\"" + num(kLeft + pw / 2) + "\" y=\"" + num(kTop + ph + 36) + "\" text-anchor=\"middle\" fill=\"#222\">" +
       html_escape(spec.x_label) + "</text>\n";
  o += "<text transform=\"translate(16 " + num(kTop + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\" fill=\"#222\">" +
       html_escape(spec.y_label) + "</text>\n";
  if (empty)
    o += "<text x=\"" + num(kLeft + pw / 2) + "\" y=\"" + num(kTop + ph / 2) +
         "\" text-anchor=\"middle\" fill=\"#777\">no data yet</text>\n";

  for (size_t i = 0; i < spec.series.size(); ++i) {
    const Series& s = spec.series[i];
    const std::string name = html_escape(s.name);
    const std::string color = html_escape(s.color);
    const std::string dash = s.dashed ? " stroke-dasharray=\"6 4\"" : "";
    if (s.line && pts[i].size() > 1) {
      o += "<polyline class=\"series\" fill=\"none\" stroke=\"" + color + "\" stroke-width=\"" + num(s.width) +
           "\" stroke-linejoin=\"round\"" + dash + " points=\"";
      for (const auto& [x, y] : pts[i]) o += num(sx(x)) + "," + num(sy(y)) + " ";
      o += "\"><title>" + name + "</title></polyline>\n";
    }
    if (s.markers || pts[i].size() == 1)
      for (size_t k = 0; k < s.points.size(); ++k) {  // markers are never bucketed: s.points' own
        const auto [x, y] = s.points[k];
        if (!std::isfinite(x) || !std::isfinite(y)) continue;
        const std::string label = k < s.labels.size() && !s.labels[k].empty() ? " (" + html_escape(s.labels[k]) + ")" : "";
        o += "<circle class=\"series\" cx=\"" + num(sx(x)) + "\" cy=\"" + num(sy(y)) + "\" r=\"3.5\" fill=\"" + color +
             "\"><title>" + name + ": " + html_escape(spec.x_label) + " " +
             (x == std::floor(x) && std::fabs(x) < 1e15 ? std::to_string(static_cast<long long>(x)) : format_number(x, 4)) +
             html_escape(spec.x_unit) +
             ", " + format_number(y, 5) + html_escape(spec.y_unit) + label + "</title></circle>\n";
      }
    const auto [gx, gy] = legend_at[i];
    o += "<line x1=\"" + num(gx) + "\" x2=\"" + num(gx + 20) + "\" y1=\"" + num(gy + 10) + "\" y2=\"" + num(gy + 10) +
         "\" stroke=\"" + color + "\" stroke-width=\"3\"" + dash + "/>";
    o += "<text x=\"" + num(gx + 26) + "\" y=\"" + num(gy + 14) + "\" fill=\"#222\">" + name + "</text>\n";
  }
  o += "</svg>\n";
  return o;
}

}  // namespace lockstep::report
