// Every malformed job file of the corpus (tests/launcher/bad_jobs, each naming what its error must
// contain) is refused by `lockstep launch -n 2` before any worker starts: non-zero exit, the file and
// field named, and no run directory created (the run directory, its token and the coordinator come
// only after the checks).
#include <gtest/gtest.h>

#include "tests/control/process_util.h"
#include "tests/launch/launch_util.h"

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

}  // namespace
