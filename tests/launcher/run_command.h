// Runs the lockstep command as a user would, under a timeout, capturing its exit status and output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace lockstep::testing {

struct CommandResult {
  int status = -1;  // exit status; 124 when the timeout killed it
  std::string output;  // stdout and stderr together
};

inline std::string lockstep_binary() { return std::string(LOCKSTEP_BINARY_DIR) + "/launcher/lockstep"; }

inline CommandResult run_command(const std::string& args, int timeout_s = 600) {
  const std::string cmd =
      "timeout -k 5 " + std::to_string(timeout_s) + " " + lockstep_binary() + " " + args + " 2>&1";
  CommandResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t got;
  while ((got = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), got);
  const int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

inline std::string source_path(const std::string& rel) { return std::string(LOCKSTEP_SOURCE_DIR) + "/" + rel; }

}  // namespace lockstep::testing
