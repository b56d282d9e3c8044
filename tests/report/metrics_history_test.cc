// The report reads back what MetricsLog writes (launcher/metrics_log.h): every kind, the newest
// line of a re-logged step, an epoch without eval, and a partial or bad line left out with a note.
#include <gtest/gtest.h>

#include <filesystem>

#include "launcher/metrics_log.h"
#include "launcher/report/metrics_history.h"

namespace lockstep::report {
namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("lockstep_report_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

TEST(MetricsHistory, ReadsBackEveryKindMetricsLogWrites) {
  const std::string path = temp_path("kinds.jsonl");
  {
    MetricsLog log(path);
    log.write(StepRecord{1, 1, 2.25, 1000.5, 0.05, -1});
    log.write(StepRecord{1, 2, 1.5, 1100.5, 0.05, 3.5});
    log.write(RankTimesRecord{1, 0, 2, 0.031, 0.002, 0.029});
    log.write(RankTimesRecord{1, 1, 2, 0.030, 0.004, 0.026});
    EpochMetrics m;
    m.epoch = 1;
    m.train_loss = 1.875;
    m.test_loss = 0.625;
    m.test_accuracy = 0.8125;
    m.train_samples_per_sec = 1050;
    m.lr = 0.05;
    log.write(m);
  }
  const auto h = read_metrics(path);
  ASSERT_TRUE(h.has_value());
  EXPECT_TRUE(h->notes.empty());
  ASSERT_EQ(h->steps.size(), 2u);
  EXPECT_EQ(h->steps[1].step, 2);
  EXPECT_DOUBLE_EQ(h->steps[1].loss, 1.5);
  EXPECT_DOUBLE_EQ(h->steps[1].samples_per_sec, 1100.5);
  EXPECT_FALSE(h->steps[0].grad_norm.has_value());  // no clip_grad: no "grad_norm"
  ASSERT_TRUE(h->steps[1].grad_norm.has_value());
  EXPECT_DOUBLE_EQ(*h->steps[1].grad_norm, 3.5);
  ASSERT_EQ(h->ranks.size(), 2u);
  EXPECT_DOUBLE_EQ(h->ranks[1].comm_exposed_s, 0.004);
  EXPECT_EQ(h->world_size(), 2);
  ASSERT_EQ(h->epochs.size(), 1u);
  EXPECT_DOUBLE_EQ(h->epochs[0].train_loss, 1.875);
  EXPECT_DOUBLE_EQ(*h->epochs[0].test_loss, 0.625);
  EXPECT_DOUBLE_EQ(*h->epochs[0].test_accuracy, 0.8125);
  EXPECT_DOUBLE_EQ(h->epochs[0].samples_per_sec, 1050);
  std::filesystem::remove(path);
}

TEST(MetricsHistory, AnEpochWithoutEvalHasNoTestFigures) {
  // launcher/worker/run.cc logs -1 when no eval ran after the epoch.
  const MetricsHistory h = parse_metrics(
      "{\"kind\":\"epoch\",\"epoch\":1,\"train_loss\":0.5,\"test_loss\":-1.000000,\"test_accuracy\":-1.000000,"
      "\"train_samples_per_sec\":10.0,\"lr\":0.1}\n",
      "m.jsonl");
  ASSERT_EQ(h.epochs.size(), 1u);
  EXPECT_FALSE(h.epochs[0].test_loss.has_value());
  EXPECT_FALSE(h.epochs[0].test_accuracy.has_value());
}

TEST(MetricsHistory, TheNewestLineOfAStepWins) {
  // A resumed run trains the steps after its checkpoint again and logs them again.
  const MetricsHistory h = parse_metrics(
      "{\"kind\":\"step\",\"epoch\":1,\"step\":1,\"loss\":1.0,\"samples_per_sec\":1,\"lr\":0.1}\n"
      "{\"kind\":\"step\",\"epoch\":1,\"step\":2,\"loss\":2.0,\"samples_per_sec\":1,\"lr\":0.1}\n"
      "{\"kind\":\"step\",\"epoch\":1,\"step\":2,\"loss\":3.0,\"samples_per_sec\":1,\"lr\":0.1}\n",
      "m.jsonl");
  ASSERT_EQ(h.steps.size(), 2u);
  EXPECT_DOUBLE_EQ(h.steps[1].loss, 3.0);
}

TEST(MetricsHistory, APartialLastLineIsLeftOutWithANote) {
  const std::string whole = "{\"kind\":\"step\",\"epoch\":1,\"step\":1,\"loss\":1.0,\"samples_per_sec\":1,\"lr\":0.1}\n";
  const MetricsHistory h = parse_metrics(whole + "{\"kind\":\"step\",\"epoch\":1,\"st", "metrics.jsonl");
  EXPECT_EQ(h.steps.size(), 1u);
  ASSERT_EQ(h.notes.size(), 1u);
  EXPECT_NE(h.notes[0].find("metrics.jsonl: the last line"), std::string::npos) << h.notes[0];
  EXPECT_NE(h.notes[0].find("incomplete"), std::string::npos) << h.notes[0];
}

TEST(MetricsHistory, ABadLineInTheMiddleIsNamedAndTheRestKept) {
  const std::string step = "{\"kind\":\"step\",\"epoch\":1,\"step\":%d,\"loss\":1.0,\"samples_per_sec\":1,\"lr\":0.1}\n";
  char a[128], b[128];
  std::snprintf(a, sizeof a, step.c_str(), 1);
  std::snprintf(b, sizeof b, step.c_str(), 2);
  const MetricsHistory h = parse_metrics(std::string(a) + "{\"kind\":\"step\",\"epoch\":\"one\"}\n" + b, "m.jsonl");
  EXPECT_EQ(h.steps.size(), 2u);
  ASSERT_EQ(h.notes.size(), 1u);
  EXPECT_NE(h.notes[0].find("m.jsonl: line 2 left out"), std::string::npos) << h.notes[0];
  EXPECT_EQ(h.lines, 3);
}

TEST(MetricsHistory, AMissingFileIsNoHistory) {
  EXPECT_FALSE(read_metrics(temp_path("absent.jsonl")).has_value());
}

}  // namespace
}  // namespace lockstep::report
