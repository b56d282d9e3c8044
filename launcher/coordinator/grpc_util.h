// Shared by the coordinator's server and client: the credential's metadata key, keepalive timings,
// status codes as names, PEM files read with errors that name them, secrets compared in constant
// time.
#pragma once

#include <grpcpp/support/status.h>

#include <string>
#include <string_view>

namespace lockstep::grpc_util {

inline constexpr const char* kTokenKey = "lockstep-token";
inline constexpr const char* kAuthMessage = "missing or wrong lockstep-token";

// HTTP/2 keepalive: a ping every 10 s on an idle connection, dead after 5 s without the ack. The
// server accepts pings every 5 s or more (fewer than the client sends), so it never answers them
// with GOAWAY "too_many_pings".
inline constexpr int kKeepaliveTimeMs = 10000;
inline constexpr int kKeepaliveTimeoutMs = 5000;
inline constexpr int kMinPingIntervalMs = 5000;

// Compares every byte of `expected` whatever the first difference, so the time taken does not
// tell an attacker how much of a guess was right.
bool constant_time_equal(std::string_view given, std::string_view expected);

// "UNAUTHENTICATED", "UNAVAILABLE", ...
const char* code_name(grpc::StatusCode c);
// "CODE: message"
std::string status_text(const grpc::Status& s);
// The file's contents; throws Error "cannot read WHAT PATH" when it cannot be read or is empty.
std::string read_file(const std::string& path, const std::string& what);

// gRPC's own log lines (source paths, internal status dumps) stay off the user's terminal: every
// failure that matters is reported by lockstep in one line. $LOCKSTEP_GRPC_LOG=1 lets them through.
// Idempotent; call before the first channel or server.
void quiet_grpc_logs();

// HOST:PORT (or unix:PATH) checked: throws Error naming `what` and the value when the port is not a
// whole number in [1, 65535] or there is no host.
void check_address(const std::string& address, const std::string& what);

}  // namespace lockstep::grpc_util
