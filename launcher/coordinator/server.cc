// The coordinator's gRPC server: listening socket, TLS, keepalive and size caps around
// CoordinatorService (see server.h).
#include "launcher/coordinator/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>

#include <chrono>

#include "launcher/coordinator/client.h"
#include "launcher/coordinator/grpc_util.h"
#include "launcher/coordinator/job_state.h"
#include "launcher/coordinator/service.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

std::string host_port(const std::string& bind, int port) {
  const bool ipv6 = bind.find(':') != std::string::npos && bind.front() != '[';
  return (ipv6 ? "[" + bind + "]" : bind) + ":" + std::to_string(port);
}

std::shared_ptr<grpc::ServerCredentials> credentials(const ServerOptions& o) {
  LOCKSTEP_FAIL_IF(o.tls_cert.empty() != o.tls_key.empty())
      << "coordinator TLS needs both a certificate and a key (got "
      << (o.tls_cert.empty() ? "only --tls-key" : "only --tls-cert") << ")";
  LOCKSTEP_FAIL_IF(!o.tls_client_ca.empty() && o.tls_cert.empty())
      << "coordinator: a client CA (" << o.tls_client_ca << ") needs the server's own --tls-cert and --tls-key";
  if (o.tls_cert.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl(o.tls_client_ca.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!o.tls_client_ca.empty()) ssl.pem_root_certs = grpc_util::read_file(o.tls_client_ca, "TLS client CA");
  ssl.pem_key_cert_pairs.push_back({grpc_util::read_file(o.tls_key, "TLS key"),
                                    grpc_util::read_file(o.tls_cert, "TLS certificate")});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

struct CoordinatorServer::Impl {
  Impl(proto::JobSpec job, int world, const ServerOptions& o)
      : opts(o), state(std::move(job), world, o), service(state, o.token, o.worker_secret) {}

  ServerOptions opts;
  JobState state;
  CoordinatorService service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
};

CoordinatorServer::CoordinatorServer(proto::JobSpec job, int world_size, ServerOptions o) {
  const std::string wanted = host_port(o.bind, o.port);
  o.token = clean_token(o.token, "coordinator on " + wanted + ": the user token");
  o.worker_secret = clean_token(o.worker_secret, "coordinator on " + wanted + ": the worker secret");
  LOCKSTEP_FAIL_IF(o.token == o.worker_secret)
      << "coordinator on " << wanted << ": the worker secret equals the user token; they must differ, or "
      << "every user could act as a worker";
  LOCKSTEP_FAIL_IF(o.port < 0 || o.port > 65535) << "coordinator: port " << o.port << " is outside [0, 65535]";
  LOCKSTEP_FAIL_IF(o.max_watchers < 0) << "coordinator: max_watchers " << o.max_watchers << " is negative";
  impl_ = std::make_unique<Impl>(std::move(job), world_size, o);
  grpc_util::quiet_grpc_logs();

  grpc::ServerBuilder b;
  b.AddListeningPort(wanted, credentials(o), &impl_->port);
  if (!o.unix_socket.empty()) {
    LOCKSTEP_FAIL_IF(!o.tls_cert.empty()) << "coordinator: a Unix-domain socket for workers is not served with TLS";
    ::unlink(o.unix_socket.c_str());  // a stale socket of a crashed launch in the same private directory
    b.AddListeningPort("unix:" + o.unix_socket, grpc::InsecureServerCredentials());
  }
  b.RegisterService(&impl_->service);
  b.SetMaxReceiveMessageSize(o.max_message_bytes);
  b.SetMaxSendMessageSize(o.max_message_bytes);
  // A second coordinator on the same port must fail, not share it (gRPC sets SO_REUSEPORT by default).
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, grpc_util::kKeepaliveTimeMs);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, grpc_util::kKeepaliveTimeoutMs);
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, grpc_util::kMinPingIntervalMs);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  impl_->server = b.BuildAndStart();
  LOCKSTEP_FAIL_IF(!impl_->server || impl_->port == 0)
      << "coordinator cannot listen on " << wanted
      << (o.unix_socket.empty() ? "" : " and unix:" + o.unix_socket)
      << (o.tls_cert.empty() ? " (port in use, or not an address of this host)"
                             : " (port in use, not an address of this host, or --tls-cert/--tls-key not a valid PEM "
                               "certificate chain and its key)");
  if (!o.unix_socket.empty()) ::chmod(o.unix_socket.c_str(), 0600);
}

CoordinatorServer::~CoordinatorServer() {
  if (impl_) impl_->state.hub().close();  // every Watch ends (after what it has queued, FINISHED included)
  if (impl_ && impl_->server) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    impl_->server->Wait();
  }
}

int CoordinatorServer::port() const { return impl_->port; }
std::string CoordinatorServer::address() const { return host_port(impl_->opts.bind, impl_->port); }
std::string CoordinatorServer::worker_address() const {
  return impl_->opts.unix_socket.empty() ? address() : "unix:" + impl_->opts.unix_socket;
}
proto::JobStatus CoordinatorServer::status() const { return impl_->state.status(); }

uint64_t CoordinatorServer::request(proto::ControlRequest::Command c) {
  return impl_->state.control(c).directive_id();
}

void CoordinatorServer::new_attempt(bool resume, int world_size) { impl_->state.new_attempt(resume, world_size); }

void CoordinatorServer::wait_registered(int n, double timeout_s) { impl_->state.wait_registered(n, timeout_s); }

proto::JobResult CoordinatorServer::result(int exit_status, const std::string& failure) const {
  return impl_->state.result(exit_status, failure);
}

void CoordinatorServer::finish(const proto::JobResult& r, double wait_s) {
  impl_->state.finish(r);
  impl_->state.hub().wait_empty(wait_s);
}

void CoordinatorServer::note_failure(const std::string& why) { impl_->state.note_failure(why); }

int CoordinatorServer::watchers() const { return impl_->state.hub().watchers(); }

}  // namespace lockstep
