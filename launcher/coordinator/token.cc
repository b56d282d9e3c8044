// The credentials: where ctl finds the user token and a worker the worker secret, how they are
// cleaned, and how the coordinator makes them.
#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "launcher/coordinator/client.h"
#include "launcher/coordinator/grpc_util.h"

namespace lockstep {
std::string clean_token(std::string value, const std::string& source) {
  while (!value.empty() && std::strchr(" \t\r\n", value.back())) value.pop_back();
  LOCKSTEP_FAIL_IF(value.empty()) << source << " is empty";
  for (char c : value)  // gRPC metadata values must be printable ASCII; gRPC itself would log the value
    LOCKSTEP_FAIL_IF(c < 0x20 || c > 0x7e) << source << " has a non-printable character (not shown)";
  return value;
}

std::string read_token(const std::string& token_file_flag) {
  if (!token_file_flag.empty())
    return clean_token(grpc_util::read_file(token_file_flag, "token file"),
                       "the token in --token-file " + token_file_flag);
  if (const char* t = std::getenv("LOCKSTEP_TOKEN"); t && *t) return clean_token(t, "the token in $LOCKSTEP_TOKEN");
  if (const char* f = std::getenv("LOCKSTEP_TOKEN_FILE"); f && *f)
    return clean_token(grpc_util::read_file(f, "token file ($LOCKSTEP_TOKEN_FILE)"),
                       std::string("the token in $LOCKSTEP_TOKEN_FILE ") + f);
  LOCKSTEP_FAIL_IF(true) << "no job token: tried --token-file (not given), $LOCKSTEP_TOKEN (unset) and "
                            "$LOCKSTEP_TOKEN_FILE (unset)";
  return {};
}

std::string read_worker_secret(const std::string& secret_file_flag) {
  if (!secret_file_flag.empty())
    return clean_token(grpc_util::read_file(secret_file_flag, "worker secret file"),
                       "the worker secret in --secret-file " + secret_file_flag);
  if (const char* t = std::getenv("LOCKSTEP_WORKER_SECRET"); t && *t)
    return clean_token(t, "the worker secret in $LOCKSTEP_WORKER_SECRET");
  if (const char* f = std::getenv("LOCKSTEP_WORKER_SECRET_FILE"); f && *f)
    return clean_token(grpc_util::read_file(f, "worker secret file ($LOCKSTEP_WORKER_SECRET_FILE)"),
                       std::string("the worker secret in $LOCKSTEP_WORKER_SECRET_FILE ") + f);
  LOCKSTEP_FAIL_IF(true) << "no worker secret: tried --secret-file (not given), $LOCKSTEP_WORKER_SECRET (unset) and "
                            "$LOCKSTEP_WORKER_SECRET_FILE (unset); `lockstep launch` sets it for its workers, "
                            "`lockstep coordinator` writes it to RUN_DIR/worker_secret";
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
