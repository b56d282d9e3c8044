// Helpers for the control-plane tests: a small job, a server on a free loopback port with its two
// credentials, a raw stub that sends whatever metadata a test wants, and a wall-clock stopwatch.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>

#include "launcher/coordinator/client.h"
#include "launcher/coordinator/server.h"
#include "proto/coordinator.grpc.pb.h"

namespace lockstep::testing {

inline proto::JobSpec small_job(int64_t epochs = 4) {
  proto::JobSpec job;
  job.set_name("control-test");
  job.set_epochs(epochs);
  job.mutable_phases()->set_eval_every(2);
  job.mutable_phases()->set_checkpoint_every(3);
  return job;
}

// The worker secret of a test server whose user token is `token`: its own per server, and never
// equal to the token.
inline std::string worker_secret_for(const std::string& token) { return "worker-" + token; }

inline ServerOptions server_options(const std::string& token) {
  ServerOptions o;
  o.token = token;
  o.worker_secret = worker_secret_for(token);
  o.run_dir = "/tmp/lockstep-control-test";
  return o;
}

// A worker's Register request: rank of world, a distinct host and pid per rank.
inline proto::RegisterRequest register_request(int rank, int world) {
  proto::RegisterRequest r;
  r.set_rank(rank);
  r.set_world_size(world);
  r.set_host("host" + std::to_string(rank));
  r.set_pid(1000 + rank);
  return r;
}

inline ClientOptions client_options(const CoordinatorServer& s, const std::string& token) {
  ClientOptions o;
  o.address = s.address();
  o.token = token;
  o.rpc_deadline_s = 5;
  return o;
}

// A stub over an insecure channel; the caller adds metadata to each context itself.
inline std::unique_ptr<proto::Coordinator::Stub> raw_stub(const std::string& address) {
  return proto::Coordinator::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

inline void set_deadline(grpc::ClientContext& ctx, double s) {
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(s * 1000)));
}

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

}  // namespace lockstep::testing
