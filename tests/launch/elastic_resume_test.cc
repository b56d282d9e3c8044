// Resume on a different number of ranks (Note [elastic resume] in launcher/worker/worker_state.cc):
// a 2-rank run stopped mid-epoch and resumed on 1, 3 and 4 ranks continues the uninterrupted 2-rank
// run: every per-step loss after the stop equals the straight run's within float reassociation,
// with per-sample dropout keying (the masks do not depend on the world size) and SyncBatchNorm (the
// statistics are those of the global batch). A batch that does not divide by the new world size is
// refused with one line (as is a bad --min-ranks), and `launch --max-restarts 0 --min-ranks 1`
// carries on from the last checkpoint on one rank when a rank is killed. A synthetic data set keeps
// each run to seconds.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

// Global batch 12 divides by 1, 2, 3 and 4 ranks; 768 samples: 64 steps per epoch.
constexpr int kBatch = 12;
constexpr long kStepsPerEpoch = 64, kEpochs = 2;
// Float reassociation only (sums over 1, 2, 3 or 4 shards in another order) over a few hundred
// SGD steps; a wrong sample, mask or statistic changes a loss by far more.
constexpr double kRelTol = 1e-5;

class ElasticResume : public LaunchTest {
 protected:
  void SetUp() override {
    LaunchTest::SetUp();
    const std::string data = path("data");
    fs::create_directories(data);
    for (const std::string split : {"train", "t10k"}) {
      const uint32_t n = split == "train" ? kStepsPerEpoch * kBatch : 240;
      std::ofstream(data + "/" + split + "-images-idx3-ubyte", std::ios::binary) << idx_bytes({n, 28, 28}, n * 784);
      // Labels unrelated to the images: the loss stays near ln(10) for the whole run, so 1e-5 of it
      // is far above reassociation (about 1e-7 here) and far below a wrong sample, mask or statistic.
      std::string labels = idx_bytes({n}, 0);
      for (uint32_t i = 0; i < n; ++i) labels.push_back(static_cast<char>(((i * 2654435761u) >> 13) % 10));
      std::ofstream(data + "/" + split + "-labels-idx1-ubyte", std::ios::binary) << labels;
    }
    job_ = path("job.textproto");
    std::ofstream(job_) << "name: \"elastic\"\n"
                        << "model { input_shape: [1, 28, 28]\n"
                        << "  layers { flatten {} } layers { linear { in_features: 784 out_features: 64 } }\n"
                        << "  layers { batch_norm1d { num_features: 64 } } layers { relu {} }\n"
                        << "  layers { dropout { p: 0.25 } } layers { linear { in_features: 64 out_features: 10 } } }\n"
                        << "data { dir: \"" << data << "\" }\n"
                        << "optimizer { lr: 0.02 sgd { momentum: 0.9 } }\n"
                        << "seed: 11\nepochs: " << kEpochs << "\nbatch_size: " << kBatch << "\n"
                        << "distributed { sync_batchnorm: true dropout_keying: PER_SAMPLE collective_timeout_s: 60 }\n";
  }

  int launch(const std::string& run, const std::string& n, std::vector<std::string> args = {}, double limit_s = 240) {
    auto p = start(job_, run, std::move(args), n);
    const int st = p->wait(limit_s);
    output_ = p->output();
    return st;
  }

  // The straight 2-rank run's per-step losses (every step of the job).
  std::map<long, std::string> straight() {
    EXPECT_EQ(launch(path("straight"), "2"), 0) << output_;
    auto a = step_losses(path("straight/metrics.jsonl"));
    EXPECT_EQ(a.size(), static_cast<size_t>(kEpochs * kStepsPerEpoch)) << output_;
    return a;
  }

  // Every step's loss of `b` within kRelTol of `a`'s (and the same steps).
  static void expect_close(const std::map<long, std::string>& a, const std::map<long, std::string>& b,
                           const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    int bad = 0;
    double worst = 0;
    for (const auto& [step, loss] : a) {
      ASSERT_TRUE(b.count(step)) << what << ": step " << step << " missing";
      const double x = std::strtod(loss.c_str(), nullptr), y = std::strtod(b.at(step).c_str(), nullptr);
      const double rel = std::fabs(x - y) / std::max(std::fabs(x), 1e-12);
      worst = std::max(worst, rel);
      if (rel > kRelTol && bad++ < 5)
        ADD_FAILURE() << what << ": step " << step << " loss " << b.at(step) << ", the 2-rank run's " << loss;
    }
    std::printf("%s: largest relative difference from the 2-rank run %.3g\n", what.c_str(), worst);
  }

  // Freezes (SIGSTOP) or thaws (SIGCONT) every worker of the launch `p`: what happens while they are
  // frozen happens between two of their steps, whatever the machine's speed.
  static void signal_workers(ChildProcess& p, int sig) {
    for (pid_t pid : worker_pids(process_tree(p.pid()))) ::kill(pid, sig);
  }

  // The step of the newest checkpoint in run/checkpoints (-1 if none).
  static long newest_checkpoint(const std::string& run) {
    long best = -1;
    for (const auto& e : fs::directory_iterator(run + "/checkpoints")) {
      const std::string name = e.path().filename().string();
      if (name.rfind("ckpt-", 0) == 0 && name.find(".tmp") == std::string::npos)
        best = std::max(best, std::stol(name.substr(5)));
    }
    return best;
  }

  std::string job_;
};

TEST_F(ElasticResume, StoppedOnTwoRanksResumedOnOneThreeAndFourContinuesTheSameTraining) {
  const auto a = straight();
  ASSERT_FALSE(HasFailure());

  // Stopped mid-epoch (SIGTERM: a checkpoint at an agreed step, exit status 3), the ranks frozen
  // meanwhile so that the stop lands at once.
  auto p = start(job_, path("stopped"), {}, "2");
  ASSERT_TRUE(wait_until([&] { return step_losses(path("stopped/metrics.jsonl")).size() >= 20; }, 120)) << p->output();
  signal_workers(*p, SIGSTOP);
  p->signal(SIGTERM);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  signal_workers(*p, SIGCONT);
  ASSERT_EQ(p->wait(120), 3) << p->output();
  const long s = newest_checkpoint(path("stopped"));
  ASSERT_GT(s, 0);
  ASSERT_LT(s, kEpochs * kStepsPerEpoch) << "the job ended before the stop";
  std::printf("stopped at step %ld (epoch %ld, step %ld of %ld)\n", s, s / kStepsPerEpoch + 1, s % kStepsPerEpoch,
              kStepsPerEpoch);

  for (const std::string n : {"1", "3", "4"}) {
    const std::string run = path("on" + n);
    fs::copy(path("stopped"), run, fs::copy_options::recursive);
    ASSERT_EQ(launch(run, n, {"--resume"}), 0) << output_;
    EXPECT_NE(output_.find("resuming from"), std::string::npos) << output_;
    expect_close(a, step_losses(run + "/metrics.jsonl"), "resumed on " + n + " ranks");
  }
}

TEST_F(ElasticResume, AWorldSizeTheBatchDoesNotDivideByIsRefusedInOneLine) {
  ASSERT_EQ(launch(path("run"), "2", {"--epochs", "1"}), 0) << output_;
  ASSERT_EQ(launch(path("run"), "5", {"--resume", "--epochs", "2"}), 2) << output_;
  const std::string expect = "lockstep: error: checkpoint " + checkpoint_dir(path("run"), kStepsPerEpoch) +
                             " was written by 2 ranks; resuming on 5 ranks needs batch_size (the global batch, 12) "
                             "to be a multiple of 5; choose a number of ranks that divides it\n";
  EXPECT_EQ(output_, expect);
}

TEST_F(ElasticResume, BadMinRanksValuesAreOneLineNamingTheOption) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--min-ranks", "0"}, "--min-ranks: expected a whole number in [1, 1048576], got \"0\""},
      {{"--min-ranks", "two"}, "--min-ranks: expected a whole number in [1, 1048576], got \"two\""},
      {{"--min-ranks", "3"}, "--min-ranks: 3 is more than the job's ranks (-n 2)"},
  };
  for (const auto& [args, line] : cases) {
    EXPECT_EQ(launch(path("run"), "2", args), 2) << output_;
    EXPECT_EQ(output_, "lockstep: error: " + line + "\n");
    EXPECT_FALSE(fs::exists(path("run"))) << "a refused launch created its run directory";
  }
}

TEST_F(ElasticResume, ARankKilledForGoodContinuesOnFewerRanksFromTheCheckpoint) {
  const auto a = straight();
  ASSERT_FALSE(HasFailure());

  auto p = start(job_, path("shrunk"), {"--max-restarts", "0", "--min-ranks", "1"}, "2");
  // Epoch 1's checkpoint complete, then rank 1 killed: no restart left on 2 ranks, so the job goes
  // on with one rank from that checkpoint.
  const std::string epoch1 = checkpoint_dir(path("shrunk"), kStepsPerEpoch);
  ASSERT_TRUE(wait_until([&] { return fs::exists(epoch1 + "/MANIFEST"); }, 120)) << p->output();
  signal_workers(*p, SIGSTOP);
  ASSERT_FALSE(fs::exists(checkpoint_dir(path("shrunk"), kEpochs * kStepsPerEpoch))) << "the job ended first";
  bool killed = false;
  for (pid_t pid : worker_pids(process_tree(p->pid())))
    if (rank_of(pid) == 1) killed = ::kill(pid, SIGKILL) == 0;
  signal_workers(*p, SIGCONT);
  ASSERT_TRUE(killed) << "no rank 1 to kill: " << p->output();
  ASSERT_EQ(p->wait(240), 0) << p->output();
  const std::string out = p->output();
  EXPECT_NE(out.find("continuing on 1 rank from the last checkpoint (--min-ranks 1)"), std::string::npos) << out;
  const long resumed_at = [&] {
    const std::regex re("resuming from \\S+ckpt-0*([0-9]+) ");
    std::smatch m;
    return std::regex_search(out, m, re) ? std::stol(m[1]) : -1L;
  }();
  EXPECT_GE(resumed_at, kStepsPerEpoch) << out;
  expect_close(a, step_losses(path("shrunk/metrics.jsonl")), "shrunk to 1 rank");
}

}  // namespace
