// More of what `lockstep launch` watches and offers: a worker that stops answering (SIGSTOP: alive,
// but no heartbeat) fails the job after the job's heartbeat deadline, naming its rank, with nothing left
// running; and a job whose coordinator serves TLS (--tls-cert/--tls-key) runs to the end, its
// workers verifying the certificate, while a plaintext `lockstep ctl` is refused.
#include <gtest/gtest.h>

#include <regex>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

using Supervision = TestDirectory;

// The job's control { heartbeat_timeout_s: 4 } sets the deadline.
TEST_F(Supervision, SilentWorkerFailsTheJobAtTheHeartbeatDeadline) {
  const std::string job = write_mlp_job(dir_.string(), 20, "control { heartbeat_timeout_s: 4 }\n");
  ChildProcess launch({lockstep_exe(), "launch", "-n", "2", job, "--run-dir", path("run")}, path("run.log"));
  ASSERT_TRUE(launch.wait_for_output("epoch 1/20  step", 60)) << launch.output();
  const std::set<pid_t> tree = process_tree(launch.pid());
  pid_t victim = -1;
  for (pid_t w : worker_pids(tree))
    if (rank_of(w) == 1) victim = w;
  ASSERT_GT(victim, 0);
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(victim, SIGSTOP);
  const int st = launch.wait(40);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::kill(victim, SIGKILL);  // in case it was left (it must not be)
  const std::string out = launch.output();
  EXPECT_NE(st, 0) << out;
  EXPECT_NE(st, -1) << "the launch did not end:\n" << out;
  EXPECT_GE(secs, 3.5) << "failed before the 4 s heartbeat deadline:\n" << out;
  EXPECT_LT(secs, 4.0 + 8.0) << out;  // the deadline, then the process group's end on a loaded machine
  EXPECT_NE(out.find("rank 1"), std::string::npos) << out;
  EXPECT_NE(out.find("no heartbeat"), std::string::npos) << out;
  for (pid_t pid : tree) {
    if (pid == victim) continue;
    EXPECT_TRUE(wait_until([&] { return !process_alive(pid); }, 2)) << "pid " << pid << " left";
  }
}

TEST_F(Supervision, TlsCoordinatorRunsTheJobAndRefusesPlaintext) {
  if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl to make a certificate";
  const std::string cert = path("cert.pem"), key = path("key.pem");
  const auto [gen, gen_out] = run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
                                          "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert, 60);
  ASSERT_EQ(gen, 0) << gen_out;
  const std::string job = write_mlp_job(dir_.string(), 4);  // seconds per epoch: running while ctl calls
  ChildProcess launch({lockstep_exe(), "launch", "-n", "2", job, "--run-dir", path("run"), "--tls-cert", cert,
                       "--tls-key", key},
                      path("run.log"));
  ASSERT_TRUE(launch.wait_for_output("coordinator 127.0.0.1:", 30)) << launch.output();
  std::smatch m;
  const std::string head = launch.output();
  ASSERT_TRUE(std::regex_search(head, m, std::regex("coordinator (127\\.0\\.0\\.1:[0-9]+)"))) << head;
  const std::string ctl = lockstep_exe() + " ctl status --coordinator " + m[1].str() + " --token-file " + path("run/token");
  const auto [plain, plain_out] = run_command(ctl, 20);
  EXPECT_NE(plain, 0) << "a plaintext client was served:\n" << plain_out;
  const auto [tls, tls_out] = run_command(ctl + " --tls-ca " + cert, 20);
  EXPECT_EQ(tls, 0) << tls_out;
  EXPECT_EQ(launch.wait(120), 0) << launch.output();
  EXPECT_NE(launch.output().find("final test accuracy 0.8"), std::string::npos) << launch.output();
}

}  // namespace
