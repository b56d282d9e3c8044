// Where a host named on an mpirun hostfile lives as seen from this machine: this network namespace,
// a named network namespace (`ip netns add NS`, listed under /run/netns), or elsewhere. Lets
// `lockstep agent` stand in for ssh, so one machine can play several hosts in tests.
#pragma once

#include <string>

namespace lockstep::commands {

struct HostPlace {
  enum class Kind { kLocal, kNamespace, kRemote };
  Kind kind = Kind::kRemote;
  std::string netns;  // kNamespace: the namespace's name under /run/netns
};

// host: a name or address, optionally "user@host". Loopback addresses, this machine's hostname and
// addresses configured in this namespace are kLocal; an address configured in exactly one other
// named namespace is kNamespace; anything else (also names that do not resolve) is kRemote.
// Throws naming the host when it is configured in several named namespaces.
HostPlace locate_host(const std::string& host);

// Moves the calling process into the named network namespace; throws naming host and namespace.
void enter_netns(const std::string& netns, const std::string& host);

}  // namespace lockstep::commands
