// `lockstep report RUN_DIR -o FILE` as a user runs it: the page never replaces a file the run wrote
// (result.json, trace.json, trace/rank-0.json, the TensorBoard events file, ...), a device or a
// FIFO, and a directory or a missing one is named in one line; the run's own report.html is replaced.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/launcher/run_command.h"

namespace {

namespace fs = std::filesystem;
using lockstep::testing::run_command;

class ReportCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    if (run_command("--help", 60).output.find("lockstep report") == std::string::npos)
      GTEST_SKIP() << "this lockstep has no report command (built without gRPC)";
    dir_ = (fs::temp_directory_path() / ("lockstep_report_cmd_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
    run_ = dir_ + "/run";
    fs::create_directories(run_ + "/trace");
    for (const char* f : {"job.textproto", "metrics.jsonl", "result.json", "trace.json", "trace/rank-0.json",
                          "events.out.tfevents.1.host", "coordinator.json", "mpirun.log"})
      std::ofstream(run_ + "/" + f) << (std::string(f) == "job.textproto" ? "epochs: 1\n" : "");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_, run_;
};

TEST_F(ReportCommand, NeverReplacesTheRunsOwnFiles) {
  for (const char* f : {"result.json", "trace.json", "trace/rank-0.json", "events.out.tfevents.1.host",
                        "coordinator.json", "metrics.jsonl", "job.textproto", "mpirun.log"}) {
    const std::string out = run_ + "/" + f;
    std::ofstream(out) << "kept " << f;
    const auto r = run_command("report " + run_ + " -o " + out, 60);
    EXPECT_EQ(r.status, 2) << f << ": " << r.output;
    EXPECT_EQ(r.output.rfind("lockstep: error: -o " + out + ": is ", 0), 0u) << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    std::ifstream in(out);
    std::stringstream s;
    s << in.rdbuf();
    EXPECT_EQ(s.str(), std::string("kept ") + f) << f << " was replaced";
  }
  const auto r = run_command("report " + run_, 60);  // its own page, twice
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(run_command("report " + run_ + " -o " + run_ + "/report.html", 60).status, 0);
}

TEST_F(ReportCommand, NamesADirectoryFifoOrMissingDirectory) {
  auto r = run_command("report " + run_ + " -o " + dir_, 60);
  EXPECT_EQ(r.output, "lockstep: error: -o " + dir_ + ": is a directory; give the name of a regular file to write\n");
  const std::string fifo = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  r = run_command("report " + run_ + " -o " + fifo, 60);
  EXPECT_EQ(r.output, "lockstep: error: -o " + fifo + ": is a FIFO; give the name of a regular file to write\n");
  struct stat st {};
  ASSERT_EQ(::stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  r = run_command("report " + run_ + " -o " + dir_ + "/no/r.html", 60);
  EXPECT_EQ(r.output, "lockstep: error: -o " + dir_ + "/no/r.html: no such directory: " + dir_ + "/no\n");
}

TEST_F(ReportCommand, AFifoMetricsFileIsANoteNotAHang) {
  fs::remove(run_ + "/metrics.jsonl");
  ASSERT_EQ(::mkfifo((run_ + "/metrics.jsonl").c_str(), 0600), 0);
  const auto r = run_command("report " + run_ + " -o " + dir_ + "/r.html", 20);
  EXPECT_EQ(r.status, 0) << r.output;  // 124: it waited for a writer
  std::ifstream in(dir_ + "/r.html");
  std::stringstream s;
  s << in.rdbuf();
  EXPECT_NE(s.str().find("is a FIFO, not a regular file"), std::string::npos);
}

}  // namespace
