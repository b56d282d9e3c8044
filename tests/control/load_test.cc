// The control plane under load: 1,024 simulated ranks heartbeat a real `lockstep coordinator`
// every 0.5 s over loopback for a few seconds (tests/control/load_driver.h). Acceptance (issue 11):
// p99 heartbeat latency under the heartbeat interval, no failed call, and no rank the launcher
// would declare lost. The full curve (64..4096 ranks, coordinator CPU) is bench/control_plane.sh.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/control/load_driver.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;

TEST(ControlPlaneLoad, ThousandRanksHeartbeatWithinTheInterval) {
  testing::LoadOptions o;
  o.lockstep = std::string(LOCKSTEP_BINARY_DIR) + "/launcher/lockstep";
  if (!fs::exists(o.lockstep)) GTEST_SKIP() << "build the lockstep target first (" << o.lockstep << ")";
  o.work_dir = (fs::temp_directory_path() / ("lockstep-load-" + std::to_string(::getpid()))).string();
  o.ranks = 1024;
  o.interval_s = 0.5;
  o.timeout_s = 10;
  o.seconds = 4;
  o.client_threads = 2;
  const testing::LoadResult r = testing::run_load(o);
  fs::remove_all(o.work_dir);
  ASSERT_TRUE(r.error.empty()) << r.error;
  std::printf("%s\n%s\n", testing::load_header().c_str(), testing::load_row(r).c_str());
  EXPECT_EQ(r.registered, o.ranks);
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(r.lost, 0) << "max since_heartbeat_s " << r.max_since_heartbeat_s;
  // Every rank's heartbeats were answered: calls ~ ranks x seconds / interval (each rank's phase
  // is random, so its count in the window varies by one).
  const double expected = o.ranks * o.seconds / o.interval_s;
  EXPECT_GT(r.calls, 0.9 * expected) << "calls answered in " << o.seconds << " s";
  EXPECT_LT(r.p99_ms, 1000 * o.interval_s) << "p99 heartbeat latency must stay under the interval";
}

}  // namespace
}  // namespace lockstep
