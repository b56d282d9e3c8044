// A stop that lands on an epoch's last step (Note [stop at an epoch end] in launcher/worker/run.cc):
// the epoch's end (its epoch line and the plan's eval) runs before the checkpoint and the stop, so a
// resumed run has every epoch's line and eval, the same figures as the uninterrupted run, and a
// result.json with the real final test figures; a stop on the job's last step simply completes it.
// LOCKSTEP_TEST_TERMINATE_AT stops at an exact step (as a SIGTERM during that step would). Also:
// a launch whose stdout and stderr go into a pipe closed early still finishes (no SIGPIPE).
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

constexpr int kBatch = 12;
constexpr long kStepsPerEpoch = 16;

class EpochEndStop : public LaunchTest {
 protected:
  void SetUp() override {
    LaunchTest::SetUp();
    ::unsetenv("LOCKSTEP_TEST_TERMINATE_AT");
    const std::string data = path("data");
    fs::create_directories(data);
    for (const std::string split : {"train", "t10k"}) {
      const uint32_t n = split == "train" ? kStepsPerEpoch * kBatch : 120;
      std::ofstream(data + "/" + split + "-images-idx3-ubyte", std::ios::binary) << idx_bytes({n, 28, 28}, n * 784);
      std::string labels = idx_bytes({n}, 0);
      for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<char>(((i * 2654435761u) >> 13) % 10));
      std::ofstream(data + "/" + split + "-labels-idx1-ubyte", std::ios::binary) << labels;
    }
  }
  void TearDown() override {
    ::unsetenv("LOCKSTEP_TEST_TERMINATE_AT");
    LaunchTest::TearDown();
  }
  std::string job(int epochs) {
    const std::string p = path("job" + std::to_string(epochs) + ".textproto");
    std::ofstream(p) << "name: \"epoch-end\"\n"
                     << "model { input_shape: [1, 28, 28]\n"
                     << "  layers { flatten {} } layers { linear { in_features: 784 out_features: 32 } }\n"
                     << "  layers { batch_norm1d { num_features: 32 } } layers { relu {} }\n"
                     << "  layers { linear { in_features: 32 out_features: 10 } } }\n"
                     << "data { dir: \"" << path("data") << "\" }\n"
                     << "optimizer { lr: 0.02 sgd { momentum: 0.9 } }\n"
                     << "seed: 5\nepochs: " << epochs << "\nbatch_size: " << kBatch << "\n"
                     << "distributed { sync_batchnorm: true collective_timeout_s: 60 }\n"
                     << "phases { eval_every: 1 checkpoint_every: 1 }\n";
    return p;
  }
  // The "last_test_accuracy" figure of run/result.json, as printed ("" if none).
  std::string result_accuracy(const std::string& run) {
    std::smatch m;
    const std::string text = read_text(run + "/result.json");
    return std::regex_search(text, m, std::regex("\"last_test_accuracy\": *([^,\\n]+)")) ? m[1].str() : "";
  }
  int count_epoch_lines(const std::string& metrics, long epoch) {
    std::istringstream in(read_text(metrics));
    int n = 0;
    for (std::string line; std::getline(in, line);)
      n += line.find("\"kind\":\"epoch\",\"epoch\":" + std::to_string(epoch) + ",") != std::string::npos;
    return n;
  }
};

TEST_F(EpochEndStop, AStopAtAnEpochsLastStepRunsItsEvalFirstAndTheResumeHasEveryEpoch) {
  const std::string j = job(2);
  ASSERT_EQ(run(j, path("straight"), {}, 180), 0) << output_;
  const auto straight = epoch_figures(path("straight/metrics.jsonl"));
  ASSERT_EQ(straight.size(), 2u) << read_text(path("straight/metrics.jsonl"));

  ::setenv("LOCKSTEP_TEST_TERMINATE_AT", std::to_string(kStepsPerEpoch).c_str(), 1);  // epoch 1's last step
  ASSERT_EQ(run(j, path("stopped"), {}, 180), 3) << output_;
  ::unsetenv("LOCKSTEP_TEST_TERMINATE_AT");
  EXPECT_NE(output_.find("after epoch 1's end"), std::string::npos) << output_;
  // Epoch 1's line, with its eval, was written before the stop.
  EXPECT_EQ(epoch_figures(path("stopped/metrics.jsonl")).count(1), 1u) << read_text(path("stopped/metrics.jsonl"));

  ASSERT_EQ(run(j, path("stopped"), {"--resume"}, 180), 0) << output_;
  const std::string metrics = path("stopped/metrics.jsonl");
  const auto resumed = epoch_figures(metrics);
  EXPECT_EQ(resumed, straight) << read_text(metrics);  // train loss and test accuracy, to the last digit
  for (long e : {1L, 2L}) EXPECT_EQ(count_epoch_lines(metrics, e), 1) << "epoch " << e << "\n" << read_text(metrics);
  EXPECT_EQ(result_accuracy(path("stopped")), result_accuracy(path("straight")));
  EXPECT_NE(result_accuracy(path("straight")), "");
}

TEST_F(EpochEndStop, AStopAtTheJobsLastStepCompletesItWithTheRealFigures) {
  const std::string j = job(1);
  ASSERT_EQ(run(j, path("straight"), {}, 180), 0) << output_;
  ::setenv("LOCKSTEP_TEST_TERMINATE_AT", std::to_string(kStepsPerEpoch).c_str(), 1);
  ASSERT_EQ(run(j, path("stopped"), {}, 180), 0) << output_;
  ::unsetenv("LOCKSTEP_TEST_TERMINATE_AT");
  EXPECT_NE(output_.find("the job is complete"), std::string::npos) << output_;
  EXPECT_EQ(epoch_figures(path("stopped/metrics.jsonl")), epoch_figures(path("straight/metrics.jsonl")));
  const std::string result = read_text(path("stopped/result.json"));
  EXPECT_NE(result.find("\"complete\": true"), std::string::npos) << result;
  EXPECT_EQ(result_accuracy(path("stopped")), result_accuracy(path("straight"))) << result;
  EXPECT_NE(result_accuracy(path("stopped")), "0.0") << result;
}

// `lockstep ctl stop` landing on epoch 1's last step: each step of rank 0 takes a second
// (LOCKSTEP_TEST_STEP_DELAY), and the stop is sent as soon as step 15's line is written (at the
// boundary before step 16), so rank 0 sees it, through heartbeats every 0.05 s, at the boundary
// after step 16: the STOP directive waits for epoch 1's end, as a signal does.
TEST_F(EpochEndStop, ACtlStopAtAnEpochsLastStepRunsItsEvalFirst) {
  const std::string j = job(2);
  std::ofstream(j, std::ios::app) << "control { heartbeat_interval_s: 0.05 }\n";
  ASSERT_EQ(run(j, path("straight"), {}, 180), 0) << output_;
  const std::string run_dir = path("stopped");
  ::setenv("LOCKSTEP_TEST_STEP_DELAY", "0:1", 1);
  auto p = start(j, run_dir);
  ::unsetenv("LOCKSTEP_TEST_STEP_DELAY");
  ASSERT_TRUE(wait_until([&] { return step_losses(run_dir + "/metrics.jsonl").count(kStepsPerEpoch - 1) > 0; }, 120))
      << p->output();
  const auto [st, out] = run_command(lockstep_exe() + " ctl stop --run-dir " + run_dir, 30);
  EXPECT_EQ(st, 0) << out;
  ASSERT_EQ(p->wait(120), 3) << p->output();
  const std::string metrics = run_dir + "/metrics.jsonl";
  EXPECT_EQ(step_losses(metrics).size(), static_cast<size_t>(kStepsPerEpoch)) << "the stop landed elsewhere\n"
                                                                              << p->output();
  EXPECT_EQ(count_epoch_lines(metrics, 1), 1) << read_text(metrics);
  ASSERT_EQ(run(j, run_dir, {"--resume"}, 180), 0) << output_;
  EXPECT_EQ(epoch_figures(metrics), epoch_figures(path("straight/metrics.jsonl"))) << read_text(metrics);
  EXPECT_EQ(count_epoch_lines(metrics, 1), 1) << read_text(metrics);
  EXPECT_EQ(result_accuracy(run_dir), result_accuracy(path("straight")));
}

// `lockstep launch ... 2>&1 | head -c 1`: the reader goes after one byte; the launcher's later
// writes fail with EPIPE, and the job still runs to its end and writes result.json.
TEST_F(EpochEndStop, ALaunchWritingIntoAClosedPipeFinishesTheJob) {
  const std::string j = job(2);
  const std::string rc = path("rc");
  const std::string cmd = "bash -c '" + lockstep_exe() + " launch -n 2 " + j + " --run-dir " + path("piped") +
                          " 2>&1 | head -c 1 >/dev/null; echo ${PIPESTATUS[0]} > " + rc + "'";
  const auto [st, out] = run_command(cmd, 180);
  ASSERT_EQ(st, 0) << out;
  EXPECT_EQ(read_text(rc), "0\n") << read_text(path("piped") + "/launch.log");
  const std::string result = read_text(path("piped/result.json"));
  EXPECT_NE(result.find("\"complete\": true"), std::string::npos) << result;
}

}  // namespace
