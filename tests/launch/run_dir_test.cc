// A run directory belongs to one job: a launch into another run's directory is refused without
// --resume (nothing of it changed) and --overwrite starts over; a second launch on a running job's
// directory is refused naming the holder, and leaves its token alone; --resume over checkpoints
// that are all damaged is refused and keeps them; a job name must be one safe path component; a
// launch that fails to start (a port in use) rewrites nothing.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

class RunDirOwnership : public LaunchTest {
 protected:
  // Every file under dir with its bytes.
  static std::map<std::string, std::string> snapshot(const std::string& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) out[e.path().string()] = read_text(e.path().string());
    return out;
  }
};

TEST_F(RunDirOwnership, AFinishedRunIsRefusedWithoutResumeAndOverwriteStartsOver) {
  const std::string job = write_mlp_job(dir_.string(), 1);
  ASSERT_EQ(run(job, path("run")), 0) << output_;
  const auto before = snapshot(path("run/checkpoints"));
  const std::string metrics = read_text(path("run/metrics.jsonl"));
  ASSERT_FALSE(before.empty());
  EXPECT_EQ(run(job, path("run")), 2) << output_;
  EXPECT_NE(output_.find("already holds a run"), std::string::npos) << output_;
  EXPECT_NE(output_.find("--resume"), std::string::npos) << output_;
  EXPECT_EQ(snapshot(path("run/checkpoints")), before) << "a refused launch changed the old checkpoints";
  EXPECT_EQ(read_text(path("run/metrics.jsonl")), metrics) << "a refused launch changed the old metrics";
  const auto losses = step_losses(path("run/metrics.jsonl"));
  // The old run's outputs, as a timeline and a report of it would have left them.
  fs::create_directories(path("run/trace"));
  for (const char* old_output : {"trace/rank-7.json", "trace.json", "trace.1.json", "report.html", "mpirun.log",
                                 "events.out.tfevents.1.old.1.0"})
    std::ofstream(path(std::string("run/") + old_output)) << "old run";
  std::ofstream(path("run/notes.txt")) << "the user's own";
  ASSERT_EQ(run(job, path("run"), {"--overwrite"}), 0) << output_;
  EXPECT_EQ(step_losses(path("run/metrics.jsonl")), losses) << "the same job started over must train the same";
  for (const char* old_output : {"trace", "trace.json", "trace.1.json", "report.html", "events.out.tfevents.1.old.1.0"})
    EXPECT_FALSE(fs::exists(path(std::string("run/") + old_output))) << "--overwrite left the old run's " << old_output;
  EXPECT_NE(read_text(path("run/mpirun.log")), "old run") << "--overwrite left the old run's mpirun.log";
  EXPECT_EQ(read_text(path("run/notes.txt")), "the user's own") << "--overwrite removed a file that is not the run's";
  EXPECT_TRUE(fs::exists(path("run/result.json"))) << "the new run's result";
}

TEST_F(RunDirOwnership, ASecondLaunchOnARunningJobIsRefusedNamingIt) {
  const std::string job = write_mlp_job(dir_.string(), 2);
  auto first = start(job, path("run"));
  ASSERT_TRUE(first->wait_for_output("epoch 1/2  step", 60)) << first->output();
  const std::string token = read_text(path("run/token"));
  ASSERT_FALSE(token.empty());
  auto second = start(job, path("run"), {"--resume"});
  EXPECT_EQ(second->wait(30), 2) << second->output();
  EXPECT_NE(second->output().find("is in use by job launch-test"), std::string::npos) << second->output();
  EXPECT_EQ(read_text(path("run/token")), token) << "the refused launch rewrote the running job's token";
  EXPECT_EQ(first->wait(180), 0) << first->output();
  // The running job's metrics are whole lines only.
  const std::string m = read_text(path("run/metrics.jsonl"));
  EXPECT_EQ(m.find('\0'), std::string::npos);
  EXPECT_EQ(step_losses(path("run/metrics.jsonl")).size(), 936u);
}

TEST_F(RunDirOwnership, ResumeOverOnlyDamagedCheckpointsIsRefusedAndKeepsThem) {
  const std::string job = write_mlp_job(dir_.string(), 1);
  ASSERT_EQ(run(job, path("run")), 0) << output_;
  for (const auto& e : fs::directory_iterator(path("run/checkpoints"))) {
    std::ofstream f(e.path() / "model.pb", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x5a');
  }
  const auto damaged = snapshot(path("run"));
  EXPECT_EQ(run(job, path("run"), {"--resume"}), 2) << output_;
  EXPECT_NE(output_.find("is valid"), std::string::npos) << output_;
  EXPECT_EQ(output_.find("trying the previous one"), std::string::npos) << output_;
  auto after = snapshot(path("run"));
  after.erase(path("run/.lock"));
  auto expected = damaged;
  expected.erase(path("run/.lock"));
  EXPECT_EQ(after, expected) << "a refused --resume changed the run directory";
  // Without its MANIFEST a checkpoint is damaged too, not absent: no fresh start over it.
  for (const auto& e : fs::directory_iterator(path("run/checkpoints"))) fs::remove(e.path() / "MANIFEST");
  EXPECT_EQ(run(job, path("run"), {"--resume"}), 2) << output_;
  EXPECT_NE(output_.find("MANIFEST: missing"), std::string::npos) << output_;
  EXPECT_EQ(run(job, path("run")), 2) << "a fresh launch over them: " << output_;
}

// metrics_file once wrote anywhere (../../x, /etc/x) and over the run's own token.
TEST_F(RunDirOwnership, AMetricsFileStaysInsideTheRunDirectory) {
  for (const std::string& m : std::vector<std::string>{"../../escape.jsonl", path("abs.jsonl"), "token", "checkpoints", "sub/m.jsonl"}) {
    const std::string job = write_mlp_job(dir_.string(), 1, "metrics_file: \"" + m + "\"\n");
    EXPECT_EQ(run(job, path("run")), 2) << m << ": " << output_;
    EXPECT_NE(output_.find("metrics_file: \"" + m + "\""), std::string::npos) << output_;
    EXPECT_FALSE(fs::exists(path("run"))) << m;
    EXPECT_FALSE(fs::exists(path("abs.jsonl")));
    EXPECT_FALSE(fs::exists(dir_.parent_path() / "escape.jsonl"));
  }
}

TEST_F(RunDirOwnership, AJobNameIsOneSafePathComponent) {
  for (const std::string name : {"x/../../escaped", "..", ".hidden", "a b", "\xff"}) {
    const std::string job = path("job.textproto");
    std::ofstream(job) << "name: \"" << (name == "\xff" ? "\\377" : name) << "\"\n"
                       << "model { reference: \"fmnist-mlp\" }\n"
                       << "data { dir: \"" << LOCKSTEP_DATA_DIR << "\" }\n"
                       << "optimizer { lr: 0.05 sgd { } }\nepochs: 1\nbatch_size: 128\n";
    const auto [st, out] = run_command("sh -c 'cd " + dir_.string() + " && " + lockstep_exe() + " launch -n 1 " + job + "'", 60);
    EXPECT_EQ(st, 2) << name << ": " << out;
    EXPECT_NE(out.find("name:"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(path("escaped"))) << name;
    EXPECT_FALSE(fs::exists(path("runs"))) << name << ": a refused launch left a run directory";
  }
}

TEST_F(RunDirOwnership, ALaunchThatCannotServeItsPortRewritesNothing) {
  const std::string job = write_mlp_job(dir_.string(), 1);
  ASSERT_EQ(run(job, path("run")), 0) << output_;
  const auto before = snapshot(path("run"));
  // Hold a port, then ask for it.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string port = std::to_string(ntohs(a.sin_port));
  EXPECT_EQ(run(job, path("run"), {"--resume", "--port", port}), 2) << output_;
  ::close(fd);
  // One line of ours; none of gRPC's own log lines (source paths, status dumps).
  EXPECT_EQ(output_.find(".cc:"), std::string::npos) << output_;
  EXPECT_EQ(std::count(output_.begin(), output_.end(), '\n'), 1) << output_;
  auto after = snapshot(path("run"));
  EXPECT_EQ(after[path("run/token")], before.at(path("run/token"))) << "the token was rewritten";
  EXPECT_EQ(after[path("run/metrics.jsonl")], before.at(path("run/metrics.jsonl")));
}

TEST_F(RunDirOwnership, AnEditedJobOnResumeNamesTheChangedFieldsBeforeAnyWorkerStarts) {
  const std::string job = write_mlp_job(dir_.string(), 1);
  ASSERT_EQ(run(job, path("run")), 0) << output_;
  std::string text = read_text(job);
  text.replace(text.find("lr: 0.05"), 8, "lr: 0.01");
  const std::string edited = path("edited.textproto");
  std::ofstream(edited) << text;
  const auto before = snapshot(path("run/checkpoints"));
  EXPECT_EQ(run(edited, path("run"), {"--resume", "--epochs", "2"}), 2) << output_;
  EXPECT_NE(output_.find("optimizer.lr"), std::string::npos) << output_;
  EXPECT_EQ(output_.find("coordinator"), std::string::npos) << "something started:\n" << output_;
  EXPECT_EQ(snapshot(path("run/checkpoints")), before);
}

}  // namespace
