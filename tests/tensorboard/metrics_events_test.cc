// The TensorBoard sink of the metrics log: it receives each line as the file has it, and its
// scalars are the line's numbers (as printed, then float32) under the documented tags and step.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "launcher/metrics_log.h"
#include "launcher/tensorboard/metrics_events.h"
#include "runtime/check.h"

namespace lockstep::tensorboard {
namespace {

// Keeps what it is handed.
class Capture : public MetricsSink {
 public:
  explicit Capture(std::vector<std::string>* lines) : lines_(lines) {}
  void write(const std::string& line) override { lines_->push_back(line); }

 private:
  std::vector<std::string>* lines_;
};

// The lines a MetricsLog wrote to its file and handed its sink, in order.
struct Written {
  std::string file;
  std::vector<std::string> sunk;
};

Written write_lines(const std::function<void(MetricsLog&)>& write) {
  const std::string path = ::testing::TempDir() + "metrics_events_test." + std::to_string(::getpid()) + ".jsonl";
  Written w;
  {
    MetricsLog log(path);
    log.add_sink(std::make_unique<Capture>(&w.sunk));
    write(log);
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  w.file = ss.str();
  std::remove(path.c_str());
  return w;
}

std::map<std::string, float> by_tag(const StepScalars& s) {
  std::map<std::string, float> out;
  for (const Scalar& v : s.values) out[v.tag] = v.value;
  return out;
}

TEST(MetricsEvents, SinkGetsEveryLineAsTheFileHasIt) {
  EpochMetrics m;
  m.epoch = 1;
  m.step = 16;
  const Written w = write_lines([&](MetricsLog& log) {
    log.write(StepRecord{.epoch = 1, .step = 16, .loss = 0.5, .samples_per_sec = 10, .lr = 0.1});
    log.write(RankTimesRecord{.epoch = 1, .rank = 1, .steps = 15, .step_time_s = 0.5, .step = 16});
    log.write(m);
  });
  ASSERT_EQ(w.sunk.size(), 3u);
  std::string joined;
  for (const auto& l : w.sunk) joined += l;
  EXPECT_EQ(joined, w.file);
}

TEST(MetricsEvents, StepLineValuesAreThePrintedDigits) {
  const Written w = write_lines([](MetricsLog& log) {
    log.write(StepRecord{.epoch = 2, .step = 17, .loss = 0.61234567890123456, .samples_per_sec = 2380.54,
                         .lr = 0.0123456789, .grad_norm = 3.25});
  });
  ASSERT_EQ(w.sunk.size(), 1u);
  const auto s = scalars_of_metrics_line(w.sunk[0]);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->step, 17);
  const auto v = by_tag(*s);
  ASSERT_EQ(v.size(), 4u) << w.sunk[0];
  EXPECT_EQ(v.at("train/loss"), static_cast<float>(0.61234567890123456));
  EXPECT_EQ(v.at("train/lr"), static_cast<float>(0.0123456789));
  EXPECT_EQ(v.at("train/samples_per_sec"), 2380.5f);  // the line holds one decimal: "2380.5"
  EXPECT_EQ(v.at("train/grad_norm"), 3.25f);
}

TEST(MetricsEvents, NoGradNormWithoutClippingAndNaNForNull) {
  const Written w = write_lines([](MetricsLog& log) {
    log.write(StepRecord{.epoch = 1, .step = 1, .loss = 1, .samples_per_sec = 1, .lr = 0.1});
    log.write(StepRecord{.epoch = 1, .step = 2, .loss = 1, .lr = 0.1, .grad_norm = std::nan("")});
  });
  ASSERT_EQ(w.sunk.size(), 2u);
  EXPECT_EQ(by_tag(*scalars_of_metrics_line(w.sunk[0])).count("train/grad_norm"), 0u);
  const auto with_null = by_tag(*scalars_of_metrics_line(w.sunk[1]));
  ASSERT_EQ(with_null.count("train/grad_norm"), 1u) << w.sunk[1];
  EXPECT_TRUE(std::isnan(with_null.at("train/grad_norm")));
}

TEST(MetricsEvents, EpochLineAtItsLastStepWithTestAndTopK) {
  EpochMetrics m;
  m.epoch = 3;
  m.step = 48;
  m.train_loss = 0.4;
  m.test_loss = 0.5;
  m.test_accuracy = 0.75;
  m.train_samples_per_sec = 1234.5;
  m.lr = 0.05;
  m.grad_norm = 2.5;
  m.test_classes = ClassCounts::zeros(3, {1, 2});
  m.test_classes.confusion = {1, 1, 0, 0, 1, 0, 0, 0, 1};  // 4 samples, 3 right
  m.test_classes.top_k_correct = {3, 4};
  EpochMetrics no_eval = m;
  no_eval.test_loss = no_eval.test_accuracy = -1;
  no_eval.test_classes = ClassCounts{};
  const Written w = write_lines([&](MetricsLog& log) {
    log.write(m);
    log.write(no_eval);
  });
  ASSERT_EQ(w.sunk.size(), 2u);
  const auto s = scalars_of_metrics_line(w.sunk[0]);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->step, 48);
  const std::map<std::string, float> want{
      {"epoch/train_loss", 0.4f}, {"epoch/lr", 0.05f},     {"epoch/samples_per_sec", 1234.5f},
      {"epoch/grad_norm", 2.5f},  {"test/loss", 0.5f},     {"test/accuracy", 0.75f},
      {"test/top1_accuracy", 0.75f}, {"test/top2_accuracy", 1.0f}};
  EXPECT_EQ(by_tag(*s), want) << w.sunk[0];
  const auto v = by_tag(*scalars_of_metrics_line(w.sunk[1]));
  EXPECT_EQ(v.count("test/loss") + v.count("test/accuracy"), 0u) << "an epoch without an eval has no test figures";
  EXPECT_EQ(v.size(), 4u) << w.sunk[1];
}

TEST(MetricsEvents, RankLineUnderItsRank) {
  const Written w = write_lines([](MetricsLog& log) {
    log.write(RankTimesRecord{.epoch = 2, .rank = 3, .steps = 15, .step_time_s = 0.03125, .comm_exposed_s = 0.0005,
                              .compute_s = 0.03075, .step = 32});
  });
  const auto s = scalars_of_metrics_line(w.sunk.at(0));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->step, 32);
  const std::map<std::string, float> want{
      {"rank3/step_time_s", 0.03125f}, {"rank3/comm_exposed_s", 0.0005f}, {"rank3/compute_s", 0.03075f}};
  EXPECT_EQ(by_tag(*s), want) << w.sunk[0];
}

TEST(MetricsEvents, OtherKindsAreIgnoredAndBrokenLinesNamed) {
  EXPECT_FALSE(scalars_of_metrics_line("{\"kind\":\"note\",\"text\":\"hello\"}\n"));
  EXPECT_THROW(scalars_of_metrics_line("{\"kind\":\"step\",\"loss\":1}\n"), Error);  // no step
  EXPECT_THROW(scalars_of_metrics_line("not json\n"), Error);
}

}  // namespace
}  // namespace lockstep::tensorboard
