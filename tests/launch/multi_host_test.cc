// Several hosts on one machine: two network namespaces joined by a veth pair (tests/launch/netns.h)
// play two hosts, and `lockstep agent` is mpirun's rsh agent that starts orted in the other one.
// A 2-rank job on one host and the same job with one rank per host must agree to the last bit
// (per-step losses, final weights), and the veth's byte counters show the gradients crossed it.
// Also the agent alone: it runs the command in the host's namespace, here, and names the host in
// its errors.
#include <gtest/gtest.h>
#include <google/protobuf/text_format.h>

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <vector>

#include "launcher/job_builder.h"
#include "launcher/job_file.h"
#include "tests/launch/netns.h"

namespace fs = std::filesystem;
using lockstep::testing::netns::NetnsPair;
using lockstep::testing::netns::quoted;
using lockstep::testing::netns::shell;
using lockstep::testing::netns::ShellResult;
using lockstep::testing::idx_bytes;

namespace {

constexpr int kTrain = 300, kTest = 101, kEpochs = 2;
constexpr int kSteps = kEpochs * (kTrain / 128);  // global batch 128, drop_last
const std::string kRootEnv = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1";

std::string lockstep_bin() { return std::string(LOCKSTEP_BINARY_DIR) + "/launcher/lockstep"; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The figures of a metrics file that must match run to run: every step's (step, loss) and every
// epoch's losses and accuracy, as logged (the loss exact to the last bit); throughput left out.
std::vector<std::string> exact_figures(const fs::path& metrics) {
  const std::regex step("\"step\":([0-9]+),\"loss\":([^,}]+)");
  const std::regex epoch("\"train_loss\":([^,]+),\"test_loss\":([^,]+),\"test_accuracy\":([^,}]+)");
  std::vector<std::string> out;
  std::istringstream in(read_file(metrics));
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, step)) out.push_back("step " + m[1].str() + " loss " + m[2].str());
    else if (std::regex_search(line, m, epoch))
      out.push_back("epoch " + m[1].str() + " " + m[2].str() + " " + m[3].str());
  }
  return out;
}

// model.pb of the newest checkpoint under run_dir (names are ckpt-<9-digit step>).
std::string final_weights(const fs::path& run_dir) {
  std::string newest;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(run_dir / "checkpoints", ec))
    if (e.path().filename().string().rfind("ckpt-", 0) == 0) newest = std::max(newest, e.path().string());
  return newest.empty() ? "" : read_file(fs::path(newest) / "model.pb");
}

class MultiHost : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    hosts_ = new NetnsPair;
    if (hosts_->ok())
      std::printf("hosts: %s in %s, %s in %s\n", hosts_->addr_a().c_str(), hosts_->a().c_str(),
                  hosts_->addr_b().c_str(), hosts_->b().c_str());
  }
  static void TearDownTestSuite() {
    delete hosts_;
    hosts_ = nullptr;
  }
  void SetUp() override {
    if (!hosts_->ok()) GTEST_SKIP() << "two hosts as network namespaces unavailable: " << hosts_->error();
    if (shell("command -v mpirun", 10).status != 0) GTEST_SKIP() << "no mpirun";
    const std::string prefix = "lockstep_multi_host_";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::temp_directory_path(), ec)) {  // a killed run's
      const std::string name = e.path().filename();
      if (name.rfind(prefix, 0) == 0 && ::kill(std::atoi(name.c_str() + prefix.size()), 0) != 0 && errno == ESRCH)
        fs::remove_all(e.path(), ec);
    }
    dir_ = fs::temp_directory_path() / (prefix + std::to_string(::getpid()));
    fs::create_directories(dir_ / "data");
    for (auto [split, n] : {std::pair{"train", kTrain}, std::pair{"t10k", kTest}}) {
      std::ofstream(dir_ / "data" / (std::string(split) + "-images-idx3-ubyte"), std::ios::binary)
          << idx_bytes({uint32_t(n), 28, 28}, n * 784);
      std::ofstream(dir_ / "data" / (std::string(split) + "-labels-idx1-ubyte"), std::ios::binary)
          << idx_bytes({uint32_t(n)}, n);
    }
    job_ = lockstep::load_job(std::string(LOCKSTEP_SOURCE_DIR) + "/launcher/jobs/fmnist-cnn-ddp.textproto");
    job_.set_epochs(kEpochs);
    job_.mutable_data()->set_dir((dir_ / "data").string());
    job_.clear_metrics_file();  // launch: RUN_DIR/metrics.jsonl; train: --metrics
    std::string text;
    ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(job_, &text));
    std::ofstream(dir_ / "job.textproto") << text;
    std::ofstream(dir_ / "hosts") << hosts_->addr_a() << " slots=1\n" << hosts_->addr_b() << " slots=1\n";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Environment for mpirun on both hosts: MPI and its out-of-band wire on the veth subnet only,
  // and no shared memory (the two hosts share none).
  std::string two_host_env() const {
    return "env " + kRootEnv + " OMPI_MCA_btl=self,tcp OMPI_MCA_btl_tcp_if_include=" + hosts_->subnet() +
           " OMPI_MCA_oob_tcp_if_include=" + hosts_->subnet();
  }
  // Bytes every rank must send at least once per step: the gradients of all parameters.
  uint64_t gradient_bytes() const {
    uint64_t n = 0;
    const lockstep::BuiltModel built = lockstep::build_model(job_);  // lives while its parameters are read
    for (auto* p : built.model->parameters()) n += uint64_t(p->value.numel()) * sizeof(float);
    return n;
  }
  // Runs cmd inside namespace A and checks the veth carried at least kSteps rounds of gradients
  // each way while it ran.
  ShellResult run_on_two_hosts(const std::string& cmd) {
    const NetnsPair::Bytes before = hosts_->veth_a_bytes();
    ShellResult r = shell(hosts_->in_a(two_host_env() + " " + cmd), 60);
    const NetnsPair::Bytes after = hosts_->veth_a_bytes();
    const uint64_t need = kSteps * gradient_bytes();
    EXPECT_GE(after.tx - before.tx, need) << "rank 0 (host A) sent too little over the veth for " << kSteps
                                          << " gradient all-reduces";
    EXPECT_GE(after.rx - before.rx, need) << "rank 0 (host A) received too little over the veth";
    return r;
  }

  static NetnsPair* hosts_;
  fs::path dir_;
  lockstep::proto::JobSpec job_;
};
NetnsPair* MultiHost::hosts_ = nullptr;

TEST(Agent, RunsTheJoinedWordsHereForThisHost) {
  // The words are joined and run by a shell, as ssh's remote shell would: quotes inside words count.
  ShellResult r = shell(lockstep_bin() + " agent 127.0.0.1 echo one '\"two  three\"'", 10);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "one two  three\n");
  r = shell(lockstep_bin() + " agent localhost 'exit 7'", 10);
  EXPECT_EQ(r.status, 7) << "the agent must become the command: " << r.output;
  r = shell(lockstep_bin() + " agent localhost", 10);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("host localhost"), std::string::npos) << r.output;
}

TEST_F(MultiHost, AgentRunsTheCommandInTheHostsNamespace) {
  const std::string a = "inet " + hosts_->addr_a() + "/24", b = "inet " + hosts_->addr_b() + "/24";
  for (const std::string& from : {std::string(), "ip netns exec " + hosts_->a() + " "}) {
    ShellResult r = shell(from + lockstep_bin() + " agent " + hosts_->addr_b() + " ip -o addr show", 10);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find(b), std::string::npos) << "not in namespace B, from '" << from << "':\n" << r.output;
    EXPECT_EQ(r.output.find(a), std::string::npos) << r.output;
  }
  // Host A's own address, from inside A: runs right there.
  ShellResult r = shell(hosts_->in_a(lockstep_bin() + " agent " + hosts_->addr_a() + " ip -o addr show"), 10);
  EXPECT_NE(r.output.find(a), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find(b), std::string::npos) << r.output;
}

// mpirun with the agent as its rsh launcher and `lockstep train`: the agent and the two hosts
// without the control plane.
TEST_F(MultiHost, TrainUnderMpirunOnTwoHostsMatchesOneHost) {
  const std::string train = lockstep_bin() + " train " + (dir_ / "job.textproto").string() + " --metrics ";
  ShellResult one = shell("env " + kRootEnv + " mpirun --oversubscribe -np 2 " + train + (dir_ / "m1.jsonl").string(), 60);
  ASSERT_EQ(one.status, 0) << one.output;
  ShellResult two = run_on_two_hosts("mpirun -np 2 --hostfile " + (dir_ / "hosts").string() +
                                     " --mca plm_rsh_agent " + quoted(lockstep_bin() + " agent") + " " + train +
                                     (dir_ / "m2.jsonl").string());
  ASSERT_EQ(two.status, 0) << two.output;
  const auto figures = exact_figures(dir_ / "m1.jsonl");
  EXPECT_EQ(figures.size(), size_t(kEpochs));
  EXPECT_EQ(exact_figures(dir_ / "m2.jsonl"), figures);
}

// The contract: `lockstep launch` on one host and, from host A, on both hosts through a hostfile.
TEST_F(MultiHost, LaunchOnTwoHostsMatchesOneHost) {
  const std::string launch = lockstep_bin() + " launch -n 2 " + (dir_ / "job.textproto").string();
  ShellResult one = shell("env " + kRootEnv + " " + launch + " --run-dir " + (dir_ / "d1").string(), 60);
  ASSERT_EQ(one.status, 0) << one.output;
  ShellResult two = run_on_two_hosts(launch + " --hostfile " + (dir_ / "hosts").string() + " --bind " +
                                     hosts_->addr_a() + " --run-dir " + (dir_ / "d2").string());
  ASSERT_EQ(two.status, 0) << two.output;
  const auto figures = exact_figures(dir_ / "d1" / "metrics.jsonl");
  EXPECT_GE(figures.size(), size_t(kSteps)) << "one line per step expected";
  EXPECT_EQ(exact_figures(dir_ / "d2" / "metrics.jsonl"), figures);
  const std::string weights = final_weights(dir_ / "d1");
  EXPECT_FALSE(weights.empty()) << "no final checkpoint under " << (dir_ / "d1");
  EXPECT_TRUE(final_weights(dir_ / "d2") == weights) << "final weights differ between one and two hosts";
}

}  // namespace
