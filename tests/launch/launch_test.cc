// Whole launched jobs on 2 local ranks (fmnist-mlp, seconds per epoch): a kill and resume ends
// bit-identical to a straight run; a worker killed mid-epoch ends the job within 10 s naming the
// rank with no process left; --max-restarts 1 finishes it instead; SIGTERM checkpoints at an agreed
// step and exits cleanly; a full disk during a checkpoint is a clear error that leaves the previous
// checkpoint byte-identical. Every process runs under a time limit.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

using LaunchedJob = LaunchTest;

TEST_F(LaunchedJob, KilledAfterEpochOneAndResumedEndsBitIdentical) {
  const std::string job = write_mlp_job(dir_.string(), 2);
  ASSERT_EQ(run(job, path("straight")), 0) << output_;
  const std::string last = checkpoint_dir(path("straight"), 936);
  ASSERT_TRUE(fs::exists(last + "/model.pb")) << output_;

  // The same job, every process of it SIGKILLed once epoch 1's checkpoint is complete.
  auto p = start(job, path("killed"));
  const std::string epoch1 = checkpoint_dir(path("killed"), 468);
  ASSERT_TRUE(wait_until([&] { return fs::exists(epoch1 + "/MANIFEST"); }, 120)) << p->output();
  for (pid_t pid : process_tree(p->pid())) ::kill(pid, SIGKILL);
  p->wait(10);
  ASSERT_FALSE(fs::exists(checkpoint_dir(path("killed"), 936)));

  ASSERT_EQ(run(job, path("killed"), {"--resume"}), 0) << output_;
  EXPECT_NE(output_.find("resuming from"), std::string::npos) << output_;
  const std::string resumed = checkpoint_dir(path("killed"), 936);
  for (const char* f : {"model.pb", "optimizer.pb"})
    EXPECT_EQ(read_text(last + "/" + f), read_text(resumed + "/" + f)) << f << " differs after the resume";
  const auto a = step_losses(path("straight/metrics.jsonl")), b = step_losses(path("killed/metrics.jsonl"));
  ASSERT_EQ(a.size(), 936u);
  EXPECT_EQ(a, b) << "per-step losses differ";
}

// The newest checkpoint damaged (one byte flipped): --resume reports it, falls back to the previous
// one, and still ends bit-identical to a straight run.
TEST_F(LaunchedJob, ResumeSkipsADamagedCheckpointForThePreviousOne) {
  const std::string job = write_mlp_job(dir_.string(), 2);
  ASSERT_EQ(run(job, path("straight")), 0) << output_;
  const std::string final_model = read_text(checkpoint_dir(path("straight"), 936) + "/model.pb");
  {
    std::fstream f(checkpoint_dir(path("straight"), 936) + "/model.pb", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(1000);
    char c;
    f.read(&c, 1);
    f.seekp(1000);
    c = static_cast<char>(c ^ 0x20);
    f.write(&c, 1);
  }
  ASSERT_EQ(run(job, path("straight"), {"--resume"}), 0) << output_;
  EXPECT_NE(output_.find("ckpt-000000936 is damaged"), std::string::npos) << output_;
  EXPECT_NE(output_.find("model.pb"), std::string::npos) << output_;
  EXPECT_NE(output_.find("resuming from " + checkpoint_dir(path("straight"), 468)), std::string::npos) << output_;
  EXPECT_EQ(read_text(checkpoint_dir(path("straight"), 936) + "/model.pb"), final_model);
}

TEST_F(LaunchedJob, WorkerKilledMidEpochEndsEveryProcessWithinTenSeconds) {
  const std::string job = write_mlp_job(dir_.string(), 3);
  auto p = start(job, path("run"));
  ASSERT_TRUE(p->wait_for_output("epoch 1/3  step", 60)) << p->output();
  std::set<pid_t> tree = process_tree(p->pid());
  pid_t victim = -1;
  for (pid_t w : worker_pids(tree))
    if (rank_of(w) == 1) victim = w;
  ASSERT_GT(victim, 0) << "no rank 1 worker among the launch's processes";
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(victim, SIGKILL);
  const int st = p->wait(20);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string out = p->output();
  EXPECT_NE(st, 0) << out;
  EXPECT_NE(st, -1) << "the launch did not end within 20 s:\n" << out;
  EXPECT_LT(secs, 10.0) << out;
  EXPECT_NE(out.find("rank 1"), std::string::npos) << "the dead rank is not named:\n" << out;
  for (pid_t pid : tree)
    EXPECT_TRUE(wait_until([&] { return !process_alive(pid); }, 2)) << "pid " << pid << " left behind";
}

TEST_F(LaunchedJob, MaxRestartsFinishesAfterAWorkerDies) {
  const std::string job = write_mlp_job(dir_.string(), 2);
  auto p = start(job, path("run"), {"--max-restarts", "1"});
  const std::string epoch1 = checkpoint_dir(path("run"), 468);
  ASSERT_TRUE(wait_until([&] { return fs::exists(epoch1 + "/MANIFEST"); }, 120)) << p->output();
  for (pid_t w : worker_pids(process_tree(p->pid())))
    if (rank_of(w) == 1) ::kill(w, SIGKILL);
  EXPECT_EQ(p->wait(180), 0) << p->output();
  const std::string out = p->output();
  EXPECT_NE(out.find("restarting from the last checkpoint"), std::string::npos) << out;
  EXPECT_NE(out.find("final test accuracy 0.8"), std::string::npos) << out;
  // The newest eval beyond top-1 (launcher/train/eval_metrics.h), read back from the metrics file.
  EXPECT_NE(out.find("epoch 2 eval:\ntop-5 accuracy 0.9"), std::string::npos) << out;
  EXPECT_NE(out.find("confusion matrix (rows: true class, columns: predicted class):"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(checkpoint_dir(path("run"), 936) + "/model.pb"));
}

TEST_F(LaunchedJob, SigtermCheckpointsAtAnAgreedStepAndResumesExactly) {
  const std::string job = write_mlp_job(dir_.string(), 2);
  ASSERT_EQ(run(job, path("straight")), 0) << output_;
  auto p = start(job, path("stopped"));
  ASSERT_TRUE(p->wait_for_output("epoch 1/2  step", 60)) << p->output();
  p->signal(SIGTERM);
  EXPECT_EQ(p->wait(30), 3) << "stopped on request exits 3\n" << p->output();
  EXPECT_NE(p->output().find("stopped on request"), std::string::npos) << p->output();
  long step = -1;
  for (const auto& e : fs::directory_iterator(path("stopped/checkpoints")))
    step = std::max(step, std::stol(e.path().filename().string().substr(5)));
  ASSERT_GT(step, 0);
  EXPECT_NE(step % 468, 0) << "expected a mid-epoch checkpoint";
  ASSERT_EQ(run(job, path("stopped"), {"--resume"}), 0) << output_;
  EXPECT_EQ(read_text(checkpoint_dir(path("straight"), 936) + "/model.pb"),
            read_text(checkpoint_dir(path("stopped"), 936) + "/model.pb"));
  EXPECT_EQ(step_losses(path("straight/metrics.jsonl")), step_losses(path("stopped/metrics.jsonl")));
  // The epoch cut by the stop reports its mean over all its steps, before and after the resume.
  const auto epochs = epoch_figures(path("straight/metrics.jsonl"));
  EXPECT_EQ(epochs.size(), 2u);
  EXPECT_EQ(epochs, epoch_figures(path("stopped/metrics.jsonl")));
}

// The run directory on a 6 MiB tmpfs in a private mount namespace: the epoch-1 checkpoint (about
// 4.3 MB) fits, the epoch-2 one does not.
TEST_F(LaunchedJob, FullDiskDuringACheckpointIsAClearErrorAndKeepsThePreviousOne) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a tmpfs in a private mount namespace";
  if (std::system("unshare -m true 2>/dev/null") != 0) GTEST_SKIP() << "unshare -m is not permitted here";
  const std::string job = write_mlp_job(dir_.string(), 2);
  ASSERT_EQ(run(job, path("reference")), 0) << output_;
  fs::create_directories(path("small"));
  const std::string cmd = "unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs -o size=6m tmpfs " +
                          path("small") + " && " + lockstep_exe() + " launch -n 2 " + job + " --run-dir " +
                          path("small/run") + "; status=$?; cp -r " + path("small/run") + " " + path("copy") +
                          "; exit $status'";
  const auto [st, out] = lockstep::testing::run_command(cmd, 120);
  EXPECT_NE(st, 0) << out;
  EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;
  EXPECT_NE(out.find("ckpt-000000936"), std::string::npos) << "the failed checkpoint is not named:\n" << out;
  const std::string kept = path("copy/checkpoints/ckpt-000000468");
  for (const char* f : {"model.pb", "optimizer.pb", "state.pb", "MANIFEST"})
    EXPECT_EQ(read_text(kept + "/" + f), read_text(checkpoint_dir(path("reference"), 468) + "/" + f)) << f;
  EXPECT_FALSE(fs::exists(path("copy/checkpoints/ckpt-000000936")));
}

}  // namespace
