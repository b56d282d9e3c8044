// A cluster-style job: `lockstep coordinator` started on its own, workers started by mpirun with
// `lockstep worker --coordinator HOST:PORT`. It trains; when the coordinator is SIGKILLed, every
// worker stops within its deadline (the job's heartbeat_timeout_s, 3 s here) with a message naming
// the coordinator it lost, mpirun ends (a few seconds more on a loaded machine), and no worker
// process is left.
#include <gtest/gtest.h>

#include <cstdlib>
#include <regex>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

TEST(ClusterJob, WorkersStopWithinTheirDeadlineWhenTheCoordinatorDies) {
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0) GTEST_SKIP() << "no mpirun";
  const fs::path dir = fs::temp_directory_path() / ("lockstep_lost_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string run = (dir / "run").string();
  const std::string job = write_mlp_job(dir.string(), 50, "control { heartbeat_timeout_s: 3 }\n");
  ChildProcess coordinator({lockstep_exe(), "coordinator", job, "-n", "2", "--run-dir", run}, run + ".coordinator.log");
  ASSERT_TRUE(coordinator.wait_for_output("coordinator listening on", 30)) << coordinator.output();
  std::smatch m;
  const std::string head = coordinator.output();
  ASSERT_TRUE(std::regex_search(head, m, std::regex("listening on (\\S+)"))) << head;

  ::setenv("LOCKSTEP_WORKER_SECRET_FILE", (run + "/worker_secret").c_str(), 1);  // the workers' credential
  std::string mpirun_exe = "/usr/bin/mpirun";
  ChildProcess workers({mpirun_exe, "--oversubscribe", "--allow-run-as-root", "--bind-to", "none", "--mca", "btl",
                        "self,vader,tcp", "-np", "2", lockstep_exe(), "worker", "--coordinator", m[1].str()},
                       run + ".workers.log");
  ::unsetenv("LOCKSTEP_WORKER_SECRET_FILE");
  // Training: rank 0 writes per-step metrics.
  ASSERT_TRUE(wait_until([&] { return step_losses(run + "/metrics.jsonl").size() > 20; }, 60))
      << workers.output() << coordinator.output();
  const std::set<pid_t> tree = process_tree(workers.pid());

  const auto t0 = std::chrono::steady_clock::now();
  coordinator.signal(SIGKILL);
  const int st = workers.wait(30);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string out = workers.output();
  EXPECT_NE(st, 0) << out;
  EXPECT_NE(st, -1) << "the workers did not stop within 30 s:\n" << out;
  EXPECT_LT(secs, 3.0 + 6.0) << out;
  // Heartbeats time out ("lost the coordinator at ADDR"), or rank 0's next call fails first.
  EXPECT_NE(out.find("coordinator at " + m[1].str()), std::string::npos) << out;
  for (pid_t pid : tree)
    EXPECT_TRUE(wait_until([&] { return !process_alive(pid); }, 2)) << "pid " << pid << " left behind";
  fs::remove_all(dir);
}

}  // namespace
