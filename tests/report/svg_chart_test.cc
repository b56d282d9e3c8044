// SVG charts: ticks at 1-2-5 steps, data mapped onto the plot area (its corners from the <rect
// class="plot"> the chart itself declares), long series bucketed, names escaped.
#include <gtest/gtest.h>

#include <regex>
#include <sstream>

#include "launcher/report/svg_chart.h"

namespace lockstep::report {
namespace {

double attr(const std::string& svg, const std::string& element_start, const std::string& name) {
  const size_t at = svg.find(element_start);
  EXPECT_NE(at, std::string::npos) << element_start;
  const std::regex re(" " + name + "=\"([-0-9.]+)\"");
  std::smatch m;
  const std::string tail = svg.substr(at, svg.find('>', at) - at);
  EXPECT_TRUE(std::regex_search(tail, m, re)) << name << " in " << tail;
  return std::stod(m[1]);
}

std::vector<std::pair<double, double>> polyline(const std::string& svg) {
  const size_t at = svg.find("points=\"");
  EXPECT_NE(at, std::string::npos);
  std::istringstream in(svg.substr(at + 8, svg.find('"', at + 8) - at - 8));
  std::vector<std::pair<double, double>> p;
  double x, y;
  char comma;
  while (in >> x >> comma >> y) p.emplace_back(x, y);
  return p;
}

void expect_ticks(const std::vector<double>& got, double first, double step, size_t n) {
  ASSERT_EQ(got.size(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(got[i], first + step * static_cast<double>(i), 1e-12) << "tick " << i;
}

TEST(SvgChart, TicksAtOneTwoFiveSteps) {
  expect_ticks(nice_ticks(0, 0.93), 0, 0.2, 6);        // 0.93 / 6 = 0.155 -> 0.2
  expect_ticks(nice_ticks(1, 3, 8), 1, 0.2, 11);       // 0.25 -> 0.2
  expect_ticks(nice_ticks(0, 23000, 5), 0, 5000, 6);   // 4600 -> 5000
  expect_ticks(nice_ticks(5, 5), 4.4, 0.2, 7);         // one value: widened by 10%
}

TEST(SvgChart, DataSpanningWholeTicksFillsThePlotArea) {
  ChartSpec c;
  c.title = "t";
  Series s;
  s.name = "s";
  s.color = "#1f77b4";
  // x 0..10, y 5..95: 4% headroom either side (y 1.4..98.6) widens y to whole ticks 0..100.
  for (int i = 0; i <= 10; ++i) s.points.emplace_back(i, 5 + 9.0 * i);
  c.series = {s};
  const std::string svg = svg_line_chart(c);
  const double x = attr(svg, "<rect class=\"plot\"", "x"), y = attr(svg, "<rect class=\"plot\"", "y");
  const double w = attr(svg, "<rect class=\"plot\"", "width"), h = attr(svg, "<rect class=\"plot\"", "height");
  const auto p = polyline(svg);
  ASSERT_EQ(p.size(), 11u);
  for (size_t i = 0; i < p.size(); ++i) {  // (i, 5 + 9 i) at its fraction of the area, y up
    EXPECT_NEAR(p[i].first, x + w * static_cast<double>(i) / 10, 0.06) << i;
    EXPECT_NEAR(p[i].second, y + h - h * (5 + 9.0 * static_cast<double>(i)) / 100, 0.06) << i;
  }
  EXPECT_NE(svg.find("stroke=\"#1f77b4\""), std::string::npos);
}

TEST(SvgChart, ALongSeriesIsDrawnAsBucketMeans) {
  ChartSpec c;
  c.max_points = 100;
  Series s;
  s.color = "#000000";
  for (int i = 0; i < 1000; ++i) s.points.emplace_back(i, i % 2);  // buckets of 10: mean 0.5
  c.series = {s};
  const auto p = polyline(svg_line_chart(c));
  ASSERT_EQ(p.size(), 100u);
  for (size_t i = 1; i < p.size(); ++i) EXPECT_NEAR(p[i].second, p[0].second, 0.06) << i;
}

TEST(SvgChart, NoPointsSaysSoAndNamesAreEscaped) {
  ChartSpec c;
  c.title = "<b>loss</b>";
  Series s;
  s.name = "a&b";
  s.color = "#000000";
  s.points = {{0, std::numeric_limits<double>::quiet_NaN()}};
  c.series = {s};
  const std::string svg = svg_line_chart(c);
  EXPECT_NE(svg.find("no data yet"), std::string::npos);
  EXPECT_NE(svg.find("&lt;b&gt;loss&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
  EXPECT_NE(svg.find(">a&amp;b<"), std::string::npos);
}

}  // namespace
}  // namespace lockstep::report
