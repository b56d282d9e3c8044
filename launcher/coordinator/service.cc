// The coordinator's RPC handlers: who is calling, then JobState (see service.h).
#include "launcher/coordinator/service.h"

#include "launcher/coordinator/grpc_util.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

// Runs `f` if the caller may make this call (`refusal` is empty); an Error from it becomes `code`
// with its message (RankTaken: ALREADY_EXISTS).
template <typename F>
grpc::Status guarded(const grpc::Status& refusal, grpc::StatusCode code, F&& f) {
  if (!refusal.ok()) return refusal;
  try {
    f();
    return grpc::Status::OK;
  } catch (const RankTaken& e) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, e.what());
  } catch (const Error& e) {
    return grpc::Status(code, e.what());
  }
}

grpc::Status denied(const std::string& why) { return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why); }

const char* name_of(const CoordinatorService::Caller& c) {
  switch (c.role) {
    case CoordinatorService::Role::kUser: return "the user token";
    case CoordinatorService::Role::kWorker: return "the worker secret";
    case CoordinatorService::Role::kRank: return "a rank's session credential";
    default: return "no credential";
  }
}

}  // namespace

CoordinatorService::Caller CoordinatorService::caller(const grpc::ServerContext* ctx) const {
  const auto& md = ctx->client_metadata();
  auto [first, last] = md.equal_range(grpc_util::kTokenKey);
  if (first == last || std::next(first) != last) return {};  // none, or ambiguous
  const std::string_view given(first->second.data(), first->second.size());
  // Every comparison runs, whichever matches, so the time taken does not tell which one did.
  const bool user = grpc_util::constant_time_equal(given, user_token_);
  const bool worker = grpc_util::constant_time_equal(given, worker_secret_);
  const int rank = state_.session_rank(given);
  if (user) return {Role::kUser, -1};
  if (worker) return {Role::kWorker, -1};
  if (rank >= 0) return {Role::kRank, rank};
  return {};
}

grpc::Status CoordinatorService::allow(const Caller& c, const char* rpc, Role needed, int rank) const {
  if (c.role == Role::kNone) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, grpc_util::kAuthMessage);
  if (c.role != needed) {
    const char* needs = needed == Role::kUser     ? "the user token (RUN_DIR/token)"
                        : needed == Role::kWorker ? "the worker secret (workers get it in $LOCKSTEP_WORKER_SECRET)"
                                                  : "the session credential its rank got from Register";
    return denied(std::string(rpc) + " needs " + needs + "; it was called with " + name_of(c));
  }
  if (needed == Role::kRank && c.rank != rank)
    return denied(std::string(rpc) + " for rank " + std::to_string(rank) + " carries the session credential of rank " +
                  std::to_string(c.rank) + "; a rank acts only as itself");
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Register(grpc::ServerContext* ctx, const proto::RegisterRequest* req,
                                          proto::RegisterReply* reply) {
  return guarded(allow(caller(ctx), "Register", Role::kWorker), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { *reply = state_.register_rank(*req); });
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext* ctx, const proto::HeartbeatRequest* req,
                                           proto::HeartbeatReply* reply) {
  return guarded(allow(caller(ctx), "Heartbeat", Role::kRank, req->rank()), grpc::StatusCode::FAILED_PRECONDITION,
                 [&] { *reply = state_.heartbeat(*req); });
}

grpc::Status CoordinatorService::NodeHeartbeat(grpc::ServerContext* ctx, const proto::NodeHeartbeatRequest* req,
                                               proto::NodeHeartbeatReply* reply) {
  return guarded(allow(caller(ctx), "NodeHeartbeat", Role::kRank, req->rank()), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { *reply = state_.node_heartbeat(*req); });
}

grpc::Status CoordinatorService::NextPhases(grpc::ServerContext* ctx, const proto::NextPhasesRequest* req,
                                            proto::NextPhasesReply* reply) {
  return guarded(allow(caller(ctx), "NextPhases", Role::kRank, req->rank()), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { *reply = state_.next_phases(*req); });
}

grpc::Status CoordinatorService::ReportPhase(grpc::ServerContext* ctx, const proto::PhaseReport* req,
                                             proto::PhaseReportReply*) {
  return guarded(allow(caller(ctx), "ReportPhase", Role::kRank, req->rank()), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { state_.report(*req); });
}

grpc::Status CoordinatorService::Control(grpc::ServerContext* ctx, const proto::ControlRequest* req,
                                         proto::ControlReply* reply) {
  return guarded(allow(caller(ctx), "Control", Role::kUser), grpc::StatusCode::FAILED_PRECONDITION,
                 [&] { *reply = state_.control(req->command()); });
}

}  // namespace lockstep
