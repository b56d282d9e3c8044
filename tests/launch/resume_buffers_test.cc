// A resumed run continues the uninterrupted one whatever the eval-buffer policy: under
// eval_buffers AVERAGE without SyncBatchNorm every rank keeps its own BatchNorm running statistics
// between eval phases, so a SIGTERM mid-epoch and a --resume must end byte-identical (weights,
// every rank's buffers, per-step losses, test figures) to the run that was never stopped.
#include <gtest/gtest.h>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

class ResumeBuffers : public TestDirectory {};

TEST_F(ResumeBuffers, AverageWithoutSyncBatchNormResumesExactly) {
  const std::string job = path("job.textproto");
  std::ofstream(job) << "name: \"average\"\n"
                     << "model { reference: \"fmnist-mlp\" }\n"
                     << "data { dir: \"" << LOCKSTEP_DATA_DIR << "\" }\n"
                     << "optimizer { lr: 0.05 sgd { momentum: 0.9 } }\n"
                     << "seed: 7\nepochs: 2\nbatch_size: 128\n"
                     << "distributed { sync_batchnorm: false eval_buffers: AVERAGE collective_timeout_s: 30 }\n";
  auto launch = [&](const std::string& run, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv{lockstep_exe(), "launch", "-n", "2", job, "--run-dir", run};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<ChildProcess>(argv, run + ".log");
  };
  auto straight = launch(path("straight"));
  ASSERT_EQ(straight->wait(180), 0) << straight->output();

  auto stopped = launch(path("stopped"));
  ASSERT_TRUE(stopped->wait_for_output("epoch 1/2  step", 60)) << stopped->output();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stopped->signal(SIGTERM);
  ASSERT_EQ(stopped->wait(60), 3) << stopped->output();
  auto resumed = launch(path("stopped"), {"--resume"});
  ASSERT_EQ(resumed->wait(180), 0) << resumed->output();

  const std::string a = checkpoint_dir(path("straight"), 936), b = checkpoint_dir(path("stopped"), 936);
  ASSERT_TRUE(fs::exists(a + "/rank_buffers.pb")) << "rank 1's running statistics were not kept";
  for (const char* f : {"model.pb", "optimizer.pb", "rank_buffers.pb"})
    EXPECT_EQ(read_text(a + "/" + f), read_text(b + "/" + f)) << f << " differs after the resume";
  EXPECT_EQ(step_losses(path("straight/metrics.jsonl")), step_losses(path("stopped/metrics.jsonl")));
  EXPECT_EQ(epoch_figures(path("straight/metrics.jsonl")), epoch_figures(path("stopped/metrics.jsonl")));
}

}  // namespace
