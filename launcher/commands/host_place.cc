// Locates a host among this namespace, the named network namespaces and the rest of the world by
// comparing its resolved addresses with those configured on interfaces (getifaddrs) in each place.
// Named namespaces are visited with setns(2) and left again before the next one.
#include "launcher/commands/host_place.h"

#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "runtime/check.h"

namespace lockstep::commands {
namespace {

constexpr const char* kNetnsDir = "/run/netns";  // where `ip netns add` pins namespaces

struct Addr {
  int family = 0;
  std::array<unsigned char, 16> bytes{};  // IPv4: first 4 bytes
  bool operator==(const Addr&) const = default;
};

bool to_addr(const sockaddr* sa, Addr& out) {
  if (!sa) return false;
  out = Addr{};
  out.family = sa->sa_family;
  if (sa->sa_family == AF_INET) {
    std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return true;
  }
  if (sa->sa_family == AF_INET6) {
    std::memcpy(out.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
    return true;
  }
  return false;
}

bool is_loopback(const Addr& a) {
  static const std::array<unsigned char, 16> v6_loopback{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return (a.family == AF_INET && a.bytes[0] == 127) || (a.family == AF_INET6 && a.bytes == v6_loopback);
}

// Addresses the host name or literal resolves to; empty when it does not resolve here.
std::vector<Addr> resolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return {};
  std::vector<Addr> out;
  for (addrinfo* p = res; p; p = p->ai_next)
    if (Addr a; to_addr(p->ai_addr, a)) out.push_back(a);
  freeaddrinfo(res);
  return out;
}

// Addresses configured on the interfaces of the calling thread's network namespace.
std::vector<Addr> interface_addrs() {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return {};
  std::vector<Addr> out;
  for (ifaddrs* p = list; p; p = p->ifa_next)
    if (Addr a; to_addr(p->ifa_addr, a)) out.push_back(a);
  freeifaddrs(list);
  return out;
}

bool any_common(const std::vector<Addr>& a, const std::vector<Addr>& b) {
  return std::any_of(a.begin(), a.end(), [&](const Addr& x) { return std::find(b.begin(), b.end(), x) != b.end(); });
}

struct Fd {
  int fd = -1;
  explicit Fd(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {}
  ~Fd() { if (fd >= 0) ::close(fd); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

bool same_file(int a, int b) {
  struct stat sa, sb;
  return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

// Named namespaces (other than the caller's) with one of addrs configured. Namespaces this
// process may not enter (no CAP_SYS_ADMIN) are passed over: it cannot reach them anyway.
std::vector<std::string> namespaces_holding(const std::vector<Addr>& addrs, const std::string& host) {
  std::vector<std::string> names, found;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kNetnsDir, ec)) names.push_back(e.path().filename());
  if (names.empty()) return found;
  std::sort(names.begin(), names.end());
  Fd self("/proc/self/ns/net");
  const int err = errno;
  LOCKSTEP_FAIL_IF(self.fd < 0) << "agent: host " << host << ": cannot open /proc/self/ns/net: " << std::strerror(err);
  for (const auto& name : names) {
    Fd ns(std::string(kNetnsDir) + "/" + name);
    if (ns.fd < 0 || same_file(ns.fd, self.fd) || setns(ns.fd, CLONE_NEWNET) != 0) continue;
    if (any_common(addrs, interface_addrs())) found.push_back(name);
    LOCKSTEP_CHECK(setns(self.fd, CLONE_NEWNET) == 0) << "agent: host " << host << ": cannot leave namespace " << name;
  }
  return found;
}

}  // namespace

HostPlace locate_host(const std::string& host_arg) {
  std::string host = host_arg.substr(host_arg.find('@') + 1);  // npos + 1 == 0: no user part
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::array<char, 256> hostname{};
  gethostname(hostname.data(), hostname.size() - 1);
  if (host == "localhost" || host == hostname.data()) return {HostPlace::Kind::kLocal, ""};
  const std::vector<Addr> addrs = resolve(host);
  if (addrs.empty()) return {};  // maybe a name only ssh knows (ssh_config Host alias)
  // Loopback addresses are configured in every namespace with lo up: they always mean this one.
  if (std::any_of(addrs.begin(), addrs.end(), is_loopback) || any_common(addrs, interface_addrs()))
    return {HostPlace::Kind::kLocal, ""};
  const std::vector<std::string> found = namespaces_holding(addrs, host);
  if (found.empty()) return {};
  std::string list;
  for (const auto& n : found) list += (list.empty() ? "" : ", ") + n;
  LOCKSTEP_FAIL_IF(found.size() > 1) << "agent: host " << host_arg
                                     << " is configured in several network namespaces (" << list
                                     << "); cannot tell which one is meant";
  return {HostPlace::Kind::kNamespace, found[0]};
}

void enter_netns(const std::string& netns, const std::string& host) {
  const std::string path = std::string(kNetnsDir) + "/" + netns;
  Fd ns(path);
  const int open_err = errno;
  LOCKSTEP_FAIL_IF(ns.fd < 0) << "agent: host " << host << ": cannot open " << path << ": " << std::strerror(open_err);
  const int err = setns(ns.fd, CLONE_NEWNET) == 0 ? 0 : errno;
  LOCKSTEP_FAIL_IF(err != 0) << "agent: host " << host << ": cannot enter network namespace " << netns << ": "
                             << std::strerror(err) << (err == EPERM ? " (needs root or CAP_SYS_ADMIN)" : "");
}

}  // namespace lockstep::commands
