// Reading run directories for the report: what is refused (one line naming the path), a directory
// with no metrics yet, checkpoints valid and damaged (written by write_checkpoint, then broken), the
// job from job.textproto escaped in the page, and where step lines sit on the epoch axis.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "launcher/report/html_report.h"
#include "launcher/report/report_charts.h"
#include "launcher/report/run_record.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"

namespace lockstep::report {
namespace {

namespace fs = std::filesystem;

class RunRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("lockstep_report_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& rel, const std::string& text) { std::ofstream(dir_ + "/" + rel) << text; }
  std::string refusal(const std::string& path) {
    try {
      read_run(path);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }
  std::string dir_;
};

TEST_F(RunRecordTest, ANonRunDirectoryIsRefusedInOneLineNamingThePath) {
  const std::string none = refusal(dir_);
  EXPECT_EQ(none.find(dir_ + ": not a lockstep run directory"), 0u) << none;
  const std::string absent = refusal(dir_ + "/nope");
  EXPECT_EQ(absent, dir_ + "/nope: no such run directory");
  write("file", "x");
  const std::string file = refusal(dir_ + "/file");
  EXPECT_EQ(file.find(dir_ + "/file: not a directory"), 0u) << file;
  for (const std::string& m : {none, absent, file}) {
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find("failed at"), std::string::npos) << m;  // no internal check's file:line
  }
}

TEST_F(RunRecordTest, ARunWithoutMetricsYetSaysSo) {
  write(".lock", "job tiny, pid 1 on host, since 2026-11-30 22:00:00 UTC\n");
  const RunRecord r = read_run(dir_);
  EXPECT_EQ(r.job_name, "tiny");  // from the lock holder: no job file, no checkpoint
  EXPECT_FALSE(r.running);        // nothing holds the lock
  EXPECT_FALSE(r.metrics.has_value());
  const std::string page = render_report(r, "now");
  EXPECT_NE(page.find("id=\"no-metrics\""), std::string::npos);
  EXPECT_NE(page.find("No checkpoints yet"), std::string::npos);
  EXPECT_EQ(page.find("<svg"), std::string::npos);
}

TEST_F(RunRecordTest, CheckpointsAreListedValidOrDamaged) {
  for (uint64_t step : {4, 8}) {
    Checkpoint c;
    c.state.set_step(step);
    c.state.set_epoch(static_cast<int64_t>(step / 4));
    c.state.set_world_size(2);
    c.state.set_optimizer_steps(static_cast<int64_t>(step));
    c.state.set_lr(0.1f);
    c.state.mutable_job()->set_name("from-checkpoint");
    c.state.mutable_job()->set_epochs(2);
    c.model = {{"0.weight", Tensor::zeros({3})}};
    write_checkpoint(dir_, c, 0);
  }
  // Damage the newest: a byte of its model flipped, so its CRC no longer matches.
  const std::string newest = dir_ + "/checkpoints/ckpt-000000008";
  {
    std::fstream f(newest + "/model.pb", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7f');
  }
  const RunRecord r = read_run(dir_);
  ASSERT_EQ(r.checkpoints.size(), 2u);
  EXPECT_FALSE(r.checkpoints[0].valid);
  EXPECT_NE(r.checkpoints[0].error.find("model.pb"), std::string::npos) << r.checkpoints[0].error;
  EXPECT_TRUE(r.checkpoints[1].valid) << r.checkpoints[1].error;
  EXPECT_EQ(r.checkpoints[1].step, 4u);
  EXPECT_EQ(r.checkpoints[1].epoch, 1);
  EXPECT_EQ(r.checkpoints[1].world_size, 2);
  // No job.textproto: the job is the valid checkpoint's.
  ASSERT_TRUE(r.job.has_value());
  EXPECT_EQ(r.job_name, "from-checkpoint");
  EXPECT_EQ(r.job_source, "checkpoint ckpt-000000004");
  const std::string page = render_report(r, "now");
  EXPECT_NE(page.find("damaged: "), std::string::npos);
  EXPECT_NE(page.find("end of epoch 1"), std::string::npos);
}

TEST_F(RunRecordTest, TheJobFileIsShownEscaped) {
  write("job.textproto", "name: \"x</pre><script>alert(1)</script>\"\nepochs: 3\n");
  write("metrics.jsonl",
        "{\"kind\":\"step\",\"epoch\":1,\"step\":1,\"loss\":2.0,\"samples_per_sec\":5,\"lr\":0.1}\n"
        "{\"kind\":\"epoch\",\"epoch\":1,\"train_loss\":2.0,\"test_loss\":1.5,\"test_accuracy\":0.5,"
        "\"train_samples_per_sec\":5.0,\"lr\":0.1,\"top_k_accuracy\":{\"5\":0.75}}\n");
  const RunRecord r = read_run(dir_);
  ASSERT_TRUE(r.job.has_value());
  EXPECT_EQ(r.job->epochs(), 3);
  const std::string page = render_report(r, "now");
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_NE(page.find("x&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
  EXPECT_NE(page.find("Not running: stopped or interrupted, epoch 1 of 3 done"), std::string::npos);
  EXPECT_NE(page.find("id=\"final-test-accuracy\">50.00%"), std::string::npos);
  EXPECT_NE(page.find("id=\"final-top-5\">75.00%"), std::string::npos);
}

TEST_F(RunRecordTest, AFailedRunStatesItsFailureAndExitStatusFromResultJson) {
  write("job.textproto", "name: \"f\"\nepochs: 3\n");
  write("metrics.jsonl",
        "{\"kind\":\"epoch\",\"epoch\":1,\"train_loss\":2.0,\"test_loss\":1.5,\"test_accuracy\":0.5,"
        "\"train_samples_per_sec\":5.0,\"lr\":0.1}\n");
  write("result.json", "{\"job\":\"f\",\"exit_status\":1,\"finished\":false,\"complete\":false,"
                       "\"failure\":\"rank 1 was killed by signal 9 (SIGKILL)\",\"epochs\":3,\"epoch\":1}\n");
  const RunRecord r = read_run(dir_);
  ASSERT_TRUE(r.result.has_value());
  const std::string page = render_report(r, "now");
  EXPECT_NE(page.find("Failed (exit status 1): rank 1 was killed by signal 9 (SIGKILL); epoch 1 of 3 done (no valid "
                      "checkpoint: a new launch starts it afresh)."),
            std::string::npos)
      << page.substr(0, 3000);
  EXPECT_EQ(page.find("Not running: stopped or interrupted"), std::string::npos);
  EXPECT_EQ(page.find("--resume continues"), std::string::npos) << "no checkpoint to resume from";

  write("result.json", "{\"exit_status\":3,\"finished\":true,\"complete\":false,\"failure\":\"\",\"epochs\":3}");
  EXPECT_NE(render_report(read_run(dir_), "now").find("Stopped on request (exit status 3), epoch 1 of 3 done"),
            std::string::npos);
  write("result.json", "{\"exit_status\":1,\n");  // cut off: a note in our words, the status from the rest
  const RunRecord cut = read_run(dir_);
  EXPECT_FALSE(cut.result.has_value());
  ASSERT_FALSE(cut.notes.empty());
  EXPECT_EQ(cut.notes.back(), "result.json: line 2: the JSON ends early (cut off?); not used");
}

TEST_F(RunRecordTest, ARunWithoutResultOrCheckpointDoesNotPromiseAResume) {
  write("job.textproto", "epochs: 3\n");
  write("metrics.jsonl",
        "{\"kind\":\"epoch\",\"epoch\":1,\"train_loss\":2.0,\"test_loss\":1.5,\"test_accuracy\":0.5,"
        "\"train_samples_per_sec\":5.0,\"lr\":0.1}\n");
  const std::string page = render_report(read_run(dir_), "now");
  EXPECT_NE(page.find("Not running: stopped or interrupted, epoch 1 of 3 done (no valid checkpoint"), std::string::npos);
}

TEST_F(RunRecordTest, FilesThatAreNotRegularAreNotesNotAHang) {
  write("job.textproto", "epochs: 3\n");
  ASSERT_EQ(::mkfifo((dir_ + "/metrics.jsonl").c_str(), 0600), 0);  // reading it would wait for a writer
  ASSERT_EQ(::mkfifo((dir_ + "/result.json").c_str(), 0600), 0);
  const RunRecord r = read_run(dir_);
  EXPECT_FALSE(r.metrics.has_value());
  const auto has = [&](const std::string& s) {
    return std::any_of(r.notes.begin(), r.notes.end(), [&](const std::string& n) { return n.find(s) != std::string::npos; });
  };
  EXPECT_TRUE(has("metrics.jsonl: is a FIFO, not a regular file; not read"));
  EXPECT_TRUE(has("result.json: is a FIFO, not a regular file; not read"));
}

TEST_F(RunRecordTest, ABadMetricsLineIsNamedInOurWords) {
  write("metrics.jsonl", "{\"kind\":\"epoch\",\n{\"kind\":\"step\"}\n");
  const RunRecord r = read_run(dir_);
  ASSERT_TRUE(r.metrics.has_value());
  ASSERT_FALSE(r.metrics->notes.empty());
  for (const std::string& n : r.metrics->notes) EXPECT_EQ(n.find("json.exception"), std::string::npos) << n;
  EXPECT_EQ(r.metrics->notes.front(), "metrics.jsonl: line 1 left out: the JSON ends early (cut off?)");
}

TEST(WorldSize, AnElasticRunNamesEachStretchOfEpochsWithItsRanks) {
  RunRecord r;
  r.metrics.emplace();
  for (int64_t e = 1; e <= 5; ++e)
    for (int k = 0; k < (e <= 2 ? 4 : 2); ++k) {
      RankRow row;
      row.epoch = e;
      row.rank = k;
      r.metrics->ranks.push_back(row);
    }
  const std::string page = render_report(r, "now");
  EXPECT_NE(page.find("2 (rank records of epoch 5); the run changed size: epochs 1-2 on 4, epochs 3-5 on 2"),
            std::string::npos);
}

TEST(StepPositions, StepsSitAtTheirFractionOfTheEpoch) {
  MetricsHistory m;
  for (int64_t s = 1; s <= 10; ++s) {
    m.steps.emplace_back();
    m.steps.back().epoch = (s - 1) / 4 + 1;
    m.steps.back().step = s;
  }
  m.epochs.resize(2);  // epochs 1 and 2 ended; epoch 3 is under way: 2 of 4 steps
  m.epochs[0].epoch = 1;
  m.epochs[1].epoch = 2;
  const std::vector<double> x = step_positions(m);
  ASSERT_EQ(x.size(), 10u);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_DOUBLE_EQ(x[i], static_cast<double>(i + 1) / 4) << "step " << i + 1;
}

}  // namespace
}  // namespace lockstep::report

namespace lockstep::report {
namespace {

TEST(RankChart, PastEightRanksTheSlowestMedianAndFastestAreDrawnNamingTheirRank) {
  MetricsHistory m;
  for (int64_t e = 1; e <= 2; ++e)
    for (int r = 0; r < 12; ++r) {
      RankRow row;
      row.epoch = e;
      row.rank = r;
      row.steps = 10;
      row.step_time_s = r == 5 ? 0.050 : 0.030 + 0.001 * r;  // rank 5 is slow; rank 0 the fastest
      row.comm_exposed_s = r == 7 ? 0.009 : 0.002;
      m.ranks.push_back(row);
    }
  const std::vector<ChartSpec> charts = report_charts(m);
  const auto it = std::find_if(charts.begin(), charts.end(), [](const ChartSpec& c) { return c.title.rfind("Step time", 0) == 0; });
  ASSERT_NE(it, charts.end());
  ASSERT_EQ(it->series.size(), 4u);
  const Series &slow = it->series[0], &mid = it->series[1], &fast = it->series[2], &comm = it->series[3];
  EXPECT_EQ(slow.name, "slowest rank");
  for (size_t k = 0; k < 2; ++k) {
    EXPECT_DOUBLE_EQ(slow.points[k].second, 50) << k;
    EXPECT_EQ(slow.labels[k], "rank 5");
    EXPECT_DOUBLE_EQ(fast.points[k].second, 30) << k;
    EXPECT_EQ(fast.labels[k], "rank 0");
    // Sorted times of 12 ranks: index 6 is rank 7 (ranks 0-4, 6, 7, ...: 5 is last).
    EXPECT_DOUBLE_EQ(mid.points[k].second, 37) << k;
    EXPECT_EQ(mid.labels[k], "rank 7");
    EXPECT_DOUBLE_EQ(comm.points[k].second, 9) << k;
    EXPECT_EQ(comm.labels[k], "rank 7");
  }
  EXPECT_NE(svg_line_chart(*it).find("slowest rank: epoch 2, 50.000 ms (rank 5)"), std::string::npos);
}

}  // namespace
}  // namespace lockstep::report
