// metrics.jsonl lines: a step line carries the lr the step used and, with clipping, its pre-clip
// gradient norm; an epoch line the epoch's mean norm; a norm that was not computed is left out and
// a non-finite one is JSON null. Values read back as the numbers written.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include <unistd.h>

#include "launcher/metrics_log.h"

namespace lockstep {
namespace {

std::vector<std::string> write_and_read(const std::function<void(MetricsLog&)>& write) {
  const std::string path = ::testing::TempDir() + "metrics_log_test." + std::to_string(::getpid()) + ".jsonl";
  {
    MetricsLog log(path);
    write(log);
  }
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  std::remove(path.c_str());
  return lines;
}

// The number after "key": in line, NaN when absent or not a number.
double field(const std::string& line, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(line, m, std::regex("\"" + key + "\":([-+0-9.eE]+)[,}]"))) return std::nan("");
  return std::stod(m[1]);
}

TEST(MetricsLog, StepLineCarriesLrAndGradNorm) {
  const auto lines = write_and_read([](MetricsLog& log) {
    log.write(StepRecord{.epoch = 1, .step = 7, .loss = 0.5, .samples_per_sec = 10, .lr = 0.0123456789, .grad_norm = 3.25});
    log.write(StepRecord{.epoch = 1, .step = 8, .loss = 0.5, .samples_per_sec = 10, .lr = 0.02});
    log.write(StepRecord{.epoch = 1, .step = 9, .loss = 0.5, .lr = 0.02, .grad_norm = std::numeric_limits<double>::quiet_NaN()});
  });
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_DOUBLE_EQ(field(lines[0], "lr"), 0.0123456789);
  EXPECT_DOUBLE_EQ(field(lines[0], "grad_norm"), 3.25);
  EXPECT_DOUBLE_EQ(field(lines[1], "lr"), 0.02);
  EXPECT_EQ(lines[1].find("grad_norm"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("\"grad_norm\":null}"), std::string::npos) << lines[2];
}

TEST(MetricsLog, EpochLineCarriesTheMeanGradNormWhenComputed) {
  EpochMetrics with;
  with.epoch = 2;
  with.lr = 0.1;
  with.grad_norm = 1.5;
  EpochMetrics without = with;
  without.grad_norm = -1;
  const auto lines = write_and_read([&](MetricsLog& log) {
    log.write(with);
    log.write(without);
  });
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_DOUBLE_EQ(field(lines[0], "grad_norm"), 1.5);
  EXPECT_DOUBLE_EQ(field(lines[0], "lr"), 0.1);
  EXPECT_EQ(lines[1].find("grad_norm"), std::string::npos) << lines[1];
}

}  // namespace
}  // namespace lockstep
