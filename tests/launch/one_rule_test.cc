// One job file means one training run, whatever command runs it: `lockstep train`, `mpirun -np 1
// lockstep train` and `lockstep launch -n 1` take the same steps over a data set whose size is not a
// multiple of the batch (10 samples, batch 4) and report the same train loss, with data.drop_last
// false (3 steps: the last batch filled from the epoch's first samples) and true (2 steps); `train
// --step-metrics` and the launched worker log the same per-step losses to the last bit.
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

class OneRule : public TestDirectory {};

// 10 train and 10 test images of 28x28 (a size no batch of 4 divides).
void write_ten_samples(const std::string& dir) {
  fs::create_directories(dir);
  for (const std::string split : {"train", "t10k"}) {
    std::ofstream(dir + "/" + split + "-images-idx3-ubyte", std::ios::binary) << idx_bytes({10, 28, 28}, 10 * 784);
    std::ofstream(dir + "/" + split + "-labels-idx1-ubyte", std::ios::binary) << idx_bytes({10}, 10);
  }
}

// The "train_loss" of the first epoch line of a metrics file, as printed.
std::string epoch_train_loss(const std::string& metrics) {
  std::smatch m;
  const std::string text = read_text(metrics);
  if (!std::regex_search(text, m, std::regex("\"kind\":\"epoch\",\"epoch\":1,\"train_loss\":([^,]+),"))) return "";
  return m[1];
}

TEST_F(OneRule, TrainMpirunAndLaunchTakeTheSameSteps) {
  write_ten_samples(path("data"));
  for (const std::string drop_last : {"false", "true"}) {
    const std::string job = path("job-" + drop_last + ".textproto");
    std::ofstream(job) << "name: \"one-rule\"\nmodel { reference: \"fmnist-mlp\" }\n"
                       << "data { dir: \"" << path("data") << "\" drop_last: " << drop_last << " }\n"
                       << "optimizer { lr: 0.05 sgd { momentum: 0.9 } }\nseed: 3\nepochs: 1\nbatch_size: 4\n";
    const std::string exe = lockstep_exe();
    const auto [st_a, out_a] =
        run_command(exe + " train " + job + " --step-metrics --metrics " + path("a-" + drop_last + ".jsonl"), 120);
    ASSERT_EQ(st_a, 0) << out_a;
    const auto [st_b, out_b] = run_command("mpirun --allow-run-as-root --oversubscribe -np 1 " + exe + " train " + job +
                                               " --metrics " + path("b-" + drop_last + ".jsonl"),
                                           120);
    ASSERT_EQ(st_b, 0) << out_b;
    const std::string run = path("c-" + drop_last);
    const auto [st_c, out_c] = run_command(exe + " launch -n 1 " + job + " --run-dir " + run, 120);
    ASSERT_EQ(st_c, 0) << out_c;

    const size_t steps = drop_last == "true" ? 2u : 3u;
    EXPECT_EQ(step_losses(run + "/metrics.jsonl").size(), steps) << "drop_last " << drop_last;
    // One loop: every step's global loss, to the last bit, is the same from `train` and the worker.
    EXPECT_EQ(step_losses(path("a-" + drop_last + ".jsonl")), step_losses(run + "/metrics.jsonl"))
        << "drop_last " << drop_last;
    // Every step line of `train --step-metrics` carries a measured, positive samples/s.
    {
      std::istringstream lines(read_text(path("a-" + drop_last + ".jsonl")));
      const std::regex rate("\"kind\":\"step\".*\"samples_per_sec\":([^,}]+)");
      std::smatch m;
      int step_lines = 0;
      for (std::string line; std::getline(lines, line);)
        if (std::regex_search(line, m, rate)) {
          ++step_lines;
          EXPECT_GT(std::stod(m[1]), 0.0) << line;
        }
      EXPECT_EQ(step_lines, static_cast<int>(steps)) << "drop_last " << drop_last;
    }
    const std::string a = epoch_train_loss(path("a-" + drop_last + ".jsonl"));
    ASSERT_FALSE(a.empty()) << read_text(path("a-" + drop_last + ".jsonl"));
    EXPECT_EQ(epoch_train_loss(path("b-" + drop_last + ".jsonl")), a) << "drop_last " << drop_last;
    EXPECT_EQ(epoch_train_loss(run + "/metrics.jsonl"), a) << "drop_last " << drop_last;
  }
}

// A command-line --epochs fills in a job file without epochs (it is checked after the override).
TEST_F(OneRule, EpochsFromTheCommandLineCompleteTheJob) {
  write_ten_samples(path("data"));
  const std::string job = path("job.textproto");
  std::ofstream(job) << "name: \"no-epochs\"\nmodel { reference: \"fmnist-mlp\" }\n"
                     << "data { dir: \"" << path("data") << "\" }\n"
                     << "optimizer { lr: 0.05 sgd { } }\nbatch_size: 4\n";
  auto [st, out] = run_command(lockstep_exe() + " train " + job + " --epochs 1 --metrics " + path("m.jsonl"), 120);
  EXPECT_EQ(st, 0) << out;
  std::tie(st, out) = run_command(lockstep_exe() + " launch -n 1 " + job + " --epochs 1 --run-dir " + path("run"), 120);
  EXPECT_EQ(st, 0) << out;
  std::tie(st, out) = run_command(lockstep_exe() + " train " + job, 60);
  EXPECT_NE(out.find("epochs: must be"), std::string::npos) << out;
}

TEST_F(OneRule, DropLastAndRemainderThatDisagreeAreRefused) {
  const std::string job = path("job.textproto");
  std::ofstream(job) << "name: \"disagree\"\nmodel { reference: \"fmnist-mlp\" }\n"
                     << "data { dir: \"" << LOCKSTEP_DATA_DIR << "\" drop_last: true }\n"
                     << "optimizer { lr: 0.05 sgd { } }\nepochs: 1\nbatch_size: 128\n"
                     << "distributed { remainder: PAD }\n";
  for (const std::string args : {" train " + job, " launch -n 1 " + job + " --run-dir " + path("run")}) {
    const auto [st, out] = run_command(lockstep_exe() + args, 60);
    EXPECT_NE(st, 0) << out;
    EXPECT_NE(out.find("data.drop_last: true contradicts distributed.remainder: PAD"), std::string::npos) << out;
  }
  EXPECT_FALSE(fs::exists(path("run")));
}

}  // namespace
