// Two "hosts" on one machine for tests: network namespaces lockstep-a-<pid> and lockstep-b-<pid>
// joined by a veth pair (10.231.X.1/24 in A, 10.231.X.2/24 in B, lo up in both). X is the first
// subnet no namespace uses yet (chosen under a lock file), so concurrent test processes never
// share an address and `lockstep agent` always finds one namespace per host. Namespaces left by
// a crashed earlier run (their pid is gone) are deleted first; the destructor deletes ours, and
// the veth pair goes with them. Needs root (ip netns add).
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <string>

#include "tests/test_util.h"

namespace lockstep::testing::netns {

using ShellResult = CommandResult;

inline std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// `sh -c cmd` under `timeout`, its output captured.
inline ShellResult shell(const std::string& cmd, int timeout_s) {
  const std::string line = "timeout -k 5 " + std::to_string(timeout_s) + " sh -c " + quoted(cmd) + " 2>&1";
  return capture(line);
}

class NetnsPair {
 public:
  NetnsPair() {
    if (geteuid() != 0) {
      error_ = "not root: creating network namespaces needs root";
      return;
    }
    const int lock = ::open("/tmp/lockstep-netns.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock >= 0) flock(lock, LOCK_EX);  // held while picking the subnet and creating
    delete_leftovers();
    const int x = free_subnet();
    subnet_ = "10.231." + std::to_string(x) + ".0/24";
    addr_a_ = "10.231." + std::to_string(x) + ".1";
    addr_b_ = "10.231." + std::to_string(x) + ".2";
    const std::string pid = std::to_string(::getpid());
    a_ = "lockstep-a-" + pid;
    b_ = "lockstep-b-" + pid;
    veth_a_ = "lsa" + pid;  // interface names: 15 characters at most
    veth_b_ = "lsb" + pid;
    for (const std::string& cmd :
         {"ip netns add " + a_, "ip netns add " + b_,
          "ip link add " + veth_a_ + " netns " + a_ + " type veth peer name " + veth_b_ + " netns " + b_,
          "ip -n " + a_ + " addr add " + addr_a_ + "/24 dev " + veth_a_,
          "ip -n " + b_ + " addr add " + addr_b_ + "/24 dev " + veth_b_, "ip -n " + a_ + " link set lo up",
          "ip -n " + b_ + " link set lo up", "ip -n " + a_ + " link set " + veth_a_ + " up",
          "ip -n " + b_ + " link set " + veth_b_ + " up", in_a("true")}) {
      const ShellResult r = shell(cmd, 10);
      if (r.status != 0) {
        error_ = "`" + cmd + "` failed: " + r.output;
        break;
      }
    }
    if (lock >= 0) ::close(lock);
  }
  ~NetnsPair() {
    shell("ip netns del " + a_ + "; ip netns del " + b_, 10);
  }
  NetnsPair(const NetnsPair&) = delete;
  NetnsPair& operator=(const NetnsPair&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& a() const { return a_; }
  const std::string& b() const { return b_; }
  const std::string& addr_a() const { return addr_a_; }
  const std::string& addr_b() const { return addr_b_; }
  const std::string& subnet() const { return subnet_; }
  // `cmd` run inside namespace A: a prefix for shell().
  std::string in_a(const std::string& cmd) const { return "ip netns exec " + a_ + " " + cmd; }

  struct Bytes {
    uint64_t rx = 0, tx = 0;
  };
  // The byte counters of A's end of the veth pair.
  Bytes veth_a_bytes() const {
    auto read = [&](const char* what) {
      const ShellResult r = shell(in_a("cat /sys/class/net/" + veth_a_ + "/statistics/" + what), 10);
      return r.status == 0 ? std::stoull(r.output) : 0ull;
    };
    return {read("rx_bytes"), read("tx_bytes")};
  }

 private:
  static void delete_leftovers() {
    const std::regex ours("lockstep-[ab]-([0-9]+)");
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/run/netns", ec)) {
      std::smatch m;
      const std::string name = e.path().filename();
      if (std::regex_match(name, m, ours) && ::kill(std::stoi(m[1]), 0) != 0 && errno == ESRCH)
        shell("ip netns del " + name, 10);
    }
  }
  // The smallest X with 10.231.X.0/24 on no interface of any named namespace.
  static int free_subnet() {
    const ShellResult r = shell("ip -all netns exec ip -o -4 addr show", 10);
    std::set<int> used;
    const std::regex addr("inet 10\\.231\\.([0-9]+)\\.");
    for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), addr); it != std::sregex_iterator(); ++it)
      used.insert(std::stoi((*it)[1]));
    int x = 0;
    while (used.count(x) && x < 255) ++x;
    return x;
  }

  std::string error_, a_, b_, veth_a_, veth_b_, addr_a_, addr_b_, subnet_;
};

}  // namespace lockstep::testing::netns
