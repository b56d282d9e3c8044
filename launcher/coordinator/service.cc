// The coordinator's RPC handlers: token check, then JobState (see service.h).
#include "launcher/coordinator/service.h"

#include "launcher/coordinator/grpc_util.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

// Compares every byte of `expected` whatever the first difference, so the time taken does not
// tell an attacker how much of a guess was right.
bool constant_time_equal(grpc::string_ref given, const std::string& expected) {
  unsigned char diff = given.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given.data()[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

// Runs `f` if the caller is authorized; an Error from it becomes `code` with its message.
template <typename F>
grpc::Status guarded(bool authorized, grpc::StatusCode code, F&& f) {
  if (!authorized) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, grpc_util::kAuthMessage);
  try {
    f();
    return grpc::Status::OK;
  } catch (const Error& e) {
    return grpc::Status(code, e.what());
  }
}

}  // namespace

bool CoordinatorService::authorized(const grpc::ServerContext* ctx) const {
  const auto& md = ctx->client_metadata();
  auto [first, last] = md.equal_range(grpc_util::kTokenKey);
  if (first == last || std::next(first) != last) return false;  // none, or ambiguous
  return constant_time_equal(first->second, token_);
}

grpc::Status CoordinatorService::Register(grpc::ServerContext* ctx, const proto::RegisterRequest* req,
                                          proto::RegisterReply* reply) {
  return guarded(authorized(ctx), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { *reply = state_.register_rank(*req); });
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext* ctx, const proto::HeartbeatRequest* req,
                                           proto::HeartbeatReply* reply) {
  return guarded(authorized(ctx), grpc::StatusCode::FAILED_PRECONDITION,
                 [&] { *reply = state_.heartbeat(*req); });
}

grpc::Status CoordinatorService::NextPhases(grpc::ServerContext* ctx, const proto::NextPhasesRequest* req,
                                            proto::NextPhasesReply* reply) {
  return guarded(authorized(ctx), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { *reply = state_.next_phases(*req); });
}

grpc::Status CoordinatorService::ReportPhase(grpc::ServerContext* ctx, const proto::PhaseReport* req,
                                             proto::PhaseReportReply*) {
  return guarded(authorized(ctx), grpc::StatusCode::FAILED_PRECONDITION, [&] { state_.report(*req); });
}

grpc::Status CoordinatorService::Control(grpc::ServerContext* ctx, const proto::ControlRequest* req,
                                         proto::ControlReply* reply) {
  return guarded(authorized(ctx), grpc::StatusCode::FAILED_PRECONDITION,
                 [&] { *reply = state_.control(req->command()); });
}

}  // namespace lockstep
