// `lockstep ctl` against a `lockstep coordinator` process: the two credential files it makes (and
// says how to hand out), refusals without or with a wrong token (the worker secret is one), status
// and directive queueing, --wait with a stand-in rank 0 (an in-process client that acts on
// directives), and how the coordinator ends on STOP and SIGTERM.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "launcher/coordinator/client.h"
#include "tests/control/control_test_util.h"
#include "tests/control/process_util.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;
using testing::ChildProcess;
using testing::run_command;

const std::string kLockstep = std::string(LOCKSTEP_BINARY_DIR) + "/launcher/lockstep";
const std::string kJob = std::string(LOCKSTEP_SOURCE_DIR) + "/launcher/jobs/fmnist-cnn-ddp.textproto";

class CtlCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kLockstep)) GTEST_SKIP() << "build the lockstep target first (" << kLockstep << ")";
    dir_ = fs::temp_directory_path() / ("lockstep-ctl-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    token_file_ = (dir_ / "run" / "token").string();
    secret_file_ = (dir_ / "run" / "worker_secret").string();
    coord_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{kLockstep, "coordinator", kJob, "-n", "2", "--run-dir", (dir_ / "run").string()},
        (dir_ / "coordinator.log").string());
    ASSERT_TRUE(coord_->wait_for_output("coordinator listening on", 30)) << coord_->output();
    std::smatch m;
    const std::string out = coord_->output();
    ASSERT_TRUE(std::regex_search(out, m, std::regex("listening on (\\S+) \\(token in (\\S+)\\)"))) << out;
    address_ = m[1];
    EXPECT_EQ(m[2], token_file_);
    // How the workers get their secret, and that ctl takes the token.
    EXPECT_NE(out.find("LOCKSTEP_WORKER_SECRET_FILE=" + secret_file_ + " mpirun -x LOCKSTEP_WORKER_SECRET_FILE"),
              std::string::npos) << out;
    EXPECT_NE(out.find("--token-file " + token_file_), std::string::npos) << out;
  }
  void TearDown() override {
    coord_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::pair<int, std::string> ctl(const std::string& args, const std::string& env = "") {
    return run_command("env -u LOCKSTEP_TOKEN -u LOCKSTEP_TOKEN_FILE " + env + " " + kLockstep + " ctl " + args +
                       " --coordinator " + address_);
  }
  std::string token() { return read_token(token_file_); }
  std::string secret() { return read_worker_secret(secret_file_); }

  fs::path dir_;
  std::string token_file_, secret_file_, address_;
  std::unique_ptr<ChildProcess> coord_;
};

// Rank 0 of a job that does nothing but register and answer directives: EVAL with accuracy 0.5 +
// id / 100, CHECKPOINT with a path, STOP (a ctl stop, not the job's last epoch: finished = false).
class FakeRank0 {
 public:
  FakeRank0(const std::string& address, const std::string& secret) : client_(options(address, secret)) {
    client_.register_worker(testing::register_request(0, 2), 10);
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeRank0() {
    done_ = true;
    thread_.join();
  }

 private:
  static ClientOptions options(const std::string& address, const std::string& token) {
    ClientOptions o;
    o.address = address;
    o.token = token;
    return o;
  }
  void loop() {
    uint64_t phase = 0;
    while (!done_) {
      try {
        const proto::HeartbeatReply h = client_.heartbeat_now(0, {});
        for (const proto::Directive& d : h.pending()) {
          proto::PhaseReport r;
          r.set_phase_id(++phase);
          r.set_kind(d.kind());
          r.set_directive_id(d.id());
          r.set_test_accuracy(0.5 + d.id() / 100.0);
          if (d.kind() == proto::CHECKPOINT) r.set_checkpoint("/ckpt/" + std::to_string(d.id()));
          client_.report_phase(r);
        }
      } catch (const Error&) {  // the coordinator ended: nothing left to do
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  CoordinatorClient client_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

TEST_F(CtlCli, TokenFileIsPrivate) {
  for (const std::string& f : {token_file_, secret_file_}) {
    struct stat st {};
    ASSERT_EQ(::stat(f.c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  EXPECT_TRUE(std::regex_match(token(), std::regex("[0-9a-f]{64}"))) << token();
  EXPECT_TRUE(std::regex_match(secret(), std::regex("[0-9a-f]{64}"))) << secret();
  EXPECT_NE(token(), secret());
}

TEST_F(CtlCli, WorkerSecretIsNoCtlToken) {
  for (const std::string cmd : {"status", "stop"}) {
    auto [rc, out] = ctl(cmd + " --token-file " + secret_file_);
    EXPECT_EQ(rc, 3) << cmd << ": " << out;
    EXPECT_NE(out.find("PERMISSION_DENIED"), std::string::npos) << cmd << ": " << out;
    EXPECT_NE(out.find("Control needs the user token"), std::string::npos) << cmd << ": " << out;
    EXPECT_EQ(out.find(secret()), std::string::npos) << "the secret was printed: " << out;
  }
  auto [rc, out] = ctl("status --token-file " + token_file_);
  EXPECT_EQ(out.find("pending"), std::string::npos) << out;
}

TEST_F(CtlCli, RefusesMissingAndWrongToken) {
  auto [rc, out] = ctl("status");
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("lockstep ctl: UNAUTHENTICATED"), std::string::npos) << out;

  const std::string wrong = (dir_ / "wrong").string();
  std::ofstream(wrong) << std::string(64, 'a') << "\n";
  for (const std::string cmd : {"status", "eval", "stop"}) {
    std::tie(rc, out) = ctl(cmd + " --token-file " + wrong);
    EXPECT_EQ(rc, 3) << cmd << ": " << out;
    EXPECT_NE(out.find("UNAUTHENTICATED"), std::string::npos) << cmd << ": " << out;
  }
  std::tie(rc, out) = ctl("status", "LOCKSTEP_TOKEN=" + std::string(63, 'b'));
  EXPECT_EQ(rc, 3) << out;

  std::tie(rc, out) = ctl("status --token-file " + token_file_);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("pending"), std::string::npos) << "a refused eval/stop was queued:\n" << out;
}

TEST_F(CtlCli, StatusAndQueuedDirectives) {
  auto [rc, out] = ctl("status --token-file " + token_file_);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("job fmnist-cnn-ddp: phase TRAIN"), std::string::npos) << out;
  EXPECT_NE(out.find("0/2 ranks registered"), std::string::npos) << out;

  std::tie(rc, out) = ctl("eval", "LOCKSTEP_TOKEN=" + token());
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("queued EVAL as directive 1"), std::string::npos) << out;
  std::tie(rc, out) = ctl("checkpoint", "LOCKSTEP_TOKEN_FILE=" + token_file_);
  EXPECT_NE(out.find("queued CHECKPOINT as directive 2"), std::string::npos) << out;

  std::tie(rc, out) = ctl("status --token-file " + token_file_);
  EXPECT_NE(out.find("pending: directive 1 EVAL\npending: directive 2 CHECKPOINT"), std::string::npos) << out;

  testing::Stopwatch w;  // no worker: --wait gives up after its time
  std::tie(rc, out) = ctl("eval --wait 1 --token-file " + token_file_);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("not run within 1 s"), std::string::npos) << out;
  EXPECT_LT(w.seconds(), 10);
}

TEST_F(CtlCli, WaitPrintsResultAndStopEndsCoordinator) {
  FakeRank0 rank0(address_, secret());
  auto [rc, out] = ctl("eval --wait 20 --token-file " + token_file_);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("(directive 1)"), std::string::npos) << out;
  EXPECT_NE(out.find("accuracy 0.5100"), std::string::npos) << out;  // 0.5 + id / 100
  std::tie(rc, out) = ctl("checkpoint --wait 20 --token-file " + token_file_);
  EXPECT_NE(out.find("checkpoint /ckpt/2"), std::string::npos) << out;
  std::tie(rc, out) = ctl("status --token-file " + token_file_);
  EXPECT_NE(out.find("1/2 ranks registered"), std::string::npos) << out;
  EXPECT_NE(out.find("last checkpoint: /ckpt/2"), std::string::npos) << out;

  std::tie(rc, out) = ctl("stop --wait 20 --token-file " + token_file_);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(coord_->wait(15), 0) << coord_->output();
  EXPECT_NE(coord_->output().find("job fmnist-cnn-ddp stopped"), std::string::npos) << coord_->output();
}

TEST_F(CtlCli, SigtermStopsJobThenExits) {
  {
    FakeRank0 rank0(address_, secret());
    coord_->signal(SIGTERM);
    EXPECT_EQ(coord_->wait(30), 0) << coord_->output();  // rank 0 ran the STOP: a clean end
  }
  EXPECT_NE(coord_->output().find("asked job fmnist-cnn-ddp to STOP"), std::string::npos) << coord_->output();
}

// A script's way in: the run directory alone (coordinator.json and token), `ctl watch` to the end,
// then result.json, and no address left behind.
TEST_F(CtlCli, RunDirFindsTheCoordinatorAndWatchSeesTheEnd) {
  const std::string run = (dir_ / "run").string();
  const std::string ctl_env = "env -u LOCKSTEP_TOKEN -u LOCKSTEP_TOKEN_FILE " + kLockstep + " ctl ";
  auto [rc, out] = run_command(ctl_env + "status --run-dir " + run);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("fmnist-cnn-ddp"), std::string::npos) << out;
  std::tie(rc, out) = run_command(ctl_env + "status --run-dir " + run + " --coordinator " + address_);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("give one of them"), std::string::npos) << out;

  ChildProcess watch({kLockstep, "ctl", "watch", "--run-dir", run, "--interval", "0.2"},
                     (dir_ / "watch.log").string());
  ASSERT_TRUE(watch.wait_for_output("1 STATUS phase TRAIN, 0/2 ranks registered", 20)) << watch.output();
  {
    FakeRank0 rank0(address_, secret());
    ASSERT_TRUE(watch.wait_for_output("RANK_REGISTERED rank 0", 20)) << watch.output();
    std::tie(rc, out) = run_command(ctl_env + "stop --wait 20 --run-dir " + run);
    EXPECT_EQ(rc, 0) << out;
    EXPECT_EQ(coord_->wait(15), 0) << coord_->output();
  }
  EXPECT_EQ(watch.wait(10), 0) << watch.output();
  EXPECT_NE(watch.output().find("DIRECTIVE STOP queued as directive 1"), std::string::npos) << watch.output();
  EXPECT_NE(watch.output().find("FINISHED job fmnist-cnn-ddp stopped (exit status 0)"), std::string::npos)
      << watch.output();

  EXPECT_FALSE(fs::exists(run + "/coordinator.json")) << "the address outlived the coordinator";
  std::ifstream in(run + "/result.json");
  const std::string result((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(result.find("\"exit_status\": 0"), std::string::npos) << result;
  EXPECT_NE(result.find("\"finished\": true"), std::string::npos) << result;
  EXPECT_NE(result.find("\"complete\": false"), std::string::npos) << result;
  std::tie(rc, out) = run_command(ctl_env + "status --run-dir " + run);
  EXPECT_EQ(rc, 4) << out;
  EXPECT_NE(out.find("no coordinator.json there"), std::string::npos) << out;
}

TEST_F(CtlCli, SigtermWithoutRanksExitsAtOnce) {
  testing::Stopwatch w;
  coord_->signal(SIGTERM);
  EXPECT_EQ(coord_->wait(10), 128 + SIGTERM) << coord_->output();
  EXPECT_LT(w.seconds(), 5);
  std::ifstream in((dir_ / "run" / "result.json").string());
  const std::string result((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(result.find("\"exit_status\": " + std::to_string(128 + SIGTERM)), std::string::npos) << result;
}

}  // namespace
}  // namespace lockstep
