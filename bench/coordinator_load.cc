// The control plane's load curve: heartbeat latency (p50/p99/max) and the coordinator process's CPU
// against the number of simulated ranks, each against a fresh `lockstep coordinator` process
// (tests/control/load_driver.h). Run by bench/control_plane.sh.
// usage: coordinator_load LOCKSTEP_BINARY WORK_DIR [SECONDS=10] [INTERVAL_S=0.5] [RANKS_PER_NODE=1] RANKS...
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tests/control/load_driver.h"

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: %s LOCKSTEP WORK_DIR SECONDS INTERVAL_S RANKS_PER_NODE RANKS...\n", argv[0]);
    return 2;
  }
  lockstep::testing::LoadOptions o;
  o.lockstep = argv[1];
  o.work_dir = argv[2];
  o.seconds = std::atof(argv[3]);
  o.interval_s = std::atof(argv[4]);
  o.ranks_per_node = std::atoi(argv[5]);
  std::printf("%s\n", lockstep::testing::load_header().c_str());
  int rc = 0;
  for (int i = 6; i < argc; ++i) {
    o.ranks = std::atoi(argv[i]);
    const auto r = lockstep::testing::run_load(o);
    if (!r.error.empty()) {
      std::printf("%6d error: %s\n", o.ranks, r.error.c_str());
      rc = 1;
      continue;
    }
    std::printf("%s\n", lockstep::testing::load_row(r).c_str());
    std::fflush(stdout);
  }
  return rc;
}
