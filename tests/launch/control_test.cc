// `lockstep ctl` against a running `lockstep launch` on 2 ranks: refused without the token or with
// a wrong one (UNAUTHENTICATED, exit 3, nothing changes); with it, checkpoint and eval run at the
// next step boundary (a mid-epoch checkpoint appears; eval reports an accuracy), pause holds the
// steps still until resume, and stop ends the job cleanly after a checkpoint.
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

long newest_step(const std::string& run) {
  long step = -1;
  if (fs::exists(run + "/checkpoints"))
    for (const auto& e : fs::directory_iterator(run + "/checkpoints")) {
      const std::string n = e.path().filename().string();
      if (n.rfind("ckpt-", 0) == 0 && n.find(".tmp") == std::string::npos) step = std::max(step, std::stol(n.substr(5)));
    }
  return step;
}

long rank0_step(const std::string& status_text) {
  std::smatch m;
  // The rank table's row of rank 0: rank host pid epoch step ...
  if (std::regex_search(status_text, m, std::regex("\n +0 +\\S+ +[0-9]+ +[0-9]+ +([0-9]+) "))) return std::stol(m[1]);
  return -1;
}

TEST(LaunchControl, CtlNeedsTheTokenAndRunsPhasesAtTheNextStep) {
  ::unsetenv("LOCKSTEP_TOKEN");
  ::unsetenv("LOCKSTEP_TOKEN_FILE");
  const fs::path dir = fs::temp_directory_path() / ("lockstep_ctl_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string run = (dir / "run").string();
  const std::string job = write_mlp_job(dir.string(), 20, "phases { checkpoint_every: 100 eval_every: 100 }\n");
  ChildProcess launch({lockstep_exe(), "launch", "-n", "2", job, "--run-dir", run}, run + ".log");
  ASSERT_TRUE(launch.wait_for_output("epoch 1/20  step", 60)) << launch.output();
  std::smatch m;
  const std::string head = launch.output();
  ASSERT_TRUE(std::regex_search(head, m, std::regex("coordinator (127\\.0\\.0\\.1:[0-9]+)"))) << head;
  const std::string ctl = lockstep_exe() + " ctl ";
  const std::string at = " --coordinator " + m[1].str();
  const std::string token = " --token-file " + run + "/token";

  // No token, a wrong one of the same length, a short one: refused, and nothing was queued.
  std::ofstream(dir / "wrong") << std::string(64, 'a') << "\n";
  std::ofstream(dir / "short") << "abc\n";
  for (const std::string& bad : {std::string(""), " --token-file " + (dir / "wrong").string(),
                                 " --token-file " + (dir / "short").string()}) {
    const auto [st, out] = run_command(ctl + "checkpoint" + at + bad, 20);
    EXPECT_EQ(st, 3) << out;
    EXPECT_NE(out.find("UNAUTHENTICATED"), std::string::npos) << out;
  }
  const auto [st0, status0] = run_command(ctl + "status" + at + token, 20);
  ASSERT_EQ(st0, 0) << status0;
  EXPECT_EQ(status0.find("pending"), std::string::npos) << "a refused call queued something:\n" << status0;
  EXPECT_EQ(newest_step(run), -1);

  // checkpoint: at the next step boundary, mid-epoch, on every rank (rank 0 writes it).
  const auto [st1, out1] = run_command(ctl + "checkpoint" + at + token + " --wait 60", 70);
  ASSERT_EQ(st1, 0) << out1;
  const long ck = newest_step(run);
  EXPECT_GT(ck, 0) << out1;
  EXPECT_NE(out1.find("ckpt-"), std::string::npos) << out1;

  const auto [st2, out2] = run_command(ctl + "eval" + at + token + " --wait 60", 70);
  ASSERT_EQ(st2, 0) << out2;
  EXPECT_TRUE(std::regex_search(out2, std::regex("accuracy[^0-9]*0\\.[5-9]"))) << out2;

  // pause: the steps stand still until resume.
  ASSERT_EQ(run_command(ctl + "pause" + at + token + " --wait 60", 70).first, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // heartbeats (0.5 s) catch up
  const long s1 = rank0_step(run_command(ctl + "status" + at + token, 20).second);
  ASSERT_GT(s1, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const long s2 = rank0_step(run_command(ctl + "status" + at + token, 20).second);
  EXPECT_EQ(s1, s2) << "steps advanced while paused";
  ASSERT_EQ(run_command(ctl + "resume" + at + token, 20).first, 0);
  EXPECT_TRUE(wait_until([&] { return rank0_step(run_command(ctl + "status" + at + token, 20).second) > s2; }, 20))
      << "no step after resume";

  // stop: a checkpoint at the agreed step, then every process exits cleanly.
  ASSERT_EQ(run_command(ctl + "stop" + at + token, 20).first, 0);
  EXPECT_EQ(launch.wait(60), 3) << "stopped on request exits 3\n" << launch.output();
  EXPECT_GT(newest_step(run), ck);
  EXPECT_NE(launch.output().find("stopped on request"), std::string::npos) << launch.output();
  fs::remove_all(dir);
}

}  // namespace
