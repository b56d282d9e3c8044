// Every malformed job file of the corpus (tests/launcher/bad_jobs, each naming what its error must
// contain) is refused by `lockstep launch -n 2` before any worker starts: non-zero exit, the file and
// field named, and no run directory created (the run directory, its token and the coordinator come
// only after the checks).
#include <gtest/gtest.h>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"
#include "tests/launcher/data_faults.h"

namespace fs = std::filesystem;
using namespace lockstep::testing;

namespace {

TEST(LaunchRejects, EveryMalformedJobBeforeAnyWorkerStarts) {
  const fs::path corpus = fs::path(LOCKSTEP_SOURCE_DIR) / "tests/launcher/bad_jobs";
  const fs::path runs = fs::temp_directory_path() / ("lockstep_reject_" + std::to_string(::getpid()));
  fs::remove_all(runs);
  int files = 0;
  for (const auto& e : fs::directory_iterator(corpus)) {
    if (e.path().extension() != ".textproto") continue;
    ++files;
    const std::string text = read_text(e.path().string());
    const std::string prefix = "# expect: ";
    ASSERT_EQ(text.rfind(prefix, 0), 0u) << e.path() << " has no '# expect:' line";
    const std::string expect = text.substr(prefix.size(), text.find('\n') - prefix.size());
    const fs::path run = runs / e.path().stem();
    const auto [st, out] =
        run_command(lockstep_exe() + " launch -n 2 " + e.path().string() + " --run-dir " + run.string(), 20);
    EXPECT_NE(st, 0) << e.path().filename() << " was accepted:\n" << out;
    EXPECT_NE(out.find(e.path().string()), std::string::npos) << "the file is not named:\n" << out;
    EXPECT_NE(out.find(expect), std::string::npos) << e.path().filename() << ": expected \"" << expect << "\" in\n"
                                                   << out;
    EXPECT_FALSE(fs::exists(run)) << e.path().filename() << ": the run directory was created";
    EXPECT_EQ(out.find("coordinator"), std::string::npos) << "a coordinator started for " << e.path().filename();
  }
  EXPECT_GE(files, 20);
  fs::remove_all(runs);
}

class LaunchRejectsData : public TestDirectory {};

// Every data fault is found from the files' headers before the run directory, the token, the
// coordinator or any worker exists (before: each was a worker's error inside MPI_ABORT output, and
// a data set of 0 samples ran and wrote ckpt-000000000).
TEST_F(LaunchRejectsData, EveryDataFaultBeforeTheRunDirectoryExists) {
  for (const auto& f : data_faults()) {
    SCOPED_TRACE(f.name);
    const fs::path data = dir_ / ("data_" + f.name);
    write_good_data(data);
    f.damage(data);
    const std::string data_dir = f.data_is_file ? (data / "train-images-idx3-ubyte").string() : data.string();
    const std::string job = write_fault_job(dir_, f.model, data_dir);
    {  // a launched job keeps its metrics in its run directory: drop the train tests' absolute path
      std::string text = read_text(job);
      const size_t at = text.find("metrics_file:");
      if (at != std::string::npos) text.erase(at, text.find('\n', at) - at);
      std::ofstream(job, std::ios::trunc) << text;
    }
    const fs::path run = dir_ / ("run_" + f.name);
    const auto [st, out] = run_command(lockstep_exe() + " launch -n 2 " + job + " --run-dir " + run.string(), 20);
    EXPECT_NE(st, 0) << out;
    EXPECT_NE(st, 124) << "timed out: " << out;
    EXPECT_NE(out.find(job + ": "), std::string::npos) << "the job file is not named:\n" << out;
    EXPECT_NE(out.find(f.expect), std::string::npos) << "expected \"" << f.expect << "\" in\n" << out;
    EXPECT_FALSE(fs::exists(run)) << "the run directory was created";
    EXPECT_EQ(out.find("coordinator"), std::string::npos) << out;
    EXPECT_EQ(out.find("MPI_ABORT"), std::string::npos) << out;
  }
}

// Numbers on the command line: the whole argument, in range (before: -n 4294967297 ran on 1 rank).
TEST_F(LaunchRejectsData, OptionsAreParsedStrictly) {
  const std::string job = write_mlp_job(dir_.string(), 1);
  const fs::path run = dir_ / "run";
  for (const std::string& bad : {std::string("-n 4294967297"), std::string("-n 2 --epochs abc"),
                                 std::string("-n 2 --epochs -5"), std::string("-n 2 --max-restarts -1"),
                                 std::string("-n 2 --port 1e3")}) {
    SCOPED_TRACE(bad);
    const auto [st, out] = run_command(lockstep_exe() + " launch " + bad + " " + job + " --run-dir " + run.string(), 20);
    EXPECT_NE(st, 0) << out;
    EXPECT_NE(out.find("expected a whole number in ["), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(run));
  }
}

}  // namespace
