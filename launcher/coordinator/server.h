// The coordinator: a gRPC server (service Coordinator in proto/coordinator.proto) holding a job's
// registrations, per-rank metrics and phase state machine. Every RPC needs a credential as
// metadata "lockstep-token" (checked in constant time): the user token opens Control, the worker
// secret opens Register, and the session credential Register hands a rank opens that rank's
// Heartbeat, NextPhases and ReportPhase. A missing or wrong one is UNAUTHENTICATED, one used for
// another call or rank PERMISSION_DENIED; neither changes anything. Optional TLS, optionally with
// client certificates.
#pragma once

#include <memory>
#include <string>

#include "proto/coordinator.pb.h"
#include "proto/job.pb.h"

namespace lockstep {

struct ServerOptions {
  std::string bind = "127.0.0.1";  // loopback only unless told otherwise
  int port = 0;                    // 0: any free port (see port())
  std::string token;               // the user token (ctl): required, printable, trailing newline trimmed
  std::string worker_secret;       // the workers' (Register): required, as token, and not equal to it
  std::string tls_cert, tls_key;   // PEM file paths; both set: TLS
  std::string tls_client_ca;       // set: client certificates required and verified against it
  int max_message_bytes = 4 << 20; // send and receive caps
  double heartbeat_interval_s = 0.5;    // told to workers at Register
  double coordinator_timeout_s = 10.0;  // told to workers at Register
  std::string run_dir;                  // absolute, told to workers
  bool resume = false;
  // Also serve on this Unix-domain socket path (mode 0600), for workers in a private network
  // namespace that cannot reach the TCP address. Not with TLS.
  std::string unix_socket;
  // Concurrent Watch streams served; one more is RESOURCE_EXHAUSTED naming this limit.
  int max_watchers = 16;
};

class CoordinatorServer {
 public:
  // Serving on return; throws Error naming bind:port when it cannot listen, or a bad option.
  CoordinatorServer(proto::JobSpec job, int world_size, ServerOptions o);
  ~CoordinatorServer();  // graceful shutdown: calls in flight get 1 s to finish
  CoordinatorServer(const CoordinatorServer&) = delete;
  CoordinatorServer& operator=(const CoordinatorServer&) = delete;

  int port() const;
  std::string address() const;  // "bind:port" ("[bind]:port" for an IPv6 bind)
  // What workers connect to: "unix:PATH" when ServerOptions::unix_socket is set, else address().
  std::string worker_address() const;
  proto::JobStatus status() const;  // as a ctl STATUS; thread-safe
  // As a ctl call, in-process (the launcher turns SIGTERM into STOP this way): the directive id, 0
  // for STATUS and RESUME. Throws Error when the directive cannot be queued (job finished).
  uint64_t request(proto::ControlRequest::Command c);
  // Before a restart: registrations cleared, attempt + 1, the resume flag Register hands out, and
  // (world_size > 0) the number of ranks the next attempt runs on.
  void new_attempt(bool resume, int world_size = 0);
  // Waits until n ranks registered in this attempt; throws Error naming the missing ranks on timeout.
  void wait_registered(int n, double timeout_s);

  // The end of a job, for scripts (coordinator.proto, JobResult and Watch). result(): the job's
  // result as of now with the launcher's exit status and failure. finish(r): keeps r in every later
  // status and sends it to every watcher as FINISHED, the last event of its stream, then waits (at
  // most wait_s) until each watcher was handed it and its stream ended. Without finish(), the
  // destructor ends every Watch with UNAVAILABLE (no result known); either way it never hangs.
  proto::JobResult result(int exit_status, const std::string& failure = "") const;
  void finish(const proto::JobResult& r, double wait_s = 2.0);
  // The launcher saw the attempt fail (a Watch ATTEMPT_FAILED event naming the rank when known).
  void note_failure(const std::string& why);
  int watchers() const;  // Watch streams connected now

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep
