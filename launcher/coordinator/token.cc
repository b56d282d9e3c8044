// The job token: where ctl and workers find it, and how the coordinator makes one.
#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "launcher/coordinator/client.h"
#include "launcher/coordinator/grpc_util.h"

namespace lockstep {
namespace {

std::string trimmed(std::string s, const std::string& source) {
  while (!s.empty() && std::strchr(" \t\r\n", s.back())) s.pop_back();
  LOCKSTEP_FAIL_IF(s.empty()) << "the token in " << source << " is empty";
  for (char c : s)  // gRPC metadata values must be printable ASCII
    LOCKSTEP_FAIL_IF(c < 0x20 || c > 0x7e) << "the token in " << source << " has a non-printable character";
  return s;
}

}  // namespace

std::string read_token(const std::string& token_file_flag) {
  if (!token_file_flag.empty())
    return trimmed(grpc_util::read_file(token_file_flag, "token file"), "--token-file " + token_file_flag);
  if (const char* t = std::getenv("LOCKSTEP_TOKEN"); t && *t) return trimmed(t, "$LOCKSTEP_TOKEN");
  if (const char* f = std::getenv("LOCKSTEP_TOKEN_FILE"); f && *f)
    return trimmed(grpc_util::read_file(f, "token file ($LOCKSTEP_TOKEN_FILE)"), std::string("$LOCKSTEP_TOKEN_FILE ") + f);
  LOCKSTEP_FAIL_IF(true) << "no job token: tried --token-file (not given), $LOCKSTEP_TOKEN (unset) and "
                            "$LOCKSTEP_TOKEN_FILE (unset)";
  return {};
}

std::string new_token() {
  unsigned char bytes[32];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    LOCKSTEP_FAIL_IF(n < 0 && errno != EINTR) << "getrandom failed: " << std::strerror(errno);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

}  // namespace lockstep
