// How a launched job ends, and what it tells the user: the documented exit statuses (0 done,
// 1 a rank failed, 2 bad input, 3 stopped on request); a worker killed with SIGKILL is one line
// naming the rank, host and signal, with no backtrace; one SIGTERM delivered twice at once is one
// stop request, not a kill; heartbeats every 10 ms leave the summary's step counts true (they once
// read a freed Worker); a slow start is not a dead rank.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

using Teardown = LaunchTest;

// The rows of the summary's rank table: rank -> steps.
std::map<int, long> summary_steps(const std::string& out) {
  std::map<int, long> steps;
  std::istringstream in(out.substr(out.find(" rank host")));
  std::string line;
  std::getline(in, line);
  const std::regex row(R"(^\s*(\d+)\s+\S+\s+(\d+)\s+(-?\d+)\s+[-0-9.]+\s*$)");
  std::smatch m;
  while (std::getline(in, line))
    if (std::regex_match(line, m, row)) steps[std::stoi(m[1])] = std::stol(m[3]);
  return steps;
}

TEST_F(Teardown, HeartbeatsEvery10msLeaveTheSummaryTrue) {
  const std::string job =
      write_mlp_job(dir_.string(), 1, "control { heartbeat_interval_s: 0.01 heartbeat_timeout_s: 5 }\n");
  for (int trial = 0; trial < 2; ++trial) {
    const std::string run = path("run" + std::to_string(trial));
    auto p = start(job, run);
    ASSERT_EQ(p->wait(120), 0) << p->output();
    const auto steps = summary_steps(p->output());
    ASSERT_EQ(steps.size(), 2u) << p->output();
    for (const auto& [rank, n] : steps) EXPECT_EQ(n, 468) << "rank " << rank << "\n" << p->output();
  }
}

TEST_F(Teardown, AKilledWorkerIsOneLineNamingRankHostAndSignal) {
  const std::string job = write_mlp_job(dir_.string(), 3);
  auto p = start(job, path("run"));
  ASSERT_TRUE(p->wait_for_output("epoch 1/3  step", 60)) << p->output();
  pid_t victim = 0;
  for (pid_t w : worker_pids(process_tree(p->pid())))
    if (rank_of(w) == 1) victim = w;
  ASSERT_GT(victim, 0);
  ::kill(victim, SIGKILL);
  EXPECT_EQ(p->wait(30), 1) << p->output();
  const std::string out = p->output();
  EXPECT_NE(out.find("rank 1 (pid " + std::to_string(victim)), std::string::npos) << out;
  EXPECT_TRUE(out.find("signal 9") != std::string::npos || out.find("exited unexpectedly") != std::string::npos)
      << out;
  for (const char* noise : {"Segmentation fault", "backtrace", "[ 0]", "PMIx_Finalize", "-------"})
    EXPECT_EQ(out.find(noise), std::string::npos) << "\"" << noise << "\" reached the user:\n" << out;
}

TEST_F(Teardown, OneSigtermDeliveredTwiceAtOnceIsOneStop) {
  const std::string job = write_mlp_job(dir_.string(), 2);
  auto p = start(job, path("run"));
  ASSERT_TRUE(p->wait_for_output("epoch 1/2  step", 60)) << p->output();
  ::kill(p->pid(), SIGTERM);  // as `timeout` does: to the process, then to its group
  ::kill(p->pid(), SIGTERM);
  EXPECT_EQ(p->wait(60), 3) << p->output();
  EXPECT_NE(p->output().find("stopped on request"), std::string::npos) << p->output();
  EXPECT_EQ(p->output().find("killed on a second"), std::string::npos) << p->output();
  EXPECT_TRUE(fs::exists(path("run/checkpoints"))) << p->output();
}

// A stop takes effect within a bounded time, not a number of steps: with heartbeats every 60 s the
// STOP directive alone could wait that long; the local ranks hear the signal at once.
TEST_F(Teardown, ASigtermTakesEffectWithinSecondsWhateverTheHeartbeatInterval) {
  const std::string job =
      write_mlp_job(dir_.string(), 3, "control { heartbeat_interval_s: 60 heartbeat_timeout_s: 120 }\n");
  auto p = start(job, path("run"));
  ASSERT_TRUE(wait_until([&] { return fs::exists(path("run/metrics.jsonl")) && step_losses(path("run/metrics.jsonl")).size() > 5; }, 60))
      << p->output();
  const auto t0 = std::chrono::steady_clock::now();
  p->signal(SIGTERM);
  EXPECT_EQ(p->wait(60), 3) << p->output();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 10.0) << p->output();
}

TEST_F(Teardown, BadInputExitsTwoAndAFinishedJobZero) {
  auto bad = start(path("missing.textproto"), path("run"));
  EXPECT_EQ(bad->wait(30), 2) << bad->output();
  EXPECT_FALSE(fs::exists(path("run")));
}

// Heartbeats start at registration, on their own thread: data load and start-up on the full data
// set take longer than this timeout.
TEST_F(Teardown, ASlowStartIsNotADeadRank) {
  const std::string job =
      write_mlp_job(dir_.string(), 1, "control { heartbeat_interval_s: 0.2 heartbeat_timeout_s: 1 }\n");
  auto p = start(job, path("run"));
  EXPECT_EQ(p->wait(120), 0) << p->output();
}

// A local job listens on no network: in this (the host's) network namespace no process of the
// launch but the launcher itself (its coordinator, on 127.0.0.1) has a listening socket, and, as
// root, mpirun and the ranks run in a namespace of their own holding only loopback (`ss -ltnp`,
// `nsenter ... ip link`). Before, the ranks listened on 0.0.0.0 and mpirun on every interface.
TEST_F(Teardown, ALocalJobListensOnNoNetwork) {
  if (std::system("command -v ss >/dev/null 2>&1") != 0) GTEST_SKIP() << "no ss (iproute2)";
  const std::string job = write_mlp_job(dir_.string(), 2);
  auto p = start(job, path("run"));
  ASSERT_TRUE(p->wait_for_output("epoch 1/2  step", 60)) << p->output();
  const std::set<pid_t> tree = process_tree(p->pid());
  pid_t mpirun = 0;
  for (pid_t q : tree)
    if (read_text("/proc/" + std::to_string(q) + "/comm").rfind("mpirun", 0) == 0) mpirun = q;
  ASSERT_GT(mpirun, 0);
  const auto [st, ss] = run_command("ss -ltnpH", 10);
  ASSERT_EQ(st, 0) << ss;
  std::istringstream in(ss);
  for (std::string line; std::getline(in, line);)
    for (pid_t q : tree)
      if (line.find("pid=" + std::to_string(q) + ",") != std::string::npos) {
        EXPECT_EQ(q, p->pid()) << "a process of the job listens in the host's namespace: " << line;
        EXPECT_NE(line.find("127.0.0.1"), std::string::npos) << line;  // also as [::ffff:127.0.0.1]
      }
  if (::geteuid() == 0 && std::system("command -v nsenter >/dev/null 2>&1") == 0) {
    EXPECT_NE(fs::read_symlink("/proc/" + std::to_string(mpirun) + "/ns/net"), fs::read_symlink("/proc/self/ns/net"))
        << "mpirun runs in the host's network namespace";
    const auto [lst, links] = run_command("nsenter -t " + std::to_string(mpirun) + " -n ip -o link show", 10);
    ASSERT_EQ(lst, 0) << links;
    std::istringstream l(links);
    for (std::string line; std::getline(l, line);)
      EXPECT_NE(line.find(": lo:"), std::string::npos) << "an interface beside loopback: " << line;
  }
  p->signal(SIGTERM);
  EXPECT_EQ(p->wait(60), 3) << p->output();
}

}  // namespace
