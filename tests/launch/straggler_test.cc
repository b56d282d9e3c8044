// A straggler in a launched job: rank 1 of 2 sleeps LOCKSTEP_TEST_STEP_DELAY seconds in each step.
// Both ranks' steps take as long (rank 0 waits for rank 1 in the collectives), but rank 1's
// compute time is the one above the median rank's: the launcher names rank 1 (never rank 0) on its
// progress line and in `lockstep ctl status`, the job still runs to its end, and metrics.jsonl
// holds each rank's median step time, exposed communication and compute time per epoch.
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <map>
#include <regex>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

constexpr double kDelayS = 0.08;

TEST(LaunchStraggler, SlowRankIsNamedAndTheJobCompletes) {
  ::unsetenv("LOCKSTEP_TOKEN");
  ::unsetenv("LOCKSTEP_TOKEN_FILE");
  const fs::path dir = fs::temp_directory_path() / ("lockstep_straggler_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string run = (dir / "run").string();
  // 60000 / 2048 = 29 steps per epoch; a window of 10 steps fills early in epoch 1.
  std::string job = write_mlp_job(dir.string(), 3, "control { straggler_window_steps: 10 }\n");
  {  // a global batch of 2048 instead of 128: few steps, each long enough to measure
    std::string text = read_text(job);
    text = std::regex_replace(text, std::regex("batch_size: 128"), "batch_size: 2048");
    std::ofstream(job) << text;
  }
  ::setenv("LOCKSTEP_TEST_STEP_DELAY", ("1:" + std::to_string(kDelayS)).c_str(), 1);
  ChildProcess launch({lockstep_exe(), "launch", "-n", "2", job, "--run-dir", run}, run + ".log");
  ::unsetenv("LOCKSTEP_TEST_STEP_DELAY");
  ASSERT_TRUE(launch.wait_for_output("epoch 1/3  step", 90)) << launch.output();
  std::smatch m;
  const std::string head = launch.output();
  ASSERT_TRUE(std::regex_search(head, m, std::regex("coordinator (127\\.0\\.0\\.1:[0-9]+)"))) << head;
  const std::string status = lockstep_exe() + " ctl status --coordinator " + m[1].str() + " --token-file " + run +
                             "/token";
  std::string seen;
  const bool named = wait_until(
      [&] {
        const auto [st, out] = run_command(status, 20);
        if (st != 0) return false;
        seen = out;
        return out.find("straggler: rank 1 (host ") != std::string::npos;
      },
      60);
  EXPECT_TRUE(named) << "last status:\n" << seen << "\nlaunch output:\n" << launch.output();
  EXPECT_EQ(seen.find("straggler: rank 0"), std::string::npos) << seen;

  EXPECT_EQ(launch.wait(90), 0) << launch.output();  // a straggler does not fail the job
  const std::string out = launch.output();
  EXPECT_TRUE(std::regex_search(out, std::regex("epoch [23]/3  step [^\n]*  straggler: rank 1 \\(host ")))
      << "the progress line names the straggler:\n" << out;
  EXPECT_EQ(out.find("straggler: rank 0"), std::string::npos) << out;

  // metrics.jsonl: per epoch, one line per rank. Rank 1's compute carries the delay; rank 0 waits it
  // out in communication; both ranks' steps are at least the delay long.
  const std::string metrics = read_text(run + "/launch-test.metrics.jsonl").empty()
                                  ? read_text(run + "/metrics.jsonl")
                                  : read_text(run + "/launch-test.metrics.jsonl");
  const std::regex re(
      "\\{\"kind\":\"rank\",\"epoch\":([0-9]+),\"rank\":([0-9]+),\"steps\":([0-9]+),\"step_time_s\":([^,]+),"
      "\"comm_exposed_s\":([^,]+),\"compute_s\":([^}]+)\\}");
  std::map<std::pair<int, int>, std::array<double, 4>> rows;  // (epoch, rank) -> steps, step, comm, compute
  for (auto it = std::sregex_iterator(metrics.begin(), metrics.end(), re); it != std::sregex_iterator(); ++it)
    rows[{std::stoi((*it)[1]), std::stoi((*it)[2])}] = {std::stod((*it)[3]), std::stod((*it)[4]),
                                                        std::stod((*it)[5]), std::stod((*it)[6])};
  ASSERT_EQ(rows.size(), 6u) << metrics;
  for (int e = 1; e <= 3; ++e) {
    const auto& r0 = rows[{e, 0}];
    const auto& r1 = rows[{e, 1}];
    EXPECT_EQ(r0[0], 28) << "epoch " << e << ": 29 steps, the first one after the epoch end not timed";
    EXPECT_EQ(r1[0], 28);
    for (const auto* r : {&r0, &r1}) {
      EXPECT_GE((*r)[1], kDelayS) << "epoch " << e << ": every rank's step lasts the slow rank's";
      EXPECT_NEAR((*r)[1], (*r)[2] + (*r)[3], 0.5 * (*r)[1]) << "step ~ comm + compute (medians)";
    }
    EXPECT_GT(r1[3] - r0[3], 0.5 * kDelayS) << "epoch " << e << ": rank 1's compute carries the delay";
    EXPECT_GT(r0[2], 0.5 * kDelayS) << "epoch " << e << ": rank 0 waits for rank 1";
  }
  fs::remove_all(dir);
}

}  // namespace
