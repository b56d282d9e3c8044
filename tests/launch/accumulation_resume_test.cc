// Gradient accumulation, clipping and a per-step schedule through a whole launched job on 2 local
// ranks: every process SIGKILLed once epoch 1's checkpoint is complete, then --resume, ends with
// model.pb and optimizer.pb byte-identical to a straight run and every per-step loss and lr equal.
// Checkpoints are named by optimizer step: 1024 samples / batch 32 = 32 micro-batches an epoch,
// accumulate_steps 4 -> 8 optimizer steps an epoch. The step lines' lr is the per-step schedule's
// closed form at each optimizer step (warm-up 5 steps from 0, then constant), and every step line
// carries the pre-clip gradient norm.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cmath>
#include <regex>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

using AccumulatedJob = LaunchTest;

// step -> lr as printed in the step lines.
std::map<long, double> step_lrs(const std::string& metrics) {
  std::map<long, double> out;
  std::istringstream in(read_text(metrics));
  const std::regex re("\"kind\":\"step\",\"epoch\":[0-9]+,\"step\":([0-9]+),.*\"lr\":([-+0-9.eE]+),\"grad_norm\":[0-9]");
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, re)) out[std::stol(m[1])] = std::stod(m[2]);
  return out;
}

TEST_F(AccumulatedJob, KilledAfterEpochOneAndResumedEndsBitIdentical) {
  const std::string data = path("data");
  fs::create_directories(data);
  for (const std::string split : {"train", "t10k"}) {
    const uint32_t n = split == "train" ? 1024 : 128;
    std::ofstream(data + "/" + split + "-images-idx3-ubyte", std::ios::binary) << idx_bytes({n, 28, 28}, n * 784);
    std::ofstream(data + "/" + split + "-labels-idx1-ubyte", std::ios::binary) << idx_bytes({n}, n);
  }
  const std::string job = path("job.textproto");
  std::ofstream(job) << "name: \"accumulate-resume\"\nmodel { reference: \"fmnist-mlp\" }\n"
                     << "data { dir: \"" << data << "\" }\n"
                     << "optimizer { lr: 0.05 sgd { momentum: 0.9 } }\n"
                     << "seed: 3\nepochs: 2\nbatch_size: 32\naccumulate_steps: 4\n"
                     << "clip_grad { max_norm: 0.5 }\n"
                     << "schedule { interval: STEP warmup_steps: 5 warmup_start_factor: 0 }\n"
                     << "distributed { collective_timeout_s: 60 }\n";
  ASSERT_EQ(run(job, path("straight"), {}, 120), 0) << output_;
  const std::string last = checkpoint_dir(path("straight"), 16);
  ASSERT_TRUE(fs::exists(last + "/model.pb")) << output_;

  auto p = start(job, path("killed"));
  const std::string epoch1 = checkpoint_dir(path("killed"), 8);
  ASSERT_TRUE(wait_until([&] { return fs::exists(epoch1 + "/MANIFEST"); }, 120)) << p->output();
  for (pid_t pid : process_tree(p->pid())) ::kill(pid, SIGKILL);
  p->wait(10);
  // The job is short enough to finish before the kill lands; without its final checkpoint the
  // resume starts from epoch 1's either way.
  fs::remove_all(checkpoint_dir(path("killed"), 16));

  ASSERT_EQ(run(job, path("killed"), {"--resume"}, 120), 0) << output_;
  EXPECT_NE(output_.find("resuming from " + epoch1), std::string::npos) << output_;
  const std::string resumed = checkpoint_dir(path("killed"), 16);
  for (const char* f : {"model.pb", "optimizer.pb"})
    EXPECT_EQ(read_text(last + "/" + f), read_text(resumed + "/" + f)) << f << " differs after the resume";
  const auto a = step_losses(path("straight/metrics.jsonl")), b = step_losses(path("killed/metrics.jsonl"));
  ASSERT_EQ(a.size(), 16u);
  EXPECT_EQ(a, b) << "per-step losses differ";

  const auto lr = step_lrs(path("straight/metrics.jsonl"));
  ASSERT_EQ(lr.size(), 16u) << "every step line carries lr and grad_norm";
  for (const auto& [step, v] : lr) {
    const double want = 0.05 * std::min(1.0, double(step - 1) / 5.0);  // step s used lr_at(s - 1)
    EXPECT_NEAR(v, want, 1e-8) << "step " << step;
  }
  EXPECT_EQ(lr, step_lrs(path("killed/metrics.jsonl")));
}

}  // namespace
