// Runs the lockstep command as a user would, under a timeout, capturing its exit status and output.
#pragma once

#include <string>

#include "tests/test_util.h"

namespace lockstep::testing {

inline std::string lockstep_binary() { return std::string(LOCKSTEP_BINARY_DIR) + "/launcher/lockstep"; }

inline CommandResult run_command(const std::string& args, int timeout_s = 600) {
  const std::string cmd =
      "timeout -k 5 " + std::to_string(timeout_s) + " " + lockstep_binary() + " " + args + " 2>&1";
  return capture(cmd);
}

inline std::string source_path(const std::string& rel) { return std::string(LOCKSTEP_SOURCE_DIR) + "/" + rel; }

}  // namespace lockstep::testing
