// The coordinator's client: channel, token metadata, deadlines, errors (see client.h). The
// heartbeat thread lives in heartbeats.cc.
#include "launcher/coordinator/client.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <thread>

#include "launcher/coordinator/client_impl.h"
#include "launcher/coordinator/grpc_util.h"

namespace lockstep {
namespace {

std::shared_ptr<grpc::ChannelCredentials> credentials(const ClientOptions& o) {
  LOCKSTEP_FAIL_IF(o.tls_cert.empty() != o.tls_key.empty())
      << "coordinator client: a TLS client certificate needs both --tls-cert and --tls-key";
  if (o.tls_ca.empty() && o.tls_cert.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  if (!o.tls_ca.empty()) ssl.pem_root_certs = grpc_util::read_file(o.tls_ca, "TLS CA");
  if (!o.tls_cert.empty()) {
    ssl.pem_private_key = grpc_util::read_file(o.tls_key, "TLS key");
    ssl.pem_cert_chain = grpc_util::read_file(o.tls_cert, "TLS certificate");
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

CoordinatorClient::Impl::Impl(const ClientOptions& o) : opts(o) {
  LOCKSTEP_FAIL_IF(o.address.empty()) << "no coordinator address (HOST:PORT) given";
  grpc_util::check_address(o.address, "--coordinator");
  grpc_util::quiet_grpc_logs();
  credential = clean_token(o.token, "the credential for the coordinator at " + o.address);
  opts.token.clear();  // the credential lives in one place
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(o.max_message_bytes);
  args.SetMaxSendMessageSize(o.max_message_bytes);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, grpc_util::kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, grpc_util::kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Reconnect soon after a coordinator that was not up yet (or restarted) starts listening. (Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: it is also the connect timeout, 20 s by default.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  channel = grpc::CreateCustomChannel(o.address, credentials(o), args);
  stub = proto::Coordinator::NewStub(channel);
}

std::unique_ptr<grpc::ClientContext> CoordinatorClient::Impl::context(double deadline_s) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        std::chrono::duration<double>(deadline_s)));
  std::lock_guard<std::mutex> lock(credential_mu);
  ctx->AddMetadata(grpc_util::kTokenKey, credential);
  return ctx;
}

void CoordinatorClient::Impl::check(const grpc::Status& s, const char* rpc) const {
  if (s.ok()) return;
  std::string hint;
  if (s.error_code() == grpc::StatusCode::UNAUTHENTICATED)
    hint = " (the token is wrong or missing: ctl reads --token-file, $LOCKSTEP_TOKEN, $LOCKSTEP_TOKEN_FILE; a "
           "worker --secret-file, $LOCKSTEP_WORKER_SECRET, $LOCKSTEP_WORKER_SECRET_FILE)";
  else if (s.error_code() == grpc::StatusCode::UNAVAILABLE)
    hint = " (is the coordinator running there? TLS on only one side fails this way too)";
  throw RpcError("coordinator at " + opts.address + ": " + rpc + " failed: " + grpc_util::status_text(s) + hint,
                 static_cast<int>(s.error_code()));
}

CoordinatorClient::CoordinatorClient(ClientOptions o) : opts_(std::move(o)), impl_(std::make_unique<Impl>(opts_)) {
  opts_.token.clear();  // Impl holds the credential
}

CoordinatorClient::~CoordinatorClient() { stop_heartbeats(); }

proto::RegisterReply CoordinatorClient::register_worker(const proto::RegisterRequest& r, double wait_s) {
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s));
  // One nonce for every try: a retry after a lost reply is the same registration, not a takeover.
  proto::RegisterRequest req = r;
  if (req.nonce().empty()) req.set_nonce(new_token());
  for (;;) {
    const double left = std::chrono::duration<double>(end - Clock::now()).count();
    auto ctx = impl_->context(std::max(0.05, std::min(opts_.rpc_deadline_s, left)));
    proto::RegisterReply reply;
    const grpc::Status s = impl_->stub->Register(ctx.get(), req, &reply);
    const bool retry = s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                       s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
    if (s.ok() || !retry || Clock::now() + std::chrono::milliseconds(100) >= end) {
      impl_->check(s, "Register");
      impl_->set_credential(clean_token(reply.session(), "the session credential from Register at " + opts_.address));
      return reply;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

proto::HeartbeatReply CoordinatorClient::heartbeat_now(int rank, const proto::StepMetrics& m) {
  proto::HeartbeatRequest req;
  req.set_rank(rank);
  *req.mutable_metrics() = m;
  proto::HeartbeatReply reply;
  auto ctx = impl_->context(opts_.rpc_deadline_s);
  impl_->check(impl_->stub->Heartbeat(ctx.get(), req, &reply), "Heartbeat");
  impl_->set_last(reply);
  return reply;
}

proto::NextPhasesReply CoordinatorClient::next_phases(const proto::NextPhasesRequest& r) {
  proto::NextPhasesReply reply;
  auto ctx = impl_->context(opts_.rpc_deadline_s);
  impl_->check(impl_->stub->NextPhases(ctx.get(), r, &reply), "NextPhases");
  return reply;
}

void CoordinatorClient::report_phase(const proto::PhaseReport& r) {
  proto::PhaseReportReply reply;
  auto ctx = impl_->context(opts_.rpc_deadline_s);
  impl_->check(impl_->stub->ReportPhase(ctx.get(), r, &reply), "ReportPhase");
}

proto::ControlReply CoordinatorClient::control(proto::ControlRequest::Command c) {
  proto::ControlRequest req;
  req.set_command(c);
  proto::ControlReply reply;
  auto ctx = impl_->context(opts_.rpc_deadline_s);
  impl_->check(impl_->stub->Control(ctx.get(), req, &reply),
               ("Control " + proto::ControlRequest::Command_Name(c)).c_str());
  return reply;
}

proto::HeartbeatReply CoordinatorClient::last_heartbeat() const { return impl_->get_last(); }

void CoordinatorClient::watch(const proto::WatchRequest& r,
                              const std::function<bool(const proto::WatchEvent&)>& on_event) {
  auto ctx = impl_->context(365.0 * 86400);  // the job's lifetime: no deadline that matters
  auto reader = impl_->stub->Watch(ctx.get(), r);
  proto::WatchEvent e;
  while (reader->Read(&e)) {
    if (!on_event(e)) {
      ctx->TryCancel();
      while (reader->Read(&e)) {
      }
      reader->Finish();
      return;
    }
  }
  impl_->check(reader->Finish(), "Watch");
}

}  // namespace lockstep
