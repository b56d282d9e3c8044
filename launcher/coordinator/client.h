// The coordinator's client, used by workers (register, heartbeats, phases) and by `lockstep ctl`.
// Every RPC carries a credential ("lockstep-token") and a deadline; a failure throws RpcError
// naming the coordinator's address and the gRPC status. Heartbeats run on a Boost.Asio timer thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "proto/coordinator.pb.h"
#include "runtime/check.h"

namespace lockstep {

struct ClientOptions {
  std::string address;  // HOST:PORT
  // The credential the calls carry: the user token (ctl), or the worker secret (a worker, until
  // register_worker replaces it with the rank's session credential). Cleaned as clean_token.
  std::string token;
  std::string tls_ca;             // server CA PEM path; empty: insecure channel
  std::string tls_cert, tls_key;  // client certificate (optional)
  double rpc_deadline_s = 5.0;    // every RPC gets a deadline
  int max_message_bytes = 4 << 20;
};

// A failed RPC: code() is the grpc::StatusCode as an int (16 = UNAUTHENTICATED, 14 = UNAVAILABLE).
class RpcError : public Error {
 public:
  RpcError(const std::string& what, int code) : Error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

class CoordinatorClient {
 public:
  explicit CoordinatorClient(ClientOptions o);
  ~CoordinatorClient();  // stops heartbeats (an RPC in flight is cancelled)
  CoordinatorClient(const CoordinatorClient&) = delete;
  CoordinatorClient& operator=(const CoordinatorClient&) = delete;

  // Retries UNAVAILABLE and DEADLINE_EXCEEDED until `wait_s` passes (the coordinator may still be
  // starting); throws RpcError naming the address and the status otherwise (UNAUTHENTICATED: says
  // the token is wrong). On success every later call of this client carries the rank's session
  // credential from the reply instead of the worker secret. Call it before start_heartbeats.
  proto::RegisterReply register_worker(const proto::RegisterRequest& r, double wait_s = 30);

  // Background heartbeats: calls metrics() and sends it every interval_s; keeps the newest reply.
  // If no heartbeat succeeds for timeout_s, calls on_lost(message) once, on the heartbeat thread
  // (the message names the address and how long ago the last reply came). on_lost must not destroy
  // this client. A second call replaces the first.
  void start_heartbeats(int rank, double interval_s, double timeout_s, std::function<proto::StepMetrics()> metrics,
                        std::function<void(const std::string&)> on_lost);
  void stop_heartbeats();
  proto::HeartbeatReply last_heartbeat() const;  // thread-safe; empty before the first reply

  // Synchronous; throw RpcError (naming the address and the status) on failure.
  proto::HeartbeatReply heartbeat_now(int rank, const proto::StepMetrics& m);
  proto::NextPhasesReply next_phases(const proto::NextPhasesRequest& r);
  void report_phase(const proto::PhaseReport& r);
  proto::ControlReply control(proto::ControlRequest::Command c);
  // Watch (user token): calls on_event for each event, in order, until the stream ends (after
  // FINISHED) or on_event returns false (the call is cancelled then). No deadline: it lasts as long
  // as the job. Throws RpcError on a stream that ends with an error.
  void watch(const proto::WatchRequest& r, const std::function<bool(const proto::WatchEvent&)>& on_event);

  const std::string& address() const { return opts_.address; }

 private:
  struct Impl;
  struct Heartbeats;
  ClientOptions opts_;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<Heartbeats> hb_;
};

// The user token (for ctl): the file --token-file names if given, else $LOCKSTEP_TOKEN, else the
// file $LOCKSTEP_TOKEN_FILE names; cleaned as clean_token. Throws Error saying which were tried.
std::string read_token(const std::string& token_file_flag);
// The worker secret (for Register): the file --secret-file names if given, else
// $LOCKSTEP_WORKER_SECRET, else the file $LOCKSTEP_WORKER_SECRET_FILE names; as read_token.
std::string read_worker_secret(const std::string& secret_file_flag);
// `value` without trailing whitespace (a file's newline); throws Error "SOURCE is empty" or "SOURCE
// has a non-printable character" otherwise. No message ever shows the value.
std::string clean_token(std::string value, const std::string& source);
// 32 random bytes from getrandom(2), as 64 hex digits.
std::string new_token();

}  // namespace lockstep
