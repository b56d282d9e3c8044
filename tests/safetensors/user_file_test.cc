// The rules for user-named files (runtime/checkpoint/user_file.h), then `lockstep export` keeping
// them: an output never replaces a device, FIFO, directory or a run directory's (or checkpoint's)
// own file, a missing directory is named as a directory, and an input that is not a regular file
// (a FIFO) is refused at once instead of blocking. Every refusal is one line naming the path.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/check.h"
#include "runtime/checkpoint/user_file.h"
#include "runtime/safetensors/safetensors.h"
#include "tests/checkpoint/checkpoint_test_util.h"
#include "tests/launcher/run_command.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;

std::string output_refusal(const std::string& path, const std::string& allowed = "") {
  try {
    checkpoint_io::check_output_file("--out ", path, allowed);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A run directory as lockstep launch leaves it, with a checkpoint.
void make_run_dir(const std::string& d) {
  fs::create_directories(d + "/checkpoints/ckpt-000000004");
  fs::create_directories(d + "/trace");
  for (const char* f : {"metrics.jsonl", "job.textproto", "token", "worker_secret", ".lock", "result.json",
                        "coordinator.json", "trace.json", "mpirun.log", "events.out.tfevents.1.host",
                        "trace.1.json", "fmnist-cnn-ddp.metrics.jsonl",
                        "trace/rank-0.json", "checkpoints/ckpt-000000004/MANIFEST",
                        "checkpoints/ckpt-000000004/model.pb"})
    std::ofstream(d + "/" + f) << "the run's own " << f;
}

TEST(UserOutputFile, NeverARunDirectorysOwnFile) {
  testing::ScratchDir dir;
  const std::string run = dir.path() + "/runs/a";
  make_run_dir(run);
  for (const char* f : {"metrics.jsonl", "job.textproto", "token", "worker_secret", ".lock", "result.json",
                        "coordinator.json", "trace.json", "mpirun.log", "events.out.tfevents.1.host", "report.html",
                        "trace.1.json", "fmnist-cnn-ddp.metrics.jsonl"}) {
    const std::string m = output_refusal(run + "/" + f);
    EXPECT_EQ(m.rfind("--out " + run + "/" + f + ": is the run's own " + f, 0), 0u) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  EXPECT_EQ(output_refusal(run + "/report.html", "report.html"), "") << "the report may replace its own page";
  // Inside checkpoints/ and trace/, at any depth; and through another spelling of the path.
  for (const std::string& p : {run + "/checkpoints/ckpt-000000004/model.pb", run + "/checkpoints/x.safetensors",
                               run + "/trace/rank-0.json", dir.path() + "/runs/./a/../a/trace/rank-0.json"}) {
    const std::string m = output_refusal(p);
    EXPECT_NE(m.find(": is inside the"), std::string::npos) << p << ": " << m;
  }
  fs::create_symlink(run, dir.path() + "/link");
  EXPECT_NE(output_refusal(dir.path() + "/link/metrics.jsonl").find("is the run's own metrics.jsonl"), std::string::npos);
  // A copied checkpoint outside any run directory is still a checkpoint.
  fs::copy(run + "/checkpoints/ckpt-000000004", dir.path() + "/ckpt");
  EXPECT_NE(output_refusal(dir.path() + "/ckpt/model.pb").find("is inside the checkpoint"), std::string::npos);
  // Beside the run's files, a new name is fine.
  EXPECT_EQ(output_refusal(run + "/model.safetensors"), "");
  EXPECT_EQ(output_refusal(run + "/trace.1a.json"), "") << "not an earlier timeline's name";
  EXPECT_EQ(output_refusal(run + "/new.jsonl"), "") << "no metrics file there yet";
  EXPECT_EQ(output_refusal(dir.path() + "/model.safetensors"), "");
}

TEST(UserOutputFile, NeverADeviceFifoOrDirectory) {
  testing::ScratchDir dir;
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_EQ(output_refusal(fifo), "--out " + fifo + ": is a FIFO; give the name of a regular file to write");
  EXPECT_EQ(output_refusal("/dev/null"), "--out /dev/null: is a character device; give the name of a regular file to write");
  EXPECT_EQ(output_refusal(dir.path()), "--out " + dir.path() + ": is a directory; give the name of a regular file to write");
  EXPECT_EQ(output_refusal(dir.path() + "/nope/m.safetensors"),
            "--out " + dir.path() + "/nope/m.safetensors: no such directory: " + dir.path() + "/nope");
}

TEST(UserOutputFile, SafetensorsWriteNamesTheDirectoryNotATemporaryFile) {
  testing::ScratchDir dir;
  safetensors::File f;
  try {
    safetensors::write_file(dir.path() + "/nope/m.safetensors", f);
    FAIL() << "written into a missing directory";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), dir.path() + "/nope/m.safetensors: no such directory: " + dir.path() + "/nope");
  }
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(safetensors::write_file(fifo, f), Error);
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode)) << "the FIFO was replaced";
}

TEST(UserInputFile, AFifoIsRefusedNotOpened) {
  testing::ScratchDir dir;
  const std::string fifo = dir.path() + "/w.safetensors";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THROW(checkpoint_io::check_input_file("x: ", fifo), Error);
  try {  // would block in open() without O_NONBLOCK: the suite's timeout catches a regression
    safetensors::read_file(fifo);
    FAIL() << "a FIFO was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a FIFO, not a regular file"), std::string::npos) << e.what();
  }
  checkpoint_io::check_input_file("x: ", dir.path() + "/missing");  // the caller says "no such file"
}

bool have_export() { return testing::run_command("--help", 60).output.find("lockstep export") != std::string::npos; }

TEST(ExportCommand, NeverReplacesARunsOwnFileOrADevice) {
  if (!have_export()) GTEST_SKIP() << "this lockstep has no export command (built without gRPC)";
  testing::ScratchDir dir;
  const std::string run = dir.path() + "/a";
  make_run_dir(run);
  for (const std::string& out : {run + "/metrics.jsonl", run + "/checkpoints/ckpt-000000004/model.pb",
                                 run + "/result.json", run + "/trace/rank-0.json"}) {
    const std::string before = slurp(out);
    const auto r = testing::run_command("export " + run + " --safetensors " + out, 60);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_EQ(r.output.rfind("lockstep: error: --safetensors " + out + ": is ", 0), 0u) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_EQ(slurp(out), before) << out << " was changed";
  }
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = testing::run_command("export " + run + " --safetensors " + fifo, 60);
  EXPECT_EQ(r.output, "lockstep: error: --safetensors " + fifo + ": is a FIFO; give the name of a regular file to write\n");
  r = testing::run_command("export " + run + " --safetensors " + dir.path() + "/no/m.safetensors", 60);
  EXPECT_EQ(r.output, "lockstep: error: --safetensors " + dir.path() + "/no/m.safetensors: no such directory: " +
                          dir.path() + "/no\n");
  EXPECT_EQ(r.output.find(".tmp-"), std::string::npos);
}

TEST(ExportCommand, SaysWhatTheSourceIs) {
  if (!have_export()) GTEST_SKIP() << "this lockstep has no export command (built without gRPC)";
  testing::ScratchDir dir;
  const std::string run = dir.path() + "/a";
  fs::create_directories(run);
  std::ofstream(run + "/metrics.jsonl") << "";
  const std::string out = dir.path() + "/m.safetensors";
  auto r = testing::run_command("export " + run + "/metrics.jsonl --safetensors " + out, 60);
  EXPECT_EQ(r.output.rfind("lockstep: error: " + run + "/metrics.jsonl: is a file, not a run or checkpoint directory", 0), 0u)
      << r.output;
  r = testing::run_command("export " + run + " --safetensors " + out, 60);
  EXPECT_EQ(r.output, "lockstep: error: run directory " + run + " has no checkpoint yet\n");
  const std::string fifo = dir.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  r = testing::run_command("export " + fifo + " --safetensors " + out, 20);
  EXPECT_NE(r.status, 124) << "export waited on a FIFO";
  EXPECT_EQ(r.output.rfind("lockstep: error: " + fifo + ": is a FIFO, not a run or checkpoint directory", 0), 0u) << r.output;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
}  // namespace lockstep
