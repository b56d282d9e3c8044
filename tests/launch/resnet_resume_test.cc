// The residual network through a whole launched job on 2 local ranks: fmnist-resnet8 with
// SyncBatchNorm, every process SIGKILLed once epoch 1's checkpoint is complete, then --resume, ends
// with model.pb and optimizer.pb byte-identical to a straight run, and every per-step loss equal.
// A synthetic data set of 4096 28x28 images (128 steps of 32 per epoch) keeps it to seconds. In
// precision FP32 and BF16: a bf16 run's checkpoints hold the fp32 master weights, and its kernels
// are deterministic, so it resumes as exactly.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"
#include "runtime/precision.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

class ResNetJob : public LaunchTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(ResNetJob, KilledAfterEpochOneAndResumedEndsBitIdentical) {
  if (GetParam() == "BF16")
    if (const std::string why = lockstep::precision_unsupported(lockstep::Precision::kBF16); !why.empty())
      GTEST_SKIP() << why;
  const std::string data = path("data");
  fs::create_directories(data);
  for (const std::string split : {"train", "t10k"}) {
    const uint32_t n = split == "train" ? 4096 : 256;
    std::ofstream(data + "/" + split + "-images-idx3-ubyte", std::ios::binary) << idx_bytes({n, 28, 28}, n * 784);
    std::ofstream(data + "/" + split + "-labels-idx1-ubyte", std::ios::binary) << idx_bytes({n}, n);
  }
  const std::string job = path("job.textproto");
  std::ofstream(job) << "name: \"resnet-resume\"\nmodel { reference: \"fmnist-resnet8\" }\n"
                     << "data { dir: \"" << data << "\" }\n"
                     << "optimizer { lr: 0.05 weight_decay: 0.0005 sgd { momentum: 0.9 } }\n"
                     << "seed: 5\nepochs: 2\nbatch_size: 32\n"
                     << "distributed { sync_batchnorm: true collective_timeout_s: 60 }\n"
                     << "precision: " << GetParam() << "\n";
  ASSERT_EQ(run(job, path("straight"), {}, 300), 0) << output_;
  const std::string last = checkpoint_dir(path("straight"), 256);
  ASSERT_TRUE(fs::exists(last + "/model.pb")) << output_;

  auto p = start(job, path("killed"));
  const std::string epoch1 = checkpoint_dir(path("killed"), 128);
  ASSERT_TRUE(wait_until([&] { return fs::exists(epoch1 + "/MANIFEST"); }, 240)) << p->output();
  for (pid_t pid : process_tree(p->pid())) ::kill(pid, SIGKILL);
  p->wait(10);
  ASSERT_FALSE(fs::exists(checkpoint_dir(path("killed"), 256))) << "the job ended before the kill";

  ASSERT_EQ(run(job, path("killed"), {"--resume"}, 300), 0) << output_;
  EXPECT_NE(output_.find("resuming from"), std::string::npos) << output_;
  const std::string resumed = checkpoint_dir(path("killed"), 256);
  for (const char* f : {"model.pb", "optimizer.pb"})
    EXPECT_EQ(read_text(last + "/" + f), read_text(resumed + "/" + f)) << f << " differs after the resume";
  const auto a = step_losses(path("straight/metrics.jsonl")), b = step_losses(path("killed/metrics.jsonl"));
  ASSERT_EQ(a.size(), 256u);
  EXPECT_EQ(a, b) << "per-step losses differ";
}

INSTANTIATE_TEST_SUITE_P(Precision, ResNetJob, ::testing::Values("FP32", "BF16"),
                         [](const auto& info) { return info.param; });

}  // namespace
